"""Reference-file plug-ins: the API, the registry, the built-ins and the job runners.

Executors call :func:`run_reffile_job` (one group -> one individual reference file) and
:func:`run_combine_job` (individual files -> the final file); ``refsmith plugins`` prints
:func:`describe_plugins`. See docs/plugins.md for writing a plug-in.
"""

from refsmith.plugins.base import REFTYPE_MODELS, PluginParams, ReffilePlugin
from refsmith.plugins.inputs import GroupInputs, InputFile, Ramp
from refsmith.plugins.registry import (
    BUILTIN_PLUGINS,
    ENTRY_POINT_GROUP,
    PluginNotFoundError,
    describe_plugins,
    installed_plugins,
    load_plugin,
)
from refsmith.plugins.runner import (
    ParameterError,
    merge_params,
    rejected_path,
    run_combine_job,
    run_reffile_job,
)

__all__ = [
    "BUILTIN_PLUGINS",
    "ENTRY_POINT_GROUP",
    "REFTYPE_MODELS",
    "GroupInputs",
    "InputFile",
    "ParameterError",
    "PluginNotFoundError",
    "PluginParams",
    "Ramp",
    "ReffilePlugin",
    "describe_plugins",
    "installed_plugins",
    "load_plugin",
    "merge_params",
    "rejected_path",
    "run_combine_job",
    "run_reffile_job",
]
