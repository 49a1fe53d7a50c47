"""Translation of a legacy ``jwst_reffiles`` ``mkrefs.cfg`` into the refsmith config.

The translation keeps the original meaning (checked against jwst_reffiles' ``mkrefs.py``
and ``utils/tools.py``):

* image types come from the base name as given (a symlink's own, as jwst_reffiles never
  resolved links): ``re.search(dark_pattern)`` first, then
  ``flat_pattern`` (a file matching both is a dark); no EXP_TYPE table is used;
* exposures are grouped by DETECTOR only;
* ``$VARIABLES`` are expanded in every string value, an unset one is an error;
* ``runID: AUTO`` is the latest ``run<N>`` under ``outrootdir[/outsubdir]`` (``run0`` at
  first); a new one only when asked (``--new-run``, jwst_reffiles' ``-n``): refsmith's
  numbered ``output.run`` (``run###``), resolved by :func:`refsmith.plan.run_dir_for`;
* a reflabel's other keys are its plug-in's ``params`` (checked by it at plan time); a
  reflabel with no plug-in of its name is made by the built-in of its reftype, which
  gets only the parameters every plug-in takes (the others were jwst_reffiles' own);
* ``test4ssb``/``test4datamodel`` become the recipes' ``validate`` parameter.

Whatever has no refsmith equivalent becomes a notice, never an error.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from refsmith.config.values import Loc
from refsmith.config.variables import expand_variables
from refsmith.errors import ConfigError

MARKERS = frozenset({"reflabels", "inputfiles", "default_reflabels", "reftypes", "DD", "FF",
                     "DDFF"})
# jwst_reffiles reftype names -> CRDS reference-file types
REFTYPES = {"bpm": "mask", "badpix": "mask", "rdnoise": "readnoise"}
# CRDS reference-file type -> the built-in plug-in that makes it (refsmith.plugins.registry's
# BUILTIN_PLUGINS; config cannot import plugins: a test holds the two equal)
BUILTIN_FOR_REFTYPE = {"mask": "bad_pixel_mask", "readnoise": "readnoise", "gain": "gain",
                       "superbias": "superbias", "dark": "dark"}
# the entry-point group of plug-ins (refsmith.plugins.registry.ENTRY_POINT_GROUP)
PLUGIN_GROUP = "refsmith.plugins"
# the parameters every plug-in takes (refsmith.plugins.base.PluginParams, by config key)
COMMON_PARAMS = frozenset({"author", "pedigree", "useafter", "description", "selectors",
                           "combine", "combine_sigma", "vote_fraction", "validate"})
# legacy step spellings canonical_step does not know
STEP_NAMES = {"slope": "ramp_fit"}
# what jwst_reffiles wrote for "no steps" (its ssb_save_steps is on every reflabel)
NOTHING = frozenset({"", "none", "null", "[]", "~"})
BATCH_KINDS = {"condor": "htcondor", "htcondor": "htcondor", "slurm": "slurm", "pbs": "pbs"}

_RECIPE_KEYS = {"reftype", "imtypes", "ssbsteps", "ssb_save_steps", "test4ssb",
                "test4datamodel"}
_VALIDATION_KEYS = ("test4ssb", "test4datamodel")
_IGNORED = {
    "reftypes": "informational list; each recipe names its reftype",
    "default_reflabels": "refsmith runs the recipes listed in the config",
    "validation": "refsmith's pipeline validation (test4ssb) gives the step the other "
                  "reference files it needs as neutral files, not these",
    "tempdatadir": "refsmith writes temporary files into the run directory",
}
_RECIPE_IGNORED = {
    "validation": "no refsmith equivalent",
    "output": "no refsmith equivalent",
    "history": "refsmith writes the file's HISTORY: its inputs, parameters and software",
}
_OUTPUT_IGNORED = {
    "addsuffix": "refsmith names reference files <run>/reffiles/<recipe>/...",
    "skip_runID_ssbdir": "calibrated products are shared by runs in <root>/calibrated",
    "ssblogFlag": "refsmith always writes pipeline logs into <run>/logs",
    "ssberrorlogFlag": "refsmith always writes pipeline logs into <run>/logs",
}


@dataclass
class Translation:
    """The result of :func:`translate`.

    ``data`` is a refsmith config mapping; ``origins`` maps refsmith key paths to the
    legacy key paths they came from (for line numbers in errors); ``errors`` are
    (legacy key path, message) pairs that make the file unusable.
    """

    data: dict[str, Any] = field(default_factory=dict)
    notices: list[str] = field(default_factory=list)
    origins: dict[Loc, Loc] = field(default_factory=dict)
    errors: list[tuple[Loc, str]] = field(default_factory=list)


def is_legacy(data: Mapping[str, Any]) -> bool:
    """True when ``data`` looks like a jwst_reffiles ``mkrefs.cfg`` (and not refsmith)."""
    return "recipes" not in data and any(key in data for key in MARKERS)


def translate(data: Mapping[str, Any], base_dir: Path,
              installed: Callable[[str], bool] | None = None) -> Translation:
    """Translate a legacy mkrefs.cfg mapping into a refsmith config mapping.

    Parameters
    ----------
    data : mapping
        The parsed legacy YAML.
    base_dir : Path
        Directory of the config file (relative paths stay relative to it: the config
        resolves them).
    installed : callable, optional
        ``installed(name)``: whether a plug-in of that name is installed (default: a
        built-in, or an entry point of the group ``refsmith.plugins``).

    Returns
    -------
    Translation
    """
    out = Translation()
    source = _expand_all(data, (), out)
    out.data = {"group_by": ["DETECTOR"], "classify_defaults": False}
    out.notices.append("legacy jwst_reffiles config: exposures are grouped by DETECTOR "
                       "only and classified by file name, as jwst_reffiles did")
    if source.get("instrument") is not None:
        _set(out, ("instrument",), source["instrument"], ("instrument",))
    _inputs(source.get("inputfiles"), out)
    limits = _max_days(source, out)
    _output(source.get("output"), out)
    _batch(source.get("batch"), out)
    for key in ("reffile4ssb", "ssbstep"):
        if key in source:
            _references(source[key], key, out)
    validate = _validation(source, "", out)
    handled = _recipes(source, out, validate, installed or plugin_installed)
    for key in source:
        if key in handled or key in limits or key in ("instrument", "inputfiles", "output", "batch",
                                     "reffile4ssb", "ssbstep", *_VALIDATION_KEYS):
            continue
        if key in _IGNORED:
            out.notices.append(f"{key}: ignored ({_IGNORED[key]})")
        elif isinstance(source[key], Mapping) and "imtypes" in source[key]:
            out.notices.append(f"{key}: a reflabel section not listed in 'reflabels'; not "
                               "translated (add it to reflabels to use it)")
        else:
            out.notices.append(f"{key}: unknown jwst_reffiles key; ignored")
    return out


# ------------------------------------------------------------------ sections


def _set(out: Translation, loc: tuple[str, ...], value: Any, origin: Loc) -> None:
    target = out.data
    for part in loc[:-1]:
        target = target.setdefault(part, {})
    target[loc[-1]] = value
    out.origins[loc] = origin


def _inputs(section: Any, out: Translation) -> None:
    if section is None:
        out.notices.append("inputfiles: missing; refsmith defaults used for inputs")
        return
    if not isinstance(section, Mapping):
        out.errors.append((("inputfiles",), "expected a section"))
        return
    out.data["inputs"] = {}
    out.origins[("inputs",)] = ("inputfiles",)
    dark, flat = section.get("dark_pattern"), section.get("flat_pattern")
    classify: dict[str, Any] = {}
    if dark:
        classify["dark"] = {"letter": "D", "pattern": str(dark)}
        out.origins[("classify", "dark")] = ("inputfiles", "dark_pattern")
    if flat:
        # jwst_reffiles tested dark_pattern first: a name matching both is a dark
        pattern = f"^(?!.*(?:{dark}))(?:.*(?:{flat}))" if dark else str(flat)
        classify["flat"] = {"letter": "F", "pattern": pattern}
        out.origins[("classify", "flat")] = ("inputfiles", "flat_pattern")
    if classify:
        out.data["classify"] = classify
    else:
        out.notices.append("inputfiles: no dark_pattern/flat_pattern; the built-in "
                           "EXP_TYPE classification is used")
        out.data["classify_defaults"] = True
    out.notices.append("inputfiles: files matching neither dark_pattern nor flat_pattern "
                       "are catalogued as unclassified (jwst_reffiles stopped with an error)")
    if "basenamepattern" in section:
        pattern = section["basenamepattern"]
        _set(out, ("inputs", "pattern"), pattern, ("inputfiles", "basenamepattern"))
        if pattern and "/" in str(pattern):
            out.notices.append("inputfiles.basenamepattern: refsmith matches it against the "
                               "base name only (jwst_reffiles used the full path)")
    _time(section, out)
    for old, new in (("requiredfitskeys", "required_keywords"),
                     ("optionalfitskeys", "optional_keywords")):
        if old in section:
            value = section[old]
            value = [] if value is None else [value] if isinstance(value, str) else value
            _set(out, ("inputs", new), value, ("inputfiles", old))
    known = {"dark_pattern", "flat_pattern", "basenamepattern", "dateobs_fitskey",
             "timeobs_fitskey", "mjdobs_fitskey", "requiredfitskeys", "optionalfitskeys"}
    for key in section:
        if key not in known:
            out.notices.append(f"inputfiles.{key}: unknown jwst_reffiles key; ignored")


def _time(section: Mapping[str, Any], out: Translation) -> None:
    date, time, mjd = (section.get(k) or None for k in
                       ("dateobs_fitskey", "timeobs_fitskey", "mjdobs_fitskey"))
    if mjd:
        _set(out, ("inputs", "time"), {"mjd": mjd}, ("inputfiles", "mjdobs_fitskey"))
        if date or time:
            out.notices.append(f"inputfiles: the time is read from {mjd} only; "
                               "dateobs_fitskey/timeobs_fitskey are not used as a fallback")
    elif date:
        value = {"date": date, "time": time} if time else {"date": date}
        _set(out, ("inputs", "time"), value, ("inputfiles", "dateobs_fitskey"))
    elif time:
        out.errors.append((("inputfiles", "timeobs_fitskey"),
                           "timeobs_fitskey needs dateobs_fitskey"))
    else:
        out.notices.append("inputfiles: no time keyword given; EXPSTART (MJD) is used")


def _max_days(source: Mapping[str, Any], out: Translation) -> set[str]:
    """``DD: {max_Delta_MJD: 2.0}`` and the like -> max_days; return the keys used."""
    used = set()
    for key, section in source.items():
        if not (isinstance(section, Mapping) and re.fullmatch(r"[A-Z+]+", str(key))):
            continue
        used.add(str(key))
        if "max_Delta_MJD" in section and section["max_Delta_MJD"] is not None:
            _set(out, ("max_days", str(key)), section["max_Delta_MJD"],
                 (str(key), "max_Delta_MJD"))
        for other in section:
            if other != "max_Delta_MJD":
                out.notices.append(f"{key}.{other}: unknown jwst_reffiles key; ignored")
    return used


def _output(section: Any, out: Translation) -> None:
    if not isinstance(section, Mapping):
        out.notices.append("output: missing; refsmith writes to ./refsmith_out")
        return
    out.origins[("output",)] = ("output",)
    root = str(section.get("outrootdir") or "").strip()
    subdir = str(section.get("outsubdir") or "").strip()
    if not root:
        out.notices.append("output.outrootdir: empty; refsmith writes to ./refsmith_out")
        root = "./refsmith_out"
    elif not os.path.isabs(os.path.expanduser(root)):
        out.notices.append(f"output.outrootdir: {root!r} is taken relative to the config "
                           "file's directory (jwst_reffiles used the current directory)")
    base = f"{root}/{subdir}" if subdir else root
    run_id = section.get("runID")
    digits = section.get("runIDNdigits") or 1
    if not isinstance(digits, int) or isinstance(digits, bool) or digits < 1:
        out.errors.append((("output", "runIDNdigits"), f"expected a whole number >= 1, "
                                                        f"got {digits!r}"))
        return
    origin = ("output", "runID")
    if run_id is None or str(run_id).strip() == "":
        # no run directory: the run directory is outrootdir[/outsubdir] itself
        path = Path(base)
        _set(out, ("output", "root"), str(path.parent), ("output", "outrootdir"))
        _set(out, ("output", "run"), path.name, ("output", "outrootdir"))
        return
    _set(out, ("output", "root"), base, ("output", "outrootdir"))
    text = str(run_id).strip()
    if text.isdigit():
        _set(out, ("output", "run"), f"run{int(text):0{digits}d}", origin)
    elif text.upper() == "AUTO":
        # numbered runs: plan and run take the latest, --new-run the next (jwst_reffiles -n)
        label = "run" + "#" * digits
        _set(out, ("output", "run"), label, origin)
        out.notices.append(f"output.runID: AUTO -> output.run: {label}, the latest run<N> "
                           f"under {base} (run{0:0{digits}d} at first), which plan and run "
                           "resume; plan/run --new-run start the next (jwst_reffiles' -n)")
    else:
        out.errors.append((origin, f"expected AUTO, a number or nothing, got {run_id!r}"))
    search = []
    if section.get("ssbdir"):
        search.append(str(section["ssbdir"]))
        out.notices.append("output.ssbdir: searched for earlier pipeline products; new "
                           "ones are written to <root>/calibrated")
    products = section.get("pipeline_prod_search_dir")
    if products:
        items = products if isinstance(products, list) else str(products).split(",")
        search += [str(item).strip() for item in items if str(item).strip()]
    if search:
        _set(out, ("pipeline", "search_dirs"), search, ("output", "pipeline_prod_search_dir"))
    known = {"outrootdir", "outsubdir", "runID", "runIDNdigits", "ssbdir",
             "pipeline_prod_search_dir"}
    for key in section:
        if key in _OUTPUT_IGNORED:
            out.notices.append(f"output.{key}: ignored ({_OUTPUT_IGNORED[key]})")
        elif key not in known:
            out.notices.append(f"output.{key}: unknown jwst_reffiles key; ignored")


def _batch(section: Any, out: Translation) -> None:
    if section is None:
        return
    if not isinstance(section, Mapping):
        out.notices.append("batch: not a section; ignored")
        return
    if not section.get("batch_enabled"):
        return  # jwst_reffiles ran the commands serially: refsmith runs them locally
    mode = str(section.get("batchmode") or "").strip().lower()
    if mode not in BATCH_KINDS:
        out.notices.append(f"batch.batchmode: {section.get('batchmode')!r} is not one of "
                           "Condor, Slurm, PBS; jobs run locally")
        return
    _set(out, ("execution", "executor"), "dask", ("batch", "batch_enabled"))
    _set(out, ("execution", "cluster"), {"kind": BATCH_KINDS[mode]}, ("batch", "batchmode"))
    out.notices.append(f"batch: jobs run on {BATCH_KINDS[mode]} through dask-jobqueue "
                       "(install refsmith[dask]); jwst_reffiles never implemented batch mode")


def _references(section: Any, key: str, out: Translation) -> None:
    if not isinstance(section, Mapping):
        out.notices.append(f"{key}: not a section; ignored")
        return
    references = out.data.setdefault("pipeline", {}).setdefault("references", {})
    for name, value in section.items():
        if value is None or str(value).strip() == "":
            continue
        reftype = re.sub(r"reffile$", "", str(name).strip().lower())
        reftype = REFTYPES.get(reftype, reftype)
        text = str(value).strip()
        references[reftype] = text.lower() if text.lower() in ("crds", "self") else text
        out.origins[("pipeline", "references", reftype)] = (key, str(name))
    if references:
        out.notices.append(f"{key}: jwst_reffiles never applied these; refsmith passes them "
                           "to the pipeline as pipeline.references "
                           f"({', '.join(f'{k}: {v}' for k, v in references.items())})")


def plugin_installed(name: str) -> bool:
    """Whether a plug-in named ``name`` is installed: a built-in or an entry point of the
    group ``refsmith.plugins`` (read only for names that are not built-ins)."""
    if name in BUILTIN_FOR_REFTYPE.values():
        return True
    from importlib import metadata

    return any(ep.name == name for ep in metadata.entry_points(group=PLUGIN_GROUP))


def _validation(section: Mapping[str, Any], where: str, out: Translation) -> str | None:
    """``test4ssb`` / ``test4datamodel`` of a section -> the plug-ins' ``validate`` value.

    ``pipeline`` when test4ssb is true (the step that uses the file is run with it, after
    the datamodel check), ``datamodel`` when only test4datamodel is; None when neither is
    given true (refsmith's default: the datamodel check).
    """
    flags = {key: section[key] for key in _VALIDATION_KEYS if key in section}
    bad = [key for key, value in flags.items()
           if value is not None and not isinstance(value, bool)]
    for key in bad:
        out.errors.append(((*([where] if where else []), key),
                           f"expected True or False, got {flags[key]!r}"))
    if bad or not any(flags.values()):
        return None
    prefix = f"{where}." if where else ""
    scope = f"recipe {where!r}" if where else "every recipe"
    if flags.get("test4ssb"):
        out.notices.append(f"{prefix}test4ssb: True -> params.validate: pipeline on {scope} "
                           "(each reference file is opened by its datamodel, then the "
                           "pipeline step that uses it runs with it on one of its raw inputs; "
                           "a file that fails goes to <run>/rejected/)")
        return "pipeline"
    out.notices.append(f"{prefix}test4datamodel: True -> params.validate: datamodel on "
                       f"{scope} (each reference file is opened by its datamodel, strictly)")
    return "datamodel"


def _recipes(source: Mapping[str, Any], out: Translation, validate: str | None,
             installed: Callable[[str], bool]) -> set[str]:
    """Translate the reflabel sections; return the top-level keys used."""
    labels = source.get("reflabels")
    if labels is None:
        labels = [k for k, v in source.items() if isinstance(v, Mapping) and "imtypes" in v]
        if labels:
            out.notices.append("reflabels: missing; every section with imtypes is a recipe")
    elif isinstance(labels, str):
        labels = [part.strip() for part in labels.split(",") if part.strip()]
    handled = {"reflabels"}
    recipes: dict[str, Any] = {}
    for label in labels:
        label = str(label)
        section = source.get(label)
        if not isinstance(section, Mapping):
            out.notices.append(f"reflabels: {label!r} has no section of its own; skipped")
            continue
        handled.add(label)
        recipes[label] = _recipe(label, section, out, validate, installed)
        out.origins[("recipes", label)] = (label,)
    out.data["recipes"] = recipes
    out.origins[("recipes",)] = ("reflabels",)
    return handled


def _recipe(label: str, section: Mapping[str, Any], out: Translation, validate: str | None,
            installed: Callable[[str], bool]) -> dict[str, Any]:
    recipe: dict[str, Any] = {"plugin": label}
    if "reftype" in section and section["reftype"] is not None:
        old = str(section["reftype"]).strip()
        recipe["reftype"] = REFTYPES.get(old.lower(), old)
        if recipe["reftype"] != old:
            out.notices.append(f"{label}.reftype: {old!r} is the CRDS type "
                               f"{recipe['reftype']!r}")
        out.origins[("recipes", label, "reftype")] = (label, "reftype")
    substitute = _plugin_of(label, recipe, out, installed)
    if "imtypes" in section:
        recipe["imtypes"] = section["imtypes"]
    out.origins[("recipes", label, "imtypes")] = (label, "imtypes")
    for old, new in (("ssbsteps", "steps"), ("ssb_save_steps", "save_steps")):
        if old in section:
            recipe[new] = _legacy_steps(section[old], f"{label}.{old}", out)
            out.origins[("recipes", label, new)] = (label, old)
    params: dict[str, Any] = {}
    dropped: list[str] = []
    for key, value in section.items():
        if key in _RECIPE_KEYS:
            continue
        if key in ("reffile4ssb", "ssbstep"):
            out.notices.append(f"{label}.{key}: per-recipe pipeline reference files are not "
                               "supported; set them for all recipes in pipeline.references")
        elif key in _RECIPE_IGNORED:
            out.notices.append(f"{label}.{key}: ignored ({_RECIPE_IGNORED[key]})")
        elif substitute and key not in COMMON_PARAMS:
            dropped.append(str(key))  # meant for jwst_reffiles' own plug-in of that name
        else:
            # the plug-in's parameters (jwst_reffiles passed them to its mkref_ script),
            # which it checks; author, description, pedigree, useafter are every plug-in's
            params[key] = value
    if dropped:
        out.notices.append(
            f"{label}: {', '.join(dropped)} not passed to the built-in {substitute!r} "
            f"(parameters of jwst_reffiles' own {label} plug-in; the built-in's are given "
            f"with --param {label}.KEY=VALUE, listed by refsmith plugins)")
    own = _validation(section, label, out)
    if (own or validate) and "validate" not in params:
        params["validate"] = own or validate
    if params:
        recipe["params"] = params
        out.origins[("recipes", label, "params")] = (label,)
    return recipe


def _plugin_of(label: str, recipe: dict[str, Any], out: Translation,
               installed: Callable[[str], bool]) -> str | None:
    """A reflabel with no plug-in of its name is made by the built-in of its reftype;
    return that built-in's name (None: the reflabel's own plug-in)."""
    reftype = recipe.get("reftype") or REFTYPES.get(label.lower(), label)
    builtin = BUILTIN_FOR_REFTYPE.get(str(reftype).lower())
    if builtin is None or builtin == label or installed(label):
        return None
    recipe["plugin"], recipe["reftype"] = builtin, reftype
    out.origins[("recipes", label, "plugin")] = (label,)
    out.notices.append(f"{label}: no plug-in named {label!r} is installed; its reftype "
                       f"{reftype!r} is made by the built-in plug-in {builtin!r} (refsmith "
                       f"plugins lists its parameters; install a plug-in named {label!r} to "
                       "use your own)")
    return builtin


def _legacy_steps(value: Any, where: str, out: Translation) -> Any:
    """``ssbsteps`` / ``ssb_save_steps`` as refsmith step tokens; None, ``none``, empty
    and ``[]`` (jwst_reffiles' "nothing") are no steps."""
    if value is None:
        return []
    items = value if isinstance(value, list) else str(value).replace(",", " ").split()
    result = []
    for item in items:
        text = "" if item is None else str(item).strip()
        if text.lower() in NOTHING:
            continue
        minus = text.endswith("-")
        name = text[:-1] if minus else text
        if name.lower() in STEP_NAMES:
            new = STEP_NAMES[name.lower()]
            out.notices.append(f"{where}: step {name!r} read as {new!r}")
            text = new + ("-" if minus else "")
        result.append(text)
    return result


def _expand_all(value: Any, loc: Loc, out: Translation) -> Any:
    """Expand ``$VARIABLES`` in every string, as jwst_reffiles did (unset = error)."""
    if isinstance(value, str):
        try:
            return expand_variables(value)
        except ConfigError as exc:
            out.errors.append((loc, str(exc)))
            return value
    if isinstance(value, Mapping):
        return {k: _expand_all(v, (*loc, str(k)), out) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand_all(v, (*loc, i), out) for i, v in enumerate(value)]
    return value
