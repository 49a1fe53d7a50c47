"""What planning is given: each recipe's needs (:class:`RecipeSpec`: its grouping rule, the
steps its inputs need, the intermediate states to keep, its plug-in and memory budget) and
where products and references are, with the reader of their headers
(:class:`PlanningOptions`); the state a recipe requires of one instrument's exposure
(:func:`required_state`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from refsmith.detector1.keywords import canonical_step
from refsmith.detector1.steps import expand_steps, step_order
from refsmith.errors import ConfigError
from refsmith.grouping.rule import GroupingRule
from refsmith.planning.references import HeaderReader

FITOPT = "fitopt"
"""The ``save_steps`` value asking for ramp_fit's optional outputs (not a step)."""


@dataclass(frozen=True)
class RecipeSpec:
    """What one recipe needs: its grouping rule, the calibration state of its inputs and
    the memory budget (bytes) of its reference-file and combine jobs (0: none given)."""

    rule: GroupingRule
    steps: str | tuple[str, ...]
    save_steps: tuple[str, ...] = ()
    plugin: str | None = None
    params: Mapping[str, Any] = field(default_factory=dict, hash=False)
    memory: int = 0

    @property
    def name(self) -> str:
        return self.rule.recipe


@dataclass(frozen=True)
class PlanningOptions:
    """Where products and references are, how to read their headers, where jobs write.

    ``read_headers`` (paths -> Exposure records) reads the primary headers of products and
    reference files; :func:`refsmith.catalog.catalog.header_reader` gives the catalog's.
    """

    store_dir: Path
    read_headers: HeaderReader = field(compare=False)
    search_dirs: tuple[Path, ...] = ()
    references: Mapping[str, str] = field(default_factory=dict, hash=False)
    output_dir: Path | None = None
    config_digest: str = ""  # recorded in reference-file jobs (provenance)


def check_step_names(recipe: RecipeSpec) -> None:
    """Raise ConfigError, naming the recipe, for a step name that is no calwebb_detector1
    step (``steps`` is expanded per instrument later)."""
    for item in (recipe.steps if not isinstance(recipe.steps, str) else [recipe.steps]):
        for part in str(item).replace(",", " ").split():
            try:
                canonical_step(part.rstrip("-"))
            except ConfigError as error:
                raise ConfigError(f"recipe {recipe.name!r}: {error}") from None


def runs_ramp_fit(steps: str | Sequence[str]) -> bool:
    """Whether a recipe's ``steps`` include ramp_fit (``rate``, ``ramp_fit-``, ``slope-``,
    ``gain_scale-`` ...) for every instrument: its inputs are then slopes, not ramps."""
    order = step_order("NIRCAM")  # ramp_fit and what follows it are alike for every one
    after = order[order.index("ramp_fit") + 1:]
    for item in [steps] if isinstance(steps, str) else steps:
        for part in str(item).replace(",", " ").split():
            try:
                step = canonical_step(part.rstrip("-"))
            except ConfigError:
                continue  # unknown names are reported by check_step_names
            if step == "ramp_fit" or (part.endswith("-") and step in after):
                return True
    return False


def required_state(recipe: RecipeSpec, instrument: str) -> tuple[str, ...]:
    """The steps ``recipe`` needs complete on an exposure of ``instrument`` (in order)."""
    try:
        return expand_steps(recipe.steps, instrument)
    except ConfigError as error:
        raise ConfigError(f"recipe {recipe.name!r}: steps {recipe.steps!r}: {error}") from None


def save_states(recipe: RecipeSpec, required: Sequence[str], instrument: str
                ) -> tuple[frozenset[str], ...]:
    """The intermediate states ``save_steps`` asks to keep (``fitopt`` excluded)."""
    rank = {s: i for i, s in enumerate(step_order(instrument))}
    states = []
    for item in recipe.save_steps:
        if str(item).strip().lower() == FITOPT:
            if "ramp_fit" not in required:
                raise ConfigError(f"recipe {recipe.name!r}: save_steps 'fitopt' needs ramp_fit "
                                  "in steps")
            continue
        try:
            step = canonical_step(str(item))
        except ConfigError as error:
            raise ConfigError(f"recipe {recipe.name!r}: save_steps: {error}") from None
        if step not in required:
            raise ConfigError(f"recipe {recipe.name!r}: save_steps {item!r} is not among the "
                              f"steps the recipe runs ({', '.join(required)})")
        states.append(frozenset(s for s in required if rank[s] <= rank[step]))
    return tuple(states)


def wants_fitopt(recipe: RecipeSpec) -> bool:
    """Whether ``save_steps`` asks for ramp_fit's optional outputs."""
    return any(str(s).strip().lower() == FITOPT for s in recipe.save_steps)
