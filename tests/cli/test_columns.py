"""Aligned text columns of the command line (refsmith.cli.columns)."""

from __future__ import annotations

from refsmith.cli.columns import table_lines, table_text


def test_columns_padded_to_the_widest_cell_counts_right_aligned():
    lines = table_lines(("recipe", "groups", "note"),
                        [("dark", "7", "x"), ("readnoise", "120", "")], right={1})
    assert lines == ["recipe     groups  note",
                     "dark            7  x",
                     "readnoise     120"]  # an empty last cell leaves no trailing space


def test_wide_characters_count_as_two_cells():
    lines = table_lines(("name", "n"), [("日本", "1"), ("ab", "22")], right={1})
    assert lines == ["name   n", "日本   1", "ab    22"]


def test_text_styles_rows_and_bolds_the_header():
    text = table_text(("file", "type"), [("a.fits", "dark"), ("b.fits", "unusable")],
                      styles=[None, "red"])
    assert text.plain == "file    type\na.fits  dark\nb.fits  unusable"
    styled = {(text.plain[span.start:span.end], str(span.style)) for span in text.spans}
    assert styled == {("file    type", "bold"), ("b.fits  unusable", "red")}
    assert not text.style  # nothing else styled
