"""Aligned text columns for the command line (``refsmith scan``, ``plan``, ``status``...).

rich's Table measures and pads every cell as a renderable: ~1.4 ms a row, 14 s for the
10,000 files of a scan (measured). These tables only need columns padded to their
widest cell, so they are laid out here as plain lines and printed in one go (0.1 s).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from rich.cells import cell_len
from rich.text import Text


def table_lines(header: Sequence[str], rows: Sequence[Sequence[str]],
                right: Collection[int] = ()) -> list[str]:
    """The header and the rows as lines of columns two spaces apart.

    Columns whose index is in ``right`` are right-aligned (counts), the others left;
    widths are terminal cells (wide characters count twice); no line ends in a space.
    """
    lines = [header, *rows]
    widths = [max(cell_len(cell) for cell in column) for column in zip(*lines, strict=True)]
    formatted = []
    for row in lines:
        cells = []
        for i, (cell, width) in enumerate(zip(row, widths, strict=True)):
            pad = " " * (width - cell_len(cell))
            cells.append(pad + cell if i in right else cell + pad)
        formatted.append("  ".join(cells).rstrip())
    return formatted


def table_text(header: Sequence[str], rows: Sequence[Sequence[str]],
               right: Collection[int] = (), styles: Sequence[str | None] = ()) -> Text:
    """:func:`table_lines` as one rich Text: the header bold, row ``i`` in ``styles[i]``
    (e.g. 'red' for an unusable file; None or missing: plain)."""
    lines = table_lines(header, rows, right)
    text = Text()
    text.append(lines[0], style="bold")
    for i, line in enumerate(lines[1:]):
        text.append("\n")
        text.append(line, style=styles[i] if i < len(styles) and styles[i] else None)
    return text
