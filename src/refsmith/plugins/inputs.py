"""What a plug-in receives: a group's calibrated inputs with their roles and metadata."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from refsmith.steps import STEP_KEYWORDS

__all__ = ["GroupInputs", "InputFile", "Ramp", "read_input"]

REFERENCE_PIXEL = 2**31
DO_NOT_USE = 1


@dataclass(frozen=True)
class Ramp:
    """The arrays of one calibrated ramp (or rate image) file.

    ``data`` is float64, ``(nints, ngroups, ny, nx)`` for ramps and ``(ny, nx)`` for rate
    images; ``pixeldq`` ``(ny, nx)``; ``groupdq`` like ``data`` (zeros when absent);
    ``times`` the mean time (s) of each group since the reset (ramps only).
    """

    data: np.ndarray
    pixeldq: np.ndarray
    groupdq: np.ndarray
    times: np.ndarray

    @property
    def reference_pixels(self) -> np.ndarray:
        """Pixels flagged REFERENCE_PIXEL (by dq_init)."""
        return (self.pixeldq & REFERENCE_PIXEL) != 0

    def masked(self) -> np.ndarray:
        """``data`` with DO_NOT_USE pixels and groups set to NaN (reference pixels kept)."""
        bad = (self.groupdq & DO_NOT_USE) != 0
        bad |= np.broadcast_to((self.pixeldq & DO_NOT_USE) != 0, self.data.shape)
        return np.where(bad, np.nan, self.data)


@dataclass(frozen=True)
class InputFile:
    """One member of the group, as a plug-in sees it.

    Attributes
    ----------
    role : str
        ``D1``, ``D2``, ``F1`` ... (letter = image type of the recipe's imtypes).
    path : str
        The calibrated file to read (at the recipe's required state).
    exposure : str
        The raw exposure it was made from.
    header : mapping
        The calibrated file's primary header (keyword -> value).
    """

    role: str
    path: str
    exposure: str
    header: Mapping[str, Any] = field(default_factory=dict, hash=False)

    @property
    def kind(self) -> str:
        """The image-type letter of the role (``D`` for ``D2``)."""
        return self.role.rstrip("0123456789")

    def _get(self, keyword: str, default: Any = None) -> Any:
        value = self.header.get(keyword, default)
        return value.strip() if isinstance(value, str) else value

    instrument = property(lambda self: str(self._get("INSTRUME", "")))
    detector = property(lambda self: str(self._get("DETECTOR", "")))
    subarray = property(lambda self: str(self._get("SUBARRAY", "")))
    readpatt = property(lambda self: str(self._get("READPATT", "")))
    exp_type = property(lambda self: str(self._get("EXP_TYPE", "")))
    nints = property(lambda self: int(self._get("NINTS", 1)))
    ngroups = property(lambda self: int(self._get("NGROUPS", 1)))
    nframes = property(lambda self: int(self._get("NFRAMES", 1)))
    groupgap = property(lambda self: int(self._get("GROUPGAP", 0)))
    frame_time = property(lambda self: float(self._get("TFRAME", 0.0)))
    group_time = property(lambda self: float(self._get("TGROUP", 0.0)))
    mjd = property(lambda self: float(self._get("EXPSTART", 0.0)))

    @property
    def steps(self) -> dict[str, str]:
        """The file's pipeline state: step -> S_* value (only steps that have one)."""
        return {step: str(self.header[kw]).strip() for step, kw in STEP_KEYWORDS.items()
                if kw in self.header}

    def group_times(self) -> np.ndarray:
        """Mean time (s) since the reset of the frames averaged in each group."""
        g = np.arange(self.ngroups)
        nframes, tframe = self.nframes, self.frame_time
        return tframe * (g * (nframes + self.groupgap) + (nframes + 1) / 2.0)

    def read(self) -> Ramp:
        """Read the file's arrays (see :class:`Ramp`)."""
        return read_input(self)


def read_input(item: InputFile) -> Ramp:
    """Read SCI, PIXELDQ (or DQ) and GROUPDQ of a calibrated file with astropy."""
    from astropy.io import fits

    with fits.open(item.path, memmap=False) as hdus:
        data = np.asarray(hdus["SCI"].data, dtype=np.float64)
        names = {h.name for h in hdus}
        shape2d = data.shape[-2:]
        if "PIXELDQ" in names:
            pixeldq = np.asarray(hdus["PIXELDQ"].data, dtype=np.uint32)
        elif "DQ" in names and hdus["DQ"].data.shape == shape2d:
            pixeldq = np.asarray(hdus["DQ"].data, dtype=np.uint32)
        else:
            pixeldq = np.zeros(shape2d, np.uint32)
        if "GROUPDQ" in names:
            groupdq = np.asarray(hdus["GROUPDQ"].data, dtype=np.uint32)
        else:
            groupdq = np.zeros(data.shape, np.uint32)
    times = item.group_times() if data.ndim == 4 else np.zeros(0)
    return Ramp(data=data, pixeldq=pixeldq, groupdq=groupdq, times=times)


@dataclass(frozen=True)
class GroupInputs:
    """The calibrated inputs of one group, handed to :meth:`ReffilePlugin.make`.

    Attributes
    ----------
    recipe, group : str
        The recipe and the group id.
    inputs : tuple of InputFile
        In the group's role order.
    """

    recipe: str
    group: str
    inputs: tuple[InputFile, ...]

    def __iter__(self) -> Iterator[InputFile]:
        return iter(self.inputs)

    def __len__(self) -> int:
        return len(self.inputs)

    def of_kind(self, letter: str) -> list[InputFile]:
        """Inputs whose role has this image-type letter (``D``, ``F`` ...), in role order."""
        return [i for i in self.inputs if i.kind == letter]

    @property
    def darks(self) -> list[InputFile]:
        return self.of_kind("D")

    @property
    def flats(self) -> list[InputFile]:
        return self.of_kind("F")

    @property
    def first(self) -> InputFile:
        """The first input (its metadata describe the group's setup)."""
        return self.inputs[0]

    def paths(self) -> list[str]:
        return [i.path for i in self.inputs]

    def common(self, keyword: str) -> Any:
        """The value of a header keyword shared by every input (ValueError otherwise)."""
        values = {str(i.header.get(keyword, "")).strip() for i in self.inputs}
        if len(values) != 1:
            raise ValueError(f"the inputs of group {self.group} disagree on {keyword}: "
                             f"{sorted(values)}")
        return self.inputs[0].header.get(keyword)

    def require(self, letter: str, at_least: int) -> list[InputFile]:
        """The inputs of a kind, or ValueError when there are fewer than ``at_least``."""
        found = self.of_kind(letter)
        if len(found) < at_least:
            raise ValueError(f"group {self.group} has {len(found)} input(s) of type "
                             f"{letter}; this plug-in needs at least {at_least}")
        return found


def load_group(recipe: str, group: str, members: Sequence[tuple[str, str, str]]) -> GroupInputs:
    """Build :class:`GroupInputs` from ``(role, exposure, path)`` triples (reads headers)."""
    from astropy.io import fits

    inputs = []
    for role, exposure, path in members:
        if not Path(path).is_file():
            raise FileNotFoundError(f"input {role} of group {group} does not exist: {path}")
        header = fits.getheader(path, 0)
        inputs.append(InputFile(role=role, path=str(path), exposure=str(exposure),
                                header={k: header[k] for k in header if k not in
                                        ("COMMENT", "HISTORY", "")}))
    return GroupInputs(recipe=recipe, group=group, inputs=tuple(inputs))
