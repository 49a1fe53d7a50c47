"""Job records of a plan (frozen, JSON-ready via ``to_dict``/``from_dict``): the contract
between planning and execution.

Built by :mod:`refsmith.planning.planner`, run by :mod:`refsmith.execute`; see docs/planning.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import field
from typing import Any

from refsmith.util.record import record


@record
class ProductOutput:
    """One product a calibration job keeps.

    Attributes
    ----------
    steps : tuple of str
        The state's complete steps, in pipeline order.
    path : str
        Where it is kept (the calibrated store).
    kind : str
        ``product`` (the calibrated exposure) or ``fitopt`` (optional ramp-fit output).
    strun_name : str
        The file name the job's ``argv`` gives it in ``--output_dir`` (rename to ``path``).
    """

    steps: tuple[str, ...]
    path: str
    kind: str = "product"
    strun_name: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"steps": list(self.steps), "path": self.path, "kind": self.kind,
                "strun_name": self.strun_name}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ProductOutput:
        return cls(steps=tuple(data["steps"]), path=data["path"],
                   kind=data.get("kind", "product"), strun_name=data.get("strun_name", ""))


@record
class CalibrationJob:
    """Run calwebb_detector1 once on one file, from its state to a target state.

    ``start_steps`` are the steps already done on ``start_file``; ``steps_to_run`` the
    steps this job runs (pipeline order), ``steps_to_skip`` every other step of the
    instrument. ``outputs`` lists the final and every intermediate product kept;
    ``overrides`` maps step -> reftype -> file path; ``depends_on`` holds ids of jobs that
    make a reference file this job uses (``self`` references). ``memory`` is the estimated
    peak memory (bytes) of the job above its worker's base (:mod:`refsmith.util.memory`; 0 =
    no estimate). ``identities`` holds the metadata of the raw exposure and the start file
    when the plan was made (:mod:`refsmith.util.identity`): the worker refuses to run on a file
    changed since.
    """

    id: str
    exposure: str
    instrument: str
    start_file: str
    start_steps: tuple[str, ...]
    steps_to_run: tuple[str, ...]
    steps_to_skip: tuple[str, ...]
    outputs: tuple[ProductOutput, ...]
    overrides: Mapping[str, Mapping[str, str]] = field(default_factory=dict, hash=False)
    argv: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    recipes: tuple[str, ...] = ()
    depends_on: tuple[str, ...] = ()
    memory: int = 0
    identities: Mapping[str, Mapping[str, int]] = field(default_factory=dict, hash=False)

    @property
    def final_output(self) -> ProductOutput:
        """The product of the job's target state (the last step it runs)."""
        return max((o for o in self.outputs if o.kind == "product"),
                   key=lambda o: len(o.steps))

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "exposure": self.exposure,
            "instrument": self.instrument,
            "start_file": self.start_file,
            "start_steps": list(self.start_steps),
            "steps_to_run": list(self.steps_to_run),
            "steps_to_skip": list(self.steps_to_skip),
            "outputs": [o.to_dict() for o in self.outputs],
            "overrides": {s: dict(r) for s, r in self.overrides.items()},
            "argv": list(self.argv),
            "groups": list(self.groups),
            "recipes": list(self.recipes),
            "depends_on": list(self.depends_on),
            "memory": self.memory,
            "identities": {p: dict(i) for p, i in self.identities.items()},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CalibrationJob:
        return cls(
            id=data["id"],
            exposure=data["exposure"],
            instrument=data.get("instrument", ""),
            start_file=data["start_file"],
            start_steps=tuple(data.get("start_steps", ())),
            steps_to_run=tuple(data["steps_to_run"]),
            steps_to_skip=tuple(data.get("steps_to_skip", ())),
            outputs=tuple(ProductOutput.from_dict(o) for o in data["outputs"]),
            overrides={s: dict(r) for s, r in data.get("overrides", {}).items()},
            argv=tuple(data.get("argv", ())),
            groups=tuple(data.get("groups", ())),
            recipes=tuple(data.get("recipes", ())),
            depends_on=tuple(data.get("depends_on", ())),
            memory=int(data.get("memory", 0)),
            identities={p: dict(i) for p, i in data.get("identities", {}).items()},
        )


@record
class ReffileInput:
    """One member of a group: its role, raw exposure and the calibrated file to read;
    ``identity``: the raw exposure's metadata when the plan was made
    (:mod:`refsmith.util.identity`; empty: not checked)."""

    role: str
    exposure: str
    path: str
    identity: Mapping[str, int] = field(default_factory=dict, hash=False)

    def to_dict(self) -> dict[str, Any]:
        return {"role": self.role, "exposure": self.exposure, "path": self.path,
                "identity": dict(self.identity)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ReffileInput:
        return cls(role=data["role"], exposure=data["exposure"], path=data["path"],
                   identity=dict(data.get("identity", {})))


@record
class ReffileJob:
    """Make one individual reference file from one group (after its calibration jobs).

    ``memory`` is the job's memory budget in bytes (``recipes.<name>.memory``, else
    ``execution.reffile_memory``): the plug-in sizes its blocks to it.
    """

    id: str
    recipe: str
    reftype: str
    group: str
    plugin: str
    inputs: tuple[ReffileInput, ...]
    output: str
    depends_on: tuple[str, ...] = ()
    params: Mapping[str, Any] = field(default_factory=dict, hash=False)
    config: str = ""  # the config file and its digest, for provenance
    memory: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "recipe": self.recipe,
            "reftype": self.reftype,
            "group": self.group,
            "plugin": self.plugin,
            "inputs": [i.to_dict() for i in self.inputs],
            "output": self.output,
            "depends_on": list(self.depends_on),
            "params": dict(self.params),
            "config": self.config,
            "memory": self.memory,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ReffileJob:
        return cls(
            id=data["id"], recipe=data["recipe"], reftype=data["reftype"],
            group=data["group"], plugin=data["plugin"],
            inputs=tuple(ReffileInput.from_dict(i) for i in data["inputs"]),
            output=data["output"], depends_on=tuple(data.get("depends_on", ())),
            params=dict(data.get("params", {})), config=data.get("config", ""),
            memory=int(data.get("memory", 0)),
        )


@record
class CombineJob:
    """Combine a recipe's individual reference files of one partition into the final one.

    ``memory``: the job's memory budget in bytes, as for :class:`ReffileJob`.
    """

    id: str
    recipe: str
    reftype: str
    plugin: str
    partition: tuple[tuple[str, Any], ...]
    inputs: tuple[str, ...]
    output: str
    depends_on: tuple[str, ...] = ()
    params: Mapping[str, Any] = field(default_factory=dict, hash=False)
    config: str = ""  # the config file and its digest, for provenance
    memory: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "recipe": self.recipe,
            "reftype": self.reftype,
            "plugin": self.plugin,
            "partition": {k: v for k, v in self.partition},
            "inputs": list(self.inputs),
            "output": self.output,
            "depends_on": list(self.depends_on),
            "params": dict(self.params),
            "config": self.config,
            "memory": self.memory,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CombineJob:
        return cls(
            id=data["id"], recipe=data["recipe"], reftype=data["reftype"],
            plugin=data["plugin"], partition=tuple(data["partition"].items()),
            inputs=tuple(data["inputs"]), output=data["output"],
            depends_on=tuple(data.get("depends_on", ())),
            params=dict(data.get("params", {})), config=data.get("config", ""),
            memory=int(data.get("memory", 0)),
        )


@record
class Rejected:
    """A start candidate that was not used, and why."""

    path: str
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "reason": self.reason}


@record
class StartChoice:
    """For one (recipe, exposure): the file to start from and why (``refsmith explain``).

    ``start_file`` is '' when no candidate is usable; ``excluded`` then says why the
    exposure is left out of the recipe.
    """

    recipe: str
    exposure: str
    required: tuple[str, ...]
    start_file: str
    start_steps: tuple[str, ...]
    steps_to_run: tuple[str, ...]
    rejected: tuple[Rejected, ...] = ()
    excluded: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "recipe": self.recipe,
            "exposure": self.exposure,
            "required": list(self.required),
            "start_file": self.start_file,
            "start_steps": list(self.start_steps),
            "steps_to_run": list(self.steps_to_run),
            "rejected": [r.to_dict() for r in self.rejected],
            "excluded": self.excluded,
        }

    def describe(self) -> str:
        """Human-readable lines: the start file, the steps to run, each rejected file."""
        if self.excluded:
            lines = [f"excluded: {self.excluded}"]
        elif not self.steps_to_run:
            lines = [f"already at the required state: {self.start_file}"]
        else:
            done = ", ".join(self.start_steps) or "none"
            lines = [f"start from {self.start_file} (done: {done})",
                     f"steps to run: {', '.join(self.steps_to_run)}"]
        lines += [f"rejected {r.path}: {r.reason}" for r in self.rejected]
        return "\n".join(lines)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StartChoice:
        return cls(
            recipe=data["recipe"], exposure=data["exposure"],
            required=tuple(data["required"]), start_file=data["start_file"],
            start_steps=tuple(data["start_steps"]),
            steps_to_run=tuple(data["steps_to_run"]),
            rejected=tuple(Rejected(**r) for r in data.get("rejected", ())),
            excluded=data.get("excluded", ""),
        )
