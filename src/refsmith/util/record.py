"""``@record``: a frozen dataclass whose constructor is cheap.

A frozen dataclass's generated ``__init__`` sets every field through
``object.__setattr__`` (about 1.6 us for 8 fields); filling the instance ``__dict__``
directly costs a quarter of that. A plan of 10,000 exposures builds ~150,000 records
(members, start choices, job inputs, outputs, jobs), so this is ~0.17 s of ``refsmith
plan`` (measured). Everything else is the dataclass's: fields, defaults and factories,
``==``, ``hash``, ``repr``, ``replace``, pickling, and assignment still raising
``FrozenInstanceError``. A test checks every record class against the generated
constructor.
"""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

T = TypeVar("T")

_NO_VALUE = object()  # stands for "not given" where a field has a default factory


def record(cls: type[T]) -> type[T]:
    """``@dataclass(frozen=True)`` with the fast constructor (no ``__post_init__``,
    ``__slots__``, keyword-only or ``init=False`` fields allowed: they would need the
    generated one)."""
    cls = dataclasses.dataclass(frozen=True)(cls)
    fields = dataclasses.fields(cls)
    if hasattr(cls, "__post_init__") or "__slots__" in cls.__dict__ or any(
            f.kw_only or not f.init for f in fields):
        raise TypeError(f"@record cannot give {cls.__name__} a fast constructor")
    namespace: dict[str, Any] = {"_NO_VALUE": _NO_VALUE}
    parameters, lines = [], []
    for f in fields:
        if f.default is not dataclasses.MISSING:
            namespace[f"_default_{f.name}"] = f.default
            parameters.append(f"{f.name}=_default_{f.name}")
            lines.append(f"d[{f.name!r}] = {f.name}")
        elif f.default_factory is not dataclasses.MISSING:
            namespace[f"_factory_{f.name}"] = f.default_factory
            parameters.append(f"{f.name}=_NO_VALUE")
            lines.append(f"d[{f.name!r}] = _factory_{f.name}() if {f.name} is _NO_VALUE "
                         f"else {f.name}")
        else:
            parameters.append(f.name)
            lines.append(f"d[{f.name!r}] = {f.name}")
    body = "".join(f"    {line}\n" for line in lines)
    exec(f"def __init__(self, {', '.join(parameters)}):\n    d = self.__dict__\n{body}",
         namespace)
    init = namespace["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__module__ = cls.__module__
    init.__doc__ = cls.__init__.__doc__
    cls.__init__ = init
    return cls
