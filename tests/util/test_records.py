"""``@record``: the fast constructor gives what the dataclass's own would give."""

from __future__ import annotations

import dataclasses
import inspect
import pickle

import pytest

from refsmith import model
from refsmith.jobs import records as jobs
from refsmith.util.record import record

RECORDS = [cls for module in (model, jobs) for cls in vars(module).values()
           if isinstance(cls, type) and dataclasses.is_dataclass(cls)
           and cls.__module__ == module.__name__]


def reference_class(cls: type) -> type:
    """The same fields as a plain frozen dataclass (the generated constructor)."""
    specs = []
    for f in dataclasses.fields(cls):
        extra = {}
        if f.default is not dataclasses.MISSING:
            extra["default"] = f.default
        if f.default_factory is not dataclasses.MISSING:
            extra["default_factory"] = f.default_factory
        specs.append((f.name, f.type, dataclasses.field(**extra)))
    return dataclasses.make_dataclass(cls.__name__, specs, frozen=True)


def test_every_record_class_of_the_plan_is_one() -> None:
    names = {cls.__name__ for cls in RECORDS}
    assert {"Exposure", "Member", "Group", "StartChoice", "CalibrationJob", "ProductOutput",
            "ReffileInput", "ReffileJob", "CombineJob"} <= names


@pytest.mark.parametrize("cls", RECORDS, ids=lambda c: c.__name__)
def test_fast_constructor_equals_the_generated_one(cls: type) -> None:
    reference = reference_class(cls)
    fields = dataclasses.fields(cls)
    required = [f for f in fields if f.default is dataclasses.MISSING
                and f.default_factory is dataclasses.MISSING]
    assert str(inspect.signature(cls.__init__)).replace("_NO_VALUE", "<factory>") \
        .count("=") == len(fields) - len(required)
    args = [f"value-{f.name}" for f in required]
    for kwargs in ({}, {f.name: (f.name,) for f in fields if f not in required}):
        ours, theirs = cls(*args, **kwargs), reference(*args, **kwargs)
        assert list(vars(ours).items()) == list(vars(theirs).items())
        assert ours == cls(*args, **kwargs) and hash(ours) == hash(cls(*args, **kwargs))
        assert pickle.loads(pickle.dumps(ours)) == ours
        assert repr(ours).split("(", 1)[1] == repr(theirs).split("(", 1)[1]
    # keywords, and fresh objects from default factories
    ours = cls(**{f.name: f"value-{f.name}" for f in required})
    for f in fields:
        if f.default_factory is not dataclasses.MISSING:
            assert getattr(ours, f.name) == f.default_factory()
            assert getattr(ours, f.name) is not getattr(cls(*args), f.name)
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(ours, fields[0].name, "changed")
    changed = dataclasses.replace(ours, **{fields[0].name: "changed"})
    assert getattr(changed, fields[0].name) == "changed"
    with pytest.raises(TypeError):
        cls(*args, "one too many", *range(len(fields)))


def test_classes_that_need_the_generated_constructor_are_refused() -> None:
    class WithPost:
        x: int

        def __post_init__(self) -> None:
            pass

    class WithHidden:
        x: int
        y: int = dataclasses.field(default=0, init=False)

    for cls in (WithPost, WithHidden):
        with pytest.raises(TypeError, match="fast constructor"):
            record(cls)
