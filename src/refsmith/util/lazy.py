"""A package's names imported on first use (PEP 562), so that importing the package, or one
of its modules, costs nothing more.

Every package of refsmith exports its names this way: ``refsmith plan`` imports only the
modules it runs, and a reader process importing ``refsmith.catalog.headers`` does not import
the rest of the catalog.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(namespace: dict[str, Any], where: Mapping[str, str]
                 ) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for a package whose names live in its modules.

    Parameters
    ----------
    namespace : dict
        The package's ``globals()``; a name is stored there once imported.
    where : mapping
        Exported name -> the module holding it, absolute (``refsmith.catalog.options``)
        or relative to the package (``options``). No exported name may be a module of
        the package: importing the module would set the package's attribute to it.

    Returns
    -------
    tuple
        ``(__getattr__, __dir__)``, to assign in the package's ``__init__``.
    """
    package = namespace["__name__"]

    def __getattr__(name: str) -> Any:
        try:
            module = where[name]
        except KeyError:
            raise AttributeError(f"module {package!r} has no attribute {name!r}") from None
        if not module.startswith("refsmith"):
            module = f"{package}.{module}"
        value = getattr(importlib.import_module(module), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(where))

    return __getattr__, __dir__
