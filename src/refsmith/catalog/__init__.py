"""Stage 1, files -> :class:`~refsmith.model.Exposure` records: the catalog.

``options`` (:class:`CatalogOptions`: pattern, keywords, time, image-type rules, cache),
``discovery`` (files, directories, globs, ``@lists``), ``headers`` (the fast primary-header
reader), ``cache`` (its SQLite cache), ``pool`` (reader processes), ``classify`` (image-type
rules as data), ``exposure`` (one file's Exposure from its header values) and ``catalog``
(:func:`scan`: all of it -> :class:`Catalog`). Bad files become unusable exposures with a
reason, never exceptions.
"""

from refsmith.util.lazy import lazy_exports

_WHERE = {
    "Catalog": "catalog", "read_exposure": "catalog", "scan": "catalog",
    "DEFAULT_RULES": "classify", "TypeRule": "classify",
    "discover": "discovery",
    "CatalogOptions": "options", "TimeSpec": "options",
}

__all__ = sorted(_WHERE)
__getattr__, __dir__ = lazy_exports(globals(), _WHERE)
