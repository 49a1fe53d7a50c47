"""Finding plug-ins: built-ins, the ``refsmith.plugins`` entry points, ``module:Class``.

A recipe names its plug-in (default: the recipe's name). The name is looked up among the
built-ins (registered here in code, so they work before the package's entry points are
installed), then among the entry points of the group ``refsmith.plugins``; a name with a
colon, ``package.module:Class``, imports that class directly.
"""

from __future__ import annotations

import importlib
from importlib import metadata
from typing import Any, get_origin

from pydantic import BaseModel

from refsmith.errors import RefsmithError

__all__ = [
    "BUILTIN_DECLARATIONS",
    "BUILTIN_PLUGINS",
    "ENTRY_POINT_GROUP",
    "PluginNotFoundError",
    "declared_plugin",
    "describe_plugins",
    "installed_plugins",
    "load_plugin",
]

ENTRY_POINT_GROUP = "refsmith.plugins"

BUILTIN_PLUGINS: dict[str, str] = {
    "readnoise": "refsmith.plugins.builtin.readnoise:ReadnoisePlugin",
    "superbias": "refsmith.plugins.builtin.superbias:SuperbiasPlugin",
    "dark": "refsmith.plugins.builtin.dark:DarkPlugin",
    "gain": "refsmith.plugins.builtin.gain:GainPlugin",
    "bad_pixel_mask": "refsmith.plugins.builtin.badpix:BadPixelMaskPlugin",
}
"""name -> ``module:Class`` of the plug-ins shipped with refsmith."""

BUILTIN_DECLARATIONS: dict[str, str] = {
    "readnoise": "refsmith.plugins.builtin.declarations:Readnoise",
    "superbias": "refsmith.plugins.builtin.declarations:Superbias",
    "dark": "refsmith.plugins.builtin.declarations:Dark",
    "gain": "refsmith.plugins.builtin.declarations:Gain",
    "bad_pixel_mask": "refsmith.plugins.builtin.declarations:BadPixelMask",
}
"""name -> ``module:Class`` of what each built-in declares (its base class, without
``make``): what ``refsmith plan`` checks recipes against, without importing numpy."""

_REQUIRED = ("name", "reftype", "Params", "make")


class PluginNotFoundError(RefsmithError):
    """No plug-in of that name is installed, or its class cannot be imported."""


def _import(target: str) -> type:
    module_name, _, attribute = target.partition(":")
    if not module_name or not attribute:
        raise PluginNotFoundError(f"{target!r} is not of the form package.module:Class")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise PluginNotFoundError(f"cannot import module {module_name!r}: {exc}") from None
    try:
        obj: Any = module
        for part in attribute.split("."):
            obj = getattr(obj, part)
    except AttributeError:
        raise PluginNotFoundError(f"module {module_name!r} has no {attribute!r}") from None
    return _checked(obj, target)


def _checked(obj: Any, where: str) -> type:
    missing = [a for a in _REQUIRED if not hasattr(obj, a)]
    params = getattr(obj, "Params", None)
    if not missing and not (isinstance(params, type) and issubclass(params, BaseModel)):
        missing.append("Params (a pydantic model)")
    if missing:
        raise PluginNotFoundError(f"{where} is not a refsmith plug-in (missing: "
                                  f"{', '.join(missing)})")
    return obj


def _entry_points() -> dict[str, metadata.EntryPoint]:
    return {ep.name: ep for ep in metadata.entry_points(group=ENTRY_POINT_GROUP)}


def installed_plugins() -> dict[str, str]:
    """Every plug-in name that can be loaded -> where it comes from (``module:Class``)."""
    found = {name: ep.value for name, ep in _entry_points().items()}
    found.update(BUILTIN_PLUGINS)  # a built-in name always means the built-in
    return dict(sorted(found.items()))


def load_plugin(name: str) -> type:
    """The plug-in class registered as ``name``, or named ``package.module:Class``.

    Raises
    ------
    PluginNotFoundError
        Unknown name (the message lists the installed ones), or a class that cannot be
        imported or lacks the plug-in attributes.
    """
    if ":" in name:
        return _import(name)
    if name in BUILTIN_PLUGINS:
        return _import(BUILTIN_PLUGINS[name])
    entry_points = _entry_points()
    if name in entry_points:
        try:
            obj = entry_points[name].load()
        except Exception as exc:
            raise PluginNotFoundError(f"plug-in {name!r} ({entry_points[name].value}) "
                                      f"cannot be loaded: {exc}") from None
        return _checked(obj, entry_points[name].value)
    raise PluginNotFoundError(f"plug-in {name!r} is not installed (installed: "
                              f"{', '.join(installed_plugins())})")


def declared_plugin(name: str) -> type:
    """The class that declares what plug-in ``name`` is (``name``, ``reftype``, ``needs``,
    ``Params`` ...), for checks when a plan is made.

    A built-in's declaration class (:data:`BUILTIN_DECLARATIONS`: no numerical code is
    imported); any other plug-in's own class (:func:`load_plugin`, which imports it).

    Raises
    ------
    PluginNotFoundError
        As :func:`load_plugin`.
    """
    if name in BUILTIN_DECLARATIONS:
        return _import(BUILTIN_DECLARATIONS[name])
    return load_plugin(name)


def describe_parameters(params_class: type[BaseModel]) -> list[dict[str, Any]]:
    """Name (the config key), type, default and help of every parameter of a model."""
    rows = []
    for field_name, info in params_class.model_fields.items():
        default = info.get_default(call_default_factory=True)
        annotation = info.annotation
        plain = get_origin(annotation) is None and hasattr(annotation, "__name__")
        rows.append({
            "name": info.alias or field_name,
            "type": annotation.__name__ if plain else str(annotation).replace("typing.", ""),
            "default": default,
            "description": info.description or "",
        })
    return rows


def describe_plugins() -> list[dict[str, Any]]:
    """What ``refsmith plugins`` prints: every installed plug-in and its parameters.

    Returns
    -------
    list of dict
        ``name``, ``source`` (``module:Class``), ``reftype``, ``imtypes``, ``steps``,
        ``needs`` (``all_of``, ``any_of``, ``ramps``; None: not declared),
        ``description``, ``parameters`` (list of ``name``/``type``/``default``/
        ``description``), or ``error`` for a plug-in that cannot be loaded.
    """
    rows: list[dict[str, Any]] = []
    for name, source in installed_plugins().items():
        try:
            plugin = load_plugin(name)
        except PluginNotFoundError as exc:
            rows.append({"name": name, "source": source, "error": str(exc)})
            continue
        rows.append({
            "name": name,
            "source": source,
            "reftype": plugin.reftype,
            "imtypes": getattr(plugin, "imtypes", ""),
            "steps": list(getattr(plugin, "steps", ()) or ()),
            "needs": _needs(plugin),
            "description": getattr(plugin, "description", "") or "",
            "parameters": describe_parameters(plugin.Params),
        })
    return rows


def _needs(plugin: type) -> dict[str, Any] | None:
    needs = getattr(plugin, "needs", None)
    if needs is None:
        return None
    return {"all_of": needs.all_of, "any_of": needs.any_of, "ramps": needs.ramps}
