"""What the built-in plug-ins declare, without their numerical code: names, reference types,
default image types and steps, what they need of a recipe (:class:`~refsmith.plugins.base.Needs`)
and their parameter models.

Each built-in plug-in class (``readnoise.ReadnoisePlugin``...) subclasses its declaration
here and adds ``make``. ``refsmith plan`` checks every recipe against these classes
(:func:`refsmith.plugins.registry.declared_plugin`): importing this module imports pydantic,
not numpy (0.3 s of every ``plan`` otherwise).
"""

from __future__ import annotations

import functools

from pydantic import Field, field_validator

from refsmith.plugins.base import Needs, PluginParams, ReffilePlugin

__all__ = [
    "BadPixelMask", "BadPixelParams", "Dark", "DarkParams", "Gain", "GainParams", "Readnoise",
    "ReadnoiseParams", "Superbias", "SuperbiasParams", "flag_value",
]


@functools.cache
def _pixel_flags() -> dict[str, int]:
    from stdatamodels.jwst.datamodels import dqflags  # only when a flag name is given

    return dict(dqflags.pixel)


def flag_value(name: str) -> int:
    """The JWST pixel DQ value of a flag name (ValueError naming the known ones)."""
    flags = _pixel_flags()
    try:
        return int(flags[name.upper()])
    except KeyError:
        raise ValueError(f"unknown DQ flag {name!r}; JWST flags: {', '.join(flags)}") from None


# ---------------------------------------------------------------- readnoise


class ReadnoiseParams(PluginParams):
    """Parameters of :class:`~refsmith.plugins.builtin.readnoise.ReadnoisePlugin`."""

    sigma_clip: float = Field(4.0, ge=0, description="clip CDS samples beyond this many "
                              "sigma (the larger of the amplifier's pooled scatter and the "
                              "pixel's own; 0: no clipping)")


class Readnoise(ReffilePlugin):
    """Declarations of the ``readnoise`` built-in (``readnoise.ReadnoisePlugin``)."""

    name = "readnoise"
    reftype = "readnoise"
    imtypes = "DD"
    steps = ("dq_init-",)
    needs = Needs(all_of="DD", ramps=True)
    description = "CDS read noise from a dark pair difference"
    combine_as = "variance"
    Params = ReadnoiseParams


# ---------------------------------------------------------------- superbias


class SuperbiasParams(PluginParams):
    """Parameters of :class:`~refsmith.plugins.builtin.superbias.SuperbiasPlugin`."""

    sigma_clip: float = Field(4.0, ge=0, description="clip level over the first groups "
                              "(sigma: the larger of the amplifier's pooled scatter and the "
                              "pixel's own; 0: plain mean)")
    unreliable_sigma: float = Field(
        10.0, gt=0, description="flag UNRELIABLE_BIAS where the scatter of a pixel's first "
                                "groups is this many robust sigma above the typical scatter")


class Superbias(ReffilePlugin):
    """Declarations of the ``superbias`` built-in (``superbias.SuperbiasPlugin``)."""

    name = "superbias"
    reftype = "superbias"
    imtypes = "D+"
    steps = ("dq_init-",)
    needs = Needs(all_of="D", ramps=True)
    description = "Superbias: clipped mean of the first group of darks"
    Params = SuperbiasParams


# ---------------------------------------------------------------- dark


class DarkParams(PluginParams):
    """Parameters of :class:`~refsmith.plugins.builtin.dark.DarkPlugin`."""

    sigma_clip: float = Field(4.0, ge=0, description="clip level over the integrations "
                              "(sigma: the larger of the amplifier's pooled scatter and the "
                              "pixel's own; 0: plain mean)")


class Dark(ReffilePlugin):
    """Declarations of the ``dark`` built-in (``dark.DarkPlugin``)."""

    name = "dark"
    reftype = "dark"
    imtypes = "D+"
    steps = ("linearity-",)
    needs = Needs(all_of="D", ramps=True)
    description = "Dark: clipped mean ramp of superbias-corrected darks"
    Params = DarkParams


# ---------------------------------------------------------------- gain


class GainParams(PluginParams):
    """Parameters of :class:`~refsmith.plugins.builtin.gain.GainPlugin`."""

    box: int = Field(32, ge=2, description="size (pixels) of the square boxes one gain "
                                           "value is measured in")
    reject_sigma: float = Field(5.0, gt=0, description="leave out pixels whose signal or "
                                "variance is this many robust sigma off in their box")
    min_pixels: int = Field(16, ge=2, description="boxes with fewer usable pixels get the "
                                                  "median gain of the other boxes")


class Gain(ReffilePlugin):
    """Declarations of the ``gain`` built-in (``gain.GainPlugin``)."""

    name = "gain"
    reftype = "gain"
    imtypes = "DDFF"
    steps = ("linearity-",)
    needs = Needs(all_of="DDFF", ramps=True)
    description = "Gain from the photon transfer of a flat pair and a dark pair"
    Params = GainParams


# ---------------------------------------------------------------- bad pixel mask


class BadPixelParams(PluginParams):
    """Parameters of :class:`~refsmith.plugins.builtin.badpix.BadPixelMaskPlugin`."""

    hot_sigma: float = Field(10.0, gt=0, description="hot: dark current this many sigma "
                             "above the median (both the map's robust sigma and the pixel's "
                             "own uncertainty); from darks")
    noisy_sigma: float = Field(8.0, gt=0, description="noisy: CDS noise this many robust "
                                                      "sigma above the median; from darks")
    dead_fraction: float = Field(0.1, ge=0, le=1, description="dead: flat response below "
                                 "this fraction of the median; from flats")
    low_qe_fraction: float = Field(0.6, ge=0, le=1, description="low QE: flat response "
                                   "below this fraction of the median (and not dead); from "
                                   "flats")
    noisy_flag: str = Field("UNRELIABLE_SLOPE", description="DQ flag name of noisy pixels")
    do_not_use: list[str] = Field(["DEAD", "HOT", "UNRELIABLE_SLOPE"],
                                  description="flags that also set DO_NOT_USE")

    @field_validator("noisy_flag")
    @classmethod
    def _flag(cls, value: str) -> str:
        flag_value(value)
        return value.upper()

    @field_validator("do_not_use")
    @classmethod
    def _flags(cls, value: list[str]) -> list[str]:
        for name in value:
            flag_value(name)
        return [v.upper() for v in value]


class BadPixelMask(ReffilePlugin):
    """Declarations of the ``bad_pixel_mask`` built-in (``badpix.BadPixelMaskPlugin``)."""

    name = "bad_pixel_mask"
    reftype = "mask"
    imtypes = "DF+"
    steps = ("linearity-",)
    needs = Needs(any_of="DF", ramps=True)
    description = "Bad pixel mask: hot/noisy from darks, dead/low QE from flats"
    Params = BadPixelParams
