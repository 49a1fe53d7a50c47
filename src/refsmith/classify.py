"""Image-type rules: which exposures are darks, flats, ... (classification is data).

DRAFT: the default table below is to be checked against the stdatamodels EXP_TYPE enum.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class TypeRule:
    """One image type and how to recognise it.

    An exposure is of this type when every keyword in ``match`` has one of the listed
    values (case-insensitive; shell-style wildcards allowed) and, when ``pattern`` is set,
    its base name matches that regular expression (``re.search``).
    """

    name: str                      # 'dark', 'flat', or user-defined ('bias', ...)
    letter: str                    # one upper-case letter used in imtypes ('D', 'F', 'B')
    match: dict[str, tuple[str, ...]] = field(default_factory=dict, hash=False)
    pattern: str | None = None
