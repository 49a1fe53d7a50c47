"""The combination of bad pixel masks that tested different flags (issue 15, item 8): each
flag is voted among the files that tested it (their DQ_DEF), DO_NOT_USE follows the kept
flags. Fast: small mask files written here (the masks themselves: test_plugins_badpix_kinds).
"""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits

from refsmith.jobs.records import CombineJob
from refsmith.plugins import run_combine_job
from refsmith.plugins.builtin._common import dq_def, flag_value
from refsmith.plugins.builtin.badpix import defined_flags, vote_tested
from refsmith.plugins.combine import vote_flags

DARK_FLAGS = ["DO_NOT_USE", "HOT", "UNRELIABLE_SLOPE", "REFERENCE_PIXEL"]
FLAT_FLAGS = ["DO_NOT_USE", "DEAD", "LOW_QE", "REFERENCE_PIXEL"]


def mask_file(path, names, flagged: dict[tuple[int, int], list[str]]) -> str:
    from stdatamodels.jwst import datamodels

    dq = np.zeros((8, 8), np.uint32)
    dq[0] = flag_value("REFERENCE_PIXEL")
    for (y, x), flags in flagged.items():
        for name in flags:
            dq[y, x] |= flag_value(name)
    model = datamodels.MaskModel(dq=dq, dq_def=dq_def(names))
    model.meta.instrument.name, model.meta.instrument.detector = "NIRCAM", "NRCA1"
    model.meta.subarray.name = "SUB64P"
    model.save(str(path))
    return str(path)


@pytest.fixture
def masks(tmp_path):
    hot, dead, lone_hot, low_qe = (1, 1), (2, 2), (3, 3), (4, 4)
    return {
        "a": mask_file(tmp_path / "a.fits", DARK_FLAGS,
                       {hot: ["HOT", "DO_NOT_USE"], lone_hot: ["HOT", "DO_NOT_USE"]}),
        "b": mask_file(tmp_path / "b.fits", DARK_FLAGS, {hot: ["HOT", "DO_NOT_USE"]}),
        "c": mask_file(tmp_path / "c.fits", FLAT_FLAGS,
                       {dead: ["DEAD", "DO_NOT_USE"], low_qe: ["LOW_QE"]}),
    }


def test_each_flag_is_voted_among_the_files_that_tested_it(masks):
    files = [masks["a"], masks["b"], masks["c"]]
    tested = [defined_flags(p) for p in files]
    assert [list(t) for t in tested] == [DARK_FLAGS, DARK_FLAGS, FLAT_FLAGS]
    dq = vote_tested(files, tested, 0.6, ["HOT", "DEAD"])
    value = {name: flag_value(name) for name in ("HOT", "DEAD", "LOW_QE", "DO_NOT_USE")}
    assert dq[1, 1] == value["HOT"] | value["DO_NOT_USE"]     # 2 of the 2 dark masks
    assert dq[2, 2] == value["DEAD"] | value["DO_NOT_USE"]    # 1 of the 1 flat mask
    assert dq[3, 3] == 0                                      # 1 of 2 < 0.6
    assert dq[4, 4] == value["LOW_QE"]                        # not in do_not_use
    assert np.all(dq[0] == flag_value("REFERENCE_PIXEL"))
    # over every file, as before: the dead pixel (1 of 3) was lost
    assert vote_flags(np.stack([fits.getdata(p, "DQ") for p in files]), 0.6)[2, 2] == 0


def test_the_combine_job_of_mixed_masks_records_the_votes(masks, tmp_path):
    job = CombineJob(
        id="combine-bpm-x", recipe="bpm", reftype="mask", plugin="bad_pixel_mask",
        partition=(("DETECTOR", "NRCA1"),), inputs=(masks["a"], masks["b"], masks["c"]),
        output=str(tmp_path / "run" / "final" / "bpm" / "bpm_x.fits"),
        params={"validate": "none", "vote_fraction": 0.6})
    result = run_combine_job(job, str(tmp_path / "combine.log"))
    assert result.ok, result.error
    dq = fits.getdata(job.output, "DQ")
    assert dq[2, 2] & flag_value("DEAD") and dq[1, 1] & flag_value("HOT") and not dq[3, 3]
    names = [n.decode() if isinstance(n, bytes) else n
             for n in fits.getdata(job.output, "DQ_DEF")["NAME"]]
    assert names == ["DO_NOT_USE", "HOT", "UNRELIABLE_SLOPE", "DEAD", "LOW_QE",
                     "REFERENCE_PIXEL"]
    history = "".join(str(c) for c in fits.getheader(job.output, 0)["HISTORY"])
    assert ("refsmith mask tests combined: each flag voted among the files that tested it: "
            "HOT 2 of 3, UNRELIABLE_SLOPE 2 of 3, DEAD 1 of 3, LOW_QE 1 of 3") in history


def test_masks_that_ran_the_same_tests_keep_the_plain_vote(masks, tmp_path):
    job = CombineJob(
        id="combine-bpm-y", recipe="bpm", reftype="mask", plugin="bad_pixel_mask",
        partition=(("DETECTOR", "NRCA1"),), inputs=(masks["a"], masks["b"]),
        output=str(tmp_path / "run" / "final" / "bpm" / "bpm_y.fits"),
        params={"validate": "none", "vote_fraction": 0.6})
    result = run_combine_job(job, str(tmp_path / "combine.log"))
    assert result.ok, result.error
    dq = fits.getdata(job.output, "DQ")
    expected = vote_flags(np.stack([fits.getdata(p, "DQ") for p in job.inputs]), 0.6)
    assert np.array_equal(dq, expected)
    assert "mask tests combined" not in str(fits.getheader(job.output, 0).get("HISTORY", ""))
