"""Stage 2, recipes -> groups: each recipe's :class:`~refsmith.model.Group` records and, for
every exposure of its image types left out, a :class:`~refsmith.model.Leftover` with a
reason a person can read.

``rule`` (:class:`GroupingRule`: one recipe's rule, plain data), ``imtypes`` (the ``DD``,
``D+``, ``DDFF``, ``DF+`` grammar), ``shapes`` (the walks, clusters and partner search per
shape, the wording of reasons) and ``build`` (:func:`build_groups`: screening, partitions,
group ids). Pure: no I/O, no clock. See docs/grouping.md.
"""

from refsmith.util.lazy import lazy_exports

_WHERE = {
    "GroupingResult": "build", "build_groups": "build", "group_recipes": "build",
    "DEFAULT_LETTERS": "imtypes", "Part": "imtypes", "parse_imtypes": "imtypes",
    "DEFAULT_GROUP_BY": "rule", "GroupingRule": "rule",
}

__all__ = sorted(_WHERE)
__getattr__, __dir__ = lazy_exports(globals(), _WHERE)
