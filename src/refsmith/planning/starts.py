"""Start files: which file of an exposure its calibration starts from (stage 2 of a plan).

The candidates of an exposure are its raw file and the products of the same exposure (same
base name, same INSTRUME/DETECTOR) in the search directories and the calibrated store.
:func:`choose_starts` chooses for every candidate exposure of every recipe, before grouping:
an exposure with no usable start file takes no place in the recipe's groups. A recipe's
candidates are the usable exposures of its image types that its ``select`` keeps; one of an
instrument that lacks a step the recipe needs is excluded with that reason. See
docs/planning.md for the rules.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

from refsmith.detector1.keywords import STEP_KEYWORDS, canonical_step, normalize_instrument
from refsmith.detector1.naming import exposure_base, product_base
from refsmith.detector1.steps import NOT_APPLICABLE, step_done, step_order
from refsmith.errors import ConfigError
from refsmith.grouping.imtypes import parse_imtypes
from refsmith.jobs.records import Rejected, StartChoice
from refsmith.model import Exposure, Leftover
from refsmith.planning.specs import (
    FITOPT,
    PlanningOptions,
    RecipeSpec,
    check_step_names,
    required_state,
    save_states,
)

# ---------------------------------------------------------------- start candidates


def header_of(exposure: Exposure) -> dict[str, Any]:
    """Header values of an Exposure (keywords read plus the standard attributes)."""
    header = dict(exposure.keywords)
    header.update({"INSTRUME": exposure.instrument, "DETECTOR": exposure.detector,
                   "SUBARRAY": exposure.subarray, "READPATT": exposure.readpatt,
                   "NGROUPS": exposure.ngroups})
    return {k: v for k, v in header.items() if v is not None}


def done_steps(exposure: Exposure, order: Sequence[str]) -> frozenset[str]:
    """Steps that count as done: COMPLETE, or SKIPPED where the step does not apply."""
    header = header_of(exposure)
    status = {s: str(v).strip().upper() for s, v in exposure.step_status.items()}
    for step in exposure.completed_steps:
        status.setdefault(step, "COMPLETE")
    return frozenset(s for s in order if step_done(s, status.get(s), header))


def complete_steps(exposure: Exposure) -> frozenset[str]:
    """Steps whose S_* keyword is COMPLETE."""
    complete = {s for s, v in exposure.step_status.items()
                if str(v).strip().upper() == "COMPLETE"}
    return frozenset(complete | set(exposure.completed_steps))


def evaluate_candidate(candidate: Exposure, raw: Exposure, recipe: str,
                       required: Sequence[str], order: Sequence[str]) -> tuple[str, frozenset]:
    """Why ``candidate`` cannot start ``raw`` toward ``required`` ('' if usable), and its
    done steps among ``required``.

    Usable iff INSTRUME/DETECTOR agree with the raw exposure, its COMPLETE steps are a
    subset of the required state, every done step precedes every required step it lacks,
    and it is not a ramp-fitted (2-D) product with steps still to run.
    """
    if candidate.path != raw.path:
        if not candidate.usable and not candidate.step_status:
            return f"unreadable: {candidate.reason}", frozenset()
        for label, ours, theirs in (("INSTRUME", candidate.instrument, raw.instrument),
                                    ("DETECTOR", candidate.detector, raw.detector)):
            if str(ours or "").upper() != str(theirs or "").upper():
                return f"{label}={ours} differs from the exposure's {theirs}", frozenset()
    wanted = set(required)
    forbidden = [s for s in order if s in complete_steps(candidate) and s not in wanted]
    if forbidden:
        step = forbidden[0]
        keyword = STEP_KEYWORDS[step]
        return (f"{keyword}=COMPLETE but recipe {recipe!r} requires {step} not run",
                frozenset())
    done = done_steps(candidate, order) & wanted
    missing = [s for s in required if s not in done]
    rank = {s: i for i, s in enumerate(order)}
    if missing and done:
        late = [s for s in order if s in done and rank[s] > rank[missing[0]]]
        if late:
            return (f"{late[0]} is done but the earlier {missing[0]} is not (the pipeline "
                    "cannot insert an earlier step later)", frozenset())
    if missing and "ramp_fit" in done:
        return (f"ramp-fitted product cannot be resumed; {', '.join(missing)} still needed",
                frozenset())
    if candidate.path != raw.path and not done:
        return "no required step done (the raw file is equivalent)", frozenset()
    return "", frozenset(done)


def choose_start(raw: Exposure, products: Sequence[Exposure], recipe: str,
                 required: Sequence[str]) -> StartChoice:
    """The usable candidate with the most steps done (ties: by path), and the rejects."""
    if not products and not raw.step_status and not raw.completed_steps:
        return StartChoice(recipe, raw.path, tuple(required), raw.path, (), tuple(required))
    order = step_order(raw.instrument or "")
    usable: list[tuple[int, str, frozenset[str]]] = []
    rejected: list[Rejected] = []
    raw_reason = ""
    for candidate in (raw, *sorted(products, key=lambda e: e.path)):
        reason, done = evaluate_candidate(candidate, raw, recipe, required, order)
        if reason:
            rejected.append(Rejected(candidate.path, reason))
            if candidate.path == raw.path:
                raw_reason = reason
        else:
            usable.append((-len(done), candidate.path, done))
    if not usable:
        return StartChoice(recipe, raw.path, tuple(required), "", (), (), tuple(rejected),
                           excluded=raw_reason or "no usable start file")
    usable.sort(key=lambda u: (u[0], u[1]))
    _, path, done = usable[0]
    rejected += [Rejected(p, f"fewer steps done ({len(d)} < {len(done)})")
                 for _, p, d in usable[1:]]
    return StartChoice(
        recipe, raw.path, tuple(required), path,
        tuple(s for s in order if s in done),
        tuple(s for s in required if s not in done), tuple(rejected),
    )


def find_products(dirs: Iterable[Path], bases: set[str], exclude: set[str]
                  ) -> dict[str, list[str]]:
    """Product files under ``dirs`` (recursively) whose exposure base is in ``bases``."""
    found: dict[str, set[str]] = defaultdict(set)
    for directory in dirs:
        if not Path(directory).is_dir():
            continue
        for root, _, files in os.walk(directory):
            for name in files:
                base = product_base(name)
                if base in bases:
                    path = str(Path(root, name).resolve())
                    if path not in exclude:
                        found[base].add(path)
    return {base: sorted(paths) for base, paths in found.items()}


def needs_reread(exposure: Exposure) -> bool:
    """A SKIPPED step whose applicability keywords were not read with the exposure."""
    if not exposure.step_status:
        return False
    header = header_of(exposure)
    return any(
        str(status).strip().upper() == "SKIPPED" and step in NOT_APPLICABLE
        and not all(k in header or k in exposure.keywords
                    for k in NOT_APPLICABLE[step][0])
        for step, status in exposure.step_status.items()
    )


# ---------------------------------------------------------------- every candidate's start


def _required_or_why(recipe: RecipeSpec, instrument: str | None) -> tuple[str, ...] | str:
    """The state ``recipe`` requires of an exposure of ``instrument``, or why there is
    none: an unknown instrument, or one that lacks a step the recipe needs (the exposure
    is then a leftover of the recipe; the plan goes on for the others).

    ``save_steps`` are validated here too: one that is no step at all, or not among the
    steps the recipe runs, is a ConfigError.
    """
    try:
        name = normalize_instrument(instrument or "")
    except ConfigError:
        return f"unknown instrument {instrument!r}: cannot plan calibration"
    order = step_order(name)
    lacking = [step for step in _named_steps(recipe.steps) if step not in order]
    if lacking:
        return (f"step {lacking[0]!r} does not exist for {name}, and recipe "
                f"{recipe.name!r} requires it (steps: {_shown(recipe.steps)})")
    required = required_state(recipe, name)
    unsaved = [step for step in _named_steps(recipe.save_steps, saves=True)
               if step not in order]
    if unsaved:
        return (f"step {unsaved[0]!r} does not exist for {name}, and recipe "
                f"{recipe.name!r} saves it (save_steps: {_shown(recipe.save_steps)})")
    save_states(recipe, required, name)  # validates save_steps
    return required


def _named_steps(steps: str | Sequence[str], saves: bool = False) -> list[str]:
    """The step names in ``steps`` (``X-`` gives X; ``fitopt`` of save_steps is none)."""
    names = []
    for item in [steps] if isinstance(steps, str) else steps:
        for part in str(item).replace(",", " ").split():
            if saves and part.strip().lower() == FITOPT:
                continue
            try:
                names.append(canonical_step(part.rstrip("-")))
            except ConfigError:
                continue  # not a step at all: the callers' ConfigError names it
    return names


def _shown(steps: str | Sequence[str]) -> str:
    return steps if isinstance(steps, str) else ", ".join(map(str, steps))


def _selector(select: Mapping[str, Sequence[str]]) -> Callable[[Exposure], bool]:
    """``exposure -> bool``: whether its header values match a recipe's ``select``
    (what grouping screens by; a missing value does not match). Each distinct value is
    matched once."""
    known: dict[tuple[str, Any], bool] = {}

    def matches(keyword: str, value: Any) -> bool:
        key = (keyword, value)
        found = known.get(key)
        if found is None:
            text = "" if value is None else str(value).strip().upper()
            found = known[key] = bool(text) and any(
                fnmatchcase(text, pattern.upper()) for pattern in select[keyword])
        return found

    return lambda exposure: all(matches(k, exposure.value(k)) for k in select)


class StartFiles:
    """The file every candidate exposure of every recipe starts from (:func:`choose_starts`).

    A recipe's candidates are the usable exposures of its image types.

    Attributes
    ----------
    choices : dict
        ``(recipe, raw path) -> StartChoice`` of every candidate (and of any other exposure
        a group holds, chosen when asked: :meth:`choice`).
    excluded : dict
        recipe -> a Leftover for each candidate with no usable start file, in catalog
        order. These take no place in the recipe's groups.
    headers : dict
        path -> Exposure of the files read to choose: the candidates' products (in the
        search directories and the calibrated store), and raw files read again for the
        keywords of the not-applicable table.
    """

    def __init__(self, products: dict[str, list[Exposure]], headers: dict[str, Exposure],
                 base_names: dict[str, str]) -> None:
        self.choices: dict[tuple[str, str], StartChoice] = {}
        self.excluded: dict[str, list[Leftover]] = {}
        self.headers = headers
        self._products = products
        self._base_names = base_names
        # the required state per (recipe, INSTRUME value), or why there is none
        self._required: dict[tuple[str, str | None], tuple[str, ...] | str] = {}

    def base_name(self, path: str) -> str:
        """The exposure base name of ``path`` (worked out once for the candidates)."""
        base = self._base_names.get(path)
        return exposure_base(path) if base is None else base

    def excluded_paths(self) -> dict[str, set[str]]:
        """recipe -> the paths of its candidates with no usable start file."""
        return {name: {x.path for x in leftovers} for name, leftovers in self.excluded.items()}

    def choice(self, recipe: RecipeSpec, exposure: Exposure) -> StartChoice:
        """The start choice of ``exposure`` for ``recipe`` (chosen once, then kept)."""
        key = (recipe.name, exposure.path)
        choice = self.choices.get(key)
        if choice is None:
            choice = self.choices[key] = self._choose(recipe, exposure)
        return choice

    def _choose(self, recipe: RecipeSpec, exposure: Exposure) -> StartChoice:
        state_key = (recipe.name, exposure.instrument)
        if state_key in self._required:
            required = self._required[state_key]
        else:
            required = self._required[state_key] = _required_or_why(recipe, exposure.instrument)
        if isinstance(required, str):  # why the instrument cannot reach the state
            return StartChoice(recipe.name, exposure.path, (), "", (), (), excluded=required)
        headers, products = self.headers, self._products
        view = headers.get(exposure.path, exposure) if headers else exposure
        found = products.get(self.base_name(exposure.path), []) if products else []
        return choose_start(view, found, recipe.name, required)


def choose_starts(exposures: Sequence[Exposure], recipes: Sequence[RecipeSpec],
                  options: PlanningOptions) -> StartFiles:
    """Choose the start file of every candidate exposure of every recipe.

    Parameters
    ----------
    exposures : sequence of Exposure
        The catalog.
    recipes : sequence of RecipeSpec
        The recipes, in config order.
    options : PlanningOptions
        The calibrated store and search directories (where products are looked for) and the
        header reader (``read_headers``) their headers are read with.

    Returns
    -------
    StartFiles

    Raises
    ------
    ConfigError
        Unknown step names in ``steps`` or ``save_steps``, naming the recipe. A candidate
        whose instrument lacks a step the recipe needs is not an error: it is excluded
        (a leftover of the recipe) with a reason naming the step and the instrument.
    """
    candidates: dict[str, list[Exposure]] = {}
    for recipe in recipes:
        check_step_names(recipe)
        types = set(parse_imtypes(recipe.rule.imtypes, recipe.rule.letters))
        of_types = [e for e in exposures if e.usable and e.imtype in types]
        # select first: an exposure it leaves out is grouping's leftover (with the
        # keyword), whatever its instrument can or cannot run
        if recipe.rule.select:
            of_types = list(filter(_selector(recipe.rule.select), of_types))
        candidates[recipe.name] = of_types
    # every candidate once (most are candidates of several recipes)
    unique = {e.path: e for cands in candidates.values() for e in cands}
    base_of = {path: exposure_base(path) for path in unique}
    product_paths = find_products([*options.search_dirs, Path(options.store_dir)],
                                  set(base_of.values()), {e.path for e in exposures})
    reread = sorted(p for p, e in unique.items() if needs_reread(e))
    wanted = sorted({p for ps in product_paths.values() for p in ps}) + reread
    headers = {h.path: h for h in options.read_headers(wanted)} if wanted else {}
    products = {b: [headers[p] for p in ps if p in headers] for b, ps in product_paths.items()}
    starts = StartFiles(products, headers, base_of)
    for recipe in recipes:
        excluded = starts.excluded[recipe.name] = []
        for exposure in candidates[recipe.name]:
            choice = starts.choice(recipe, exposure)
            if choice.excluded:
                excluded.append(Leftover(recipe.name, exposure.path, choice.excluded))
    return starts
