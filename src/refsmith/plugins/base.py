"""The plug-in API: :class:`ReffilePlugin` and the parameters every plug-in has.

A plug-in is a class with a ``name``, the ``reftype`` it makes, the ``imtypes`` and
calibration ``steps`` it expects by default, what it ``needs`` of its recipes
(:class:`Needs`, checked when a plan is made), a pydantic ``Params`` model (a subclass of
:class:`PluginParams`) and a ``make(group, params, output_path)`` method that writes one
stdatamodels reference model to ``output_path``. The framework (:mod:`.runner`) does the
rest: parameters, metadata defaults, provenance, atomic writing, validation, logging.

Importing this module imports pydantic only (no numpy): ``refsmith plan`` checks recipes
against the plug-ins' declarations and parameter models with it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

if TYPE_CHECKING:
    from refsmith.plugins.inputs import GroupInputs

__all__ = ["REFTYPE_MODELS", "Needs", "ParamProblem", "PluginParams", "ReffilePlugin",
           "param_problems"]

REFTYPE_MODELS: dict[str, str] = {
    "readnoise": "ReadnoiseModel",
    "superbias": "SuperBiasModel",
    "dark": "DarkModel",
    "gain": "GainModel",
    "mask": "MaskModel",
    "saturation": "SaturationModel",
    "linearity": "LinearityModel",
    "ipc": "IPCModel",
    "flat": "FlatModel",
}
"""reftype -> the stdatamodels class its files must open as (strict validation)."""


class PluginParams(BaseModel):
    """Parameters every plug-in has: reference-file metadata, combination, validation.

    Plug-ins subclass it and add their own fields, each with a default and a
    ``Field(description=...)`` (shown by ``refsmith plugins``).
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True, populate_by_name=True)

    author: str = Field("refsmith", description="AUTHOR of the reference file")
    pedigree: str = Field("GROUND", description="PEDIGREE (GROUND, INFLIGHT <start> <end>, "
                                                "DUMMY, SIMULATION)")
    useafter: str | None = Field(None, description="USEAFTER (ISO date); default: the "
                                                   "start of the earliest input")
    description: str | None = Field(None, description="DESCRIP; default: the plug-in's")
    selectors: dict[str, Any] = Field(
        default_factory=dict,
        description="datamodel attributes to set, e.g. {meta.exposure.readpatt: ANY}")
    combine: Literal["clipped_mean", "median", "mean"] = Field(
        "clipped_mean", description="how individual files are combined into the final one")
    combine_sigma: float = Field(3.0, gt=0, description="clip level of clipped_mean (sigma)")
    vote_fraction: float = Field(
        0.5, gt=0, le=1, description="masks: a flag is kept when at least this fraction "
                                     "of the individual files set it")
    validate_with: Literal["datamodel", "pipeline", "none"] = Field(
        "datamodel", alias="validate",
        description="datamodel: open with strict validation; pipeline: also run the "
                    "step using this reftype with the file as override on a raw input")


@dataclass(frozen=True)
class Needs:
    """What a plug-in needs of its recipes, checked by ``refsmith plan`` (not at run time).

    Attributes
    ----------
    all_of : str
        Image-type letters every group must hold, a letter once per exposure needed:
        ``"D"`` darks, ``"DD"`` at least a dark pair, ``"DDFF"`` a dark pair and a flat pair.
        A recipe's ``X+`` counts as enough of X.
    any_of : str
        Letters of which a group must hold at least one: ``"DF"`` darks, flats or both.
    ramps : bool
        The plug-in reads ramps (integrations x groups): the recipe's steps must stop
        before ramp_fit (no ``rate``, ``ramp_fit-``, ``slope-``).
    """

    all_of: str = ""
    any_of: str = ""
    ramps: bool = False

    def imtypes_problem(self, counts: Mapping[str, int | None], letters: Mapping[str, str]
                        ) -> str:
        """Why a recipe's parsed ``imtypes`` (type name -> count, None for ``X+``) cannot
        give what is needed ('' when it can); ``letters`` maps letters to type names."""
        def count(letter: str) -> float:
            name = letters.get(letter, letter)
            if name not in counts:
                return 0
            value = counts[name]
            return float("inf") if value is None else value

        def named(letter: str, n: int = 1) -> str:
            name = letters.get(letter, letter)
            return f"{n} {name}s ({letter * n})" if n > 1 else f"{name}s ({letter})"

        missing = [named(letter, self.all_of.count(letter))
                   for letter in dict.fromkeys(self.all_of)
                   if count(letter) < self.all_of.count(letter)]
        if missing:
            return f"needs {' and '.join(missing)} in every group"
        if self.any_of and not any(count(letter) for letter in self.any_of):
            return f"needs {' or '.join(named(letter) for letter in self.any_of)}"
        return ""


class ReffilePlugin:
    """Base class of reference-file plug-ins (subclass it, or duck-type the attributes).

    Attributes
    ----------
    name : str
        Registry name (what recipes give as ``plugin:``).
    reftype : str
        CRDS reference type written (``readnoise``, ``mask`` ...).
    imtypes : str
        The image types it expects by default (``DD``, ``D+``, ``DDFF``, ``DF+``).
    steps : tuple of str
        The calibration state it expects by default (``steps:`` syntax, e.g. ``dq_init-``).
    needs : Needs or None
        What every recipe using it must give (image types, ramps), checked when the plan
        is made; None (the default): not checked.
    description : str
        One line, also the default DESCRIP of the files.
    combine_as : str
        ``value`` (default), or ``variance`` when the files hold a noise that individual
        files should be combined as squares (the default :meth:`combine` does so).
    Params : type
        Its parameter model, a subclass of :class:`PluginParams`.
    """

    name: ClassVar[str] = ""
    reftype: ClassVar[str] = ""
    imtypes: ClassVar[str] = ""
    steps: ClassVar[tuple[str, ...]] = ()
    needs: ClassVar[Needs | None] = None
    description: ClassVar[str] = ""
    combine_as: ClassVar[str] = "value"
    Params: ClassVar[type[PluginParams]] = PluginParams

    def make(self, group: GroupInputs, params: Any, output_path: str) -> Any:
        """Write one individual reference file for ``group`` to ``output_path``.

        Or return the datamodel instead of saving it: the framework then writes it once,
        with its metadata and HISTORY (a full-frame dark is 640 MB: one write saved).
        """
        raise NotImplementedError(f"plug-in {self.name!r} does not implement make()")

    def combine(self, individual_files: Sequence[str], params: Any, output_path: str) -> Any:
        """Combine individual files into the final one (default: :func:`.combine.combine_files`).

        Like :meth:`make`: write ``output_path`` or return the datamodel.
        """
        from refsmith.plugins.combine import combine_files

        return combine_files(individual_files, params, None, combine_as=self.combine_as)


@dataclass(frozen=True)
class ParamProblem:
    """One refused parameter: its key, where its value came from (``config params``,
    ``--param recipe.key`` or ``default``), why (``reason``; ``unknown`` for a key the
    model does not have) and the keys the model knows."""

    key: str
    source: str
    reason: str
    unknown: bool = False
    known: tuple[str, ...] = ()

    def __str__(self) -> str:
        if self.unknown:
            return (f"unknown parameter '{self.key}' ({self.source}); known: "
                    f"{', '.join(self.known)}")
        return f"parameter '{self.key}' ({self.source}): {self.reason}"


def param_problems(params_class: type[BaseModel], recipe: str,
                   config_params: Mapping[str, Any], overrides: Mapping[str, Any] = {}
                   ) -> tuple[Any, list[ParamProblem]]:
    """Validate plug-in defaults < config ``params`` < command-line ``overrides``.

    ``overrides`` keys are ``key`` or ``recipe.key`` (keys of other recipes are ignored).
    Returns the validated parameters (None when there are problems) and the problems.
    """
    merged: dict[str, Any] = {}
    source: dict[str, str] = {}
    for key, value in config_params.items():
        merged[key], source[key] = value, "config params"
    for key, value in overrides.items():
        owner, dot, name = key.partition(".")
        if dot and owner != recipe:
            continue
        name = name if dot else key
        merged[name], source[name] = value, f"--param {recipe}.{name}"
    try:
        return params_class.model_validate(merged), []
    except ValidationError as exc:
        known = tuple(sorted(f.alias or n for n, f in params_class.model_fields.items()))
        problems = []
        for error in exc.errors():
            key = str(error["loc"][0]) if error["loc"] else "?"
            unknown = error["type"] == "extra_forbidden"
            problems.append(ParamProblem(key, source.get(key, "default"),
                                         "unknown parameter" if unknown else error["msg"],
                                         unknown, known))
        return None, problems
