"""The refsmith configuration: pydantic models, YAML loading, line-precise errors.

A config is a YAML file (see :data:`EXAMPLE_CONFIG`); a legacy ``jwst_reffiles``
``mkrefs.cfg`` is recognised and translated by :mod:`refsmith.legacy`. Every problem is
reported as a :class:`~refsmith.errors.ConfigError` naming the file, the line and the key
path, all problems at once, one per line.
"""


from refsmith.config.example import EXAMPLE_CONFIG, write_example
from refsmith.config.loading import default_config, load_config, parse_config
from refsmith.config.model import Config, expand_variables
from refsmith.config.sections import (
    Execution,
    Inputs,
    Output,
    Pipeline,
    Recipe,
    TimeKeys,
    TypeRuleConfig,
)

__all__ = [
    "EXAMPLE_CONFIG", "Config", "Execution", "Inputs", "Output", "Pipeline", "Recipe",
    "TimeKeys", "TypeRuleConfig", "default_config", "expand_variables", "load_config",
    "parse_config", "write_example",
]
