"""The refsmith configuration: pydantic models, YAML loading, line-precise errors.

A config is a YAML file (see :data:`EXAMPLE_CONFIG`); a legacy ``jwst_reffiles``
``mkrefs.cfg`` is recognised and translated by :mod:`refsmith.config.legacy`. Every problem is
reported as a :class:`~refsmith.errors.ConfigError` naming the file, the line and the key
path, all problems at once, one per line.

``config`` (:class:`Config`: the whole file and the values derived from it), ``sections``
(the models of its sections), ``values`` (their value types and checks), ``loading``
(YAML, line-precise errors), ``legacy`` (mkrefs.cfg), ``variables`` (``$NAME`` in paths),
``example`` (``refsmith init``), ``reference`` (generates docs/configuration.md).
"""

from refsmith.util.lazy import lazy_exports

_WHERE = {
    "Config": "config",
    "EXAMPLE_CONFIG": "example", "write_example": "example",
    "default_config": "loading", "load_config": "loading", "parse_config": "loading",
    "Execution": "sections", "Inputs": "sections", "Output": "sections",
    "Pipeline": "sections", "Recipe": "sections", "TimeKeys": "sections",
    "TypeRuleConfig": "sections",
    "expand_variables": "variables",
}

__all__ = sorted(_WHERE)
__getattr__, __dir__ = lazy_exports(globals(), _WHERE)
