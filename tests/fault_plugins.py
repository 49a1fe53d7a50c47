"""A plug-in for the fault tests (given as ``fault_plugins:Holds`` in their configs).

``Holds`` makes a superbias of zeros, but first holds, in ``make`` or in ``combine`` (its
``hold_in`` parameter), until the file ``release`` exists or ``seconds`` have passed; it
writes ``started`` (with its pid) when it starts holding. Used for: a job that never
returns (timeouts), a run stopped while a job certainly runs (Ctrl-C), kill -9 during a
combine (whose plug-in has begun writing its output).
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field

from refsmith.plugins import GroupInputs, PluginParams, ReffilePlugin


class HoldsParams(PluginParams):
    hold_in: Literal["make", "combine"] = Field("make", description="where to hold")
    started: str = Field("", description="file written (with the pid) when holding starts")
    release: str = Field("", description="hold until this file exists ('' = never)")
    seconds: float = Field(3600.0, description="hold at most this long")


class Holds(ReffilePlugin):
    name = "holds"
    reftype = "superbias"
    imtypes = "D+"
    steps = ()
    description = "A superbias of zeros, after a hold (fault tests)"
    Params = HoldsParams

    def make(self, group: GroupInputs, params: HoldsParams, output_path: str):
        if params.hold_in == "make":
            _hold(params, "make")
        return _zeros(group.frame())

    def combine(self, individual_files: Sequence[str], params: HoldsParams,
                output_path: str):
        if params.hold_in == "combine":
            # begun writing its output, as a plug-in that writes output_path would be
            Path(output_path).write_bytes(b"SIMPLE  =                    T" + b" " * 2850)
            _hold(params, "combine")
        return super().combine(individual_files, params, output_path)


def _hold(params: HoldsParams, where: str) -> None:
    if params.started:
        Path(params.started).write_text(f"{where} {os.getpid()}\n")
    deadline = time.monotonic() + params.seconds
    while time.monotonic() < deadline:
        if params.release and Path(params.release).exists():
            return
        time.sleep(0.05)


def _zeros(frame: tuple[int, int]):
    from stdatamodels.jwst import datamodels

    return datamodels.SuperBiasModel(data=np.zeros(frame, np.float32),
                                     err=np.zeros(frame, np.float32),
                                     dq=np.zeros(frame, np.uint32))
