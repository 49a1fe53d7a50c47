"""What a plug-in receives: a group's calibrated inputs with their roles and metadata."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from refsmith.detector1.keywords import STEP_KEYWORDS
from refsmith.plugins import blocks as _blocks
from refsmith.plugins.blocks import DO_NOT_USE, Block, RampBlock

__all__ = ["GroupInputs", "InputFile", "Ramp", "read_input"]

@dataclass(frozen=True)
class Ramp(RampBlock):
    """The arrays of one calibrated ramp (or rate image) file, read whole.

    ``data`` is float64, ``(nints, ngroups, ny, nx)`` for ramps and ``(ny, nx)`` for rate
    images, *not* masked (see :meth:`masked`); ``pixeldq`` ``(ny, nx)``; ``groupdq`` like
    ``data`` (zeros when absent); ``times`` the mean time (s) of each group since the reset
    (ramps only).
    """

    times: np.ndarray

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

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of the SCI array (numpy order), read from its header."""
        return _blocks.science(self.path).shape

    def read(self) -> Ramp:
        """Read the whole file (see :class:`Ramp`): for small data only.

        A full-frame ramp read this way costs ~10x its size on disk in memory; plug-ins
        that may see real data use :meth:`GroupInputs.blocks` instead.
        """
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
    memory: int = 0

    @property
    def budget(self) -> int:
        """The job's memory budget in bytes (``memory``, else the running job's)."""
        return self.memory or _blocks.job_memory()

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

    def frame(self, inputs: Sequence[InputFile] | None = None) -> tuple[int, int]:
        """``(ny, nx)`` shared by ``inputs`` (default all); ValueError naming the odd one."""
        chosen = list(inputs if inputs is not None else self.inputs)
        sizes = {item.role: item.shape[-2:] for item in chosen}
        first = chosen[0]
        for role, size in sizes.items():
            if size != sizes[first.role]:
                raise ValueError(f"group {self.group}: {role} has {size[0]} x {size[1]} "
                                 f"pixels, {first.role} {sizes[first.role][0]} x "
                                 f"{sizes[first.role][1]}")
        ny, nx = sizes[first.role]
        return int(ny), int(nx)

    def amplifiers(self) -> np.ndarray:
        """Amplifier index of every column (from the first input's NOUTPUTS, SUBSTRT1)."""
        return _blocks.amplifier_map(self.first.header, self.frame()[1])

    def blocks(self, inputs: Sequence[InputFile] | None = None, *, groups: Any = None,
               copies: float = 4.0, reserve: int = 0,
               rows: np.ndarray | None = None) -> Iterator[Block]:
        """The same rows of every input, block after block, in the job's memory budget.

        Parameters
        ----------
        inputs : sequence of InputFile, optional
            Which inputs (default all), in the order of ``Block.ramps``.
        groups : int, slice or index list, optional
            The groups of each integration to read (default all), e.g. ``slice(0, 1)``.
        copies : float
            How many times its blocks' size the plug-in holds while working on a block
            (the blocks included): with the budget, this sets the rows per block.
        reserve : int
            Bytes the plug-in keeps besides the blocks (e.g. its frame-sized results).
        rows : ndarray, optional
            Frame rows to read (default all; :meth:`sample` reads a fixed subset).

        Yields
        ------
        Block
            ``rows`` and one :class:`~refsmith.plugins.blocks.RampBlock` per input.

        Raises
        ------
        MemoryBudgetError
            When the budget cannot hold the smallest block (the message says how much).
        """
        chosen = list(inputs if inputs is not None else self.inputs)
        ny, _ = self.frame(chosen)
        wanted = np.arange(ny) if rows is None else np.asarray(rows)
        row_bytes = _blocks.ramp_row_bytes([i.path for i in chosen], groups) * copies
        size = _blocks.block_rows(row_bytes, ny, reserve=reserve, budget=self.budget,
                                  what=f"recipe '{self.recipe}' (group {self.group})")
        for part in _blocks.row_chunks(wanted, size):
            yield Block(rows=part, ramps=tuple(_blocks.read_block(i.path, part, groups)
                                               for i in chosen))

    def sample(self, inputs: Sequence[InputFile] | None = None, **options: Any
               ) -> Iterator[Block]:
        """:meth:`blocks` of the fixed rows that frame-wide statistics are taken from.

        256 rows in runs of 8 (:func:`~refsmith.plugins.blocks.sample_rows`): pooled
        thresholds computed from them are the same whatever the block size.
        """
        chosen = list(inputs if inputs is not None else self.inputs)
        rows = _blocks.sample_rows(self.frame(chosen)[0])
        return self.blocks(chosen, rows=rows, **options)

    def require(self, letter: str, at_least: int) -> list[InputFile]:
        """The inputs of a kind, or ValueError when there are fewer than ``at_least``."""
        found = self.of_kind(letter)
        if len(found) < at_least:
            raise ValueError(f"group {self.group} has {len(found)} input(s) of type "
                             f"{letter}; this plug-in needs at least {at_least}")
        return found


def load_group(recipe: str, group: str, members: Sequence[tuple[str, str, str]],
               memory: int = 0) -> GroupInputs:
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
    return GroupInputs(recipe=recipe, group=group, inputs=tuple(inputs), memory=memory)
