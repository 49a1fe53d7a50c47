"""The plug-in API: :class:`ReffilePlugin` and the parameters every plug-in has.

A plug-in is a class with a ``name``, the ``reftype`` it makes, the ``imtypes`` and
calibration ``steps`` it expects by default, a pydantic ``Params`` model (a subclass of
:class:`PluginParams`) and a ``make(group, params, output_path)`` method that writes one
stdatamodels reference model to ``output_path``. The framework (:mod:`.runner`) does the
rest: parameters, metadata defaults, provenance, atomic writing, validation, logging.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from refsmith.plugins.inputs import GroupInputs

__all__ = ["REFTYPE_MODELS", "PluginParams", "ReffilePlugin"]

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
