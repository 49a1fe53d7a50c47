"""``bad_pixel_mask`` from darks alone, flats alone, and the vote of masks of both kinds
(issue 15, item 8): legacy masks are made from one kind of input (``bpm`` with ``imtypes:
D``, ``F+``). Each mask flags what its inputs allow, says in DQ_DEF and HISTORY which
tests ran, and the combination votes each flag among the files that tested it.

Slow: the same synthetic detector as tests/plugins/test_plugins_builtin.py, calibrated with
the real pipeline, each mask validated by it (dq_init with the file).
"""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits
from test_plugins_builtin import detector, run  # noqa: F401 (detector: the fixture)

from refsmith.jobs.records import CombineJob
from refsmith.plugins import run_combine_job

pytestmark = pytest.mark.slow

FROM_DARKS, FROM_FLATS = ("hot", "noisy"), ("dead", "low_qe")


def flags_of(path) -> dict[str, np.ndarray]:
    from stdatamodels.jwst.datamodels import dqflags

    dq = fits.getdata(path, "DQ")
    flags = dqflags.pixel
    return {"hot": (dq & flags["HOT"]) != 0, "dead": (dq & flags["DEAD"]) != 0,
            "low_qe": (dq & flags["LOW_QE"]) != 0,
            "noisy": (dq & flags["UNRELIABLE_SLOPE"]) != 0,
            "do_not_use": (dq & flags["DO_NOT_USE"]) != 0}


def scores(found: dict[str, np.ndarray], defects, kinds) -> dict[str, tuple[float, float]]:
    """(precision, recall) of each kind."""
    result = {}
    for kind in kinds:
        truth = getattr(defects, kind)
        hits = np.sum(found[kind] & truth)
        result[kind] = (hits / max(found[kind].sum(), 1), hits / truth.sum())
    return result


def history(path) -> str:
    return "".join(str(card) for card in fits.getheader(path, 0).get("HISTORY", []))


def dq_def_names(path) -> list[str]:
    return [n.decode() if isinstance(n, bytes) else str(n)
            for n in fits.getdata(path, "DQ_DEF")["NAME"]]


def check_one_kind(path, defects, ran, other) -> None:
    found = flags_of(path)
    print(f"{ran} (precision, recall):", scores(found, defects, ran))
    for precision, recall in scores(found, defects, ran).values():
        assert precision >= 0.95 and recall >= 0.95
    for kind in other:  # not tested: never flagged
        assert not found[kind].any(), kind
    # the defects of the other kind are not flagged as this kind either
    other_pixels = np.any([getattr(defects, kind) for kind in other], axis=0)
    assert not np.any(np.any([found[kind] for kind in ran], axis=0) & other_pixels)


def test_mask_from_darks_only_flags_hot_and_noisy_pixels(detector):  # noqa: F811
    path = run(detector, "bpm_darks", "bad_pixel_mask", ["D1", "D2", "D3", "D4"])
    check_one_kind(path, detector["defects"], FROM_DARKS, FROM_FLATS)
    found = flags_of(path)
    assert np.all(found["do_not_use"][found["hot"] | found["noisy"]])
    assert dq_def_names(path) == ["DO_NOT_USE", "HOT", "UNRELIABLE_SLOPE", "REFERENCE_PIXEL"]
    assert ("refsmith mask tests: ran HOT,UNRELIABLE_SLOPE from 4 darks; not run: "
            "DEAD,LOW_QE (no flats)") in history(path)


def test_mask_from_flats_only_flags_dead_and_low_qe_pixels(detector):  # noqa: F811
    path = run(detector, "bpm_flats", "bad_pixel_mask", ["F1", "F2"])
    check_one_kind(path, detector["defects"], FROM_FLATS, FROM_DARKS)
    found = flags_of(path)
    assert np.all(found["do_not_use"][found["dead"]])
    assert not np.any(found["do_not_use"][found["low_qe"] & ~found["dead"]])
    assert dq_def_names(path) == ["DO_NOT_USE", "DEAD", "LOW_QE", "REFERENCE_PIXEL"]
    assert ("refsmith mask tests: ran DEAD,LOW_QE from 2 flats; not run: "
            "HOT,UNRELIABLE_SLOPE (no darks)") in history(path)


def test_masks_of_darks_and_of_flats_combine_flag_by_flag(detector):  # noqa: F811
    """Two masks of darks and one of flats: HOT is voted among the two that looked for hot
    pixels, DEAD by the one that looked for dead ones (over all three, 1 of 3 < 0.5 would
    drop every dead pixel)."""
    files = [run(detector, "bpm_mixed", "bad_pixel_mask", roles, group=group)
             for roles, group in ((["D1", "D2"], "a"), (["D3", "D4"], "b"), (["F1", "F2"], "c"))]
    job = CombineJob(
        id="combine-bpm_mixed-x", recipe="bpm_mixed", reftype="mask",
        plugin="bad_pixel_mask", partition=(("DETECTOR", "NRCA1"),),
        inputs=tuple(map(str, files)),
        output=str(detector["root"] / "run" / "final" / "bpm_mixed" / "bpm_mixed_x.fits"),
        params={"validate": "pipeline"})
    result = run_combine_job(job, str(detector["root"] / "run" / "logs" / "combine-bpm.log"))
    assert result.ok, result.error
    found = flags_of(job.output)
    all_kinds = (*FROM_DARKS, *FROM_FLATS)
    print("combined (precision, recall):", scores(found, detector["defects"], all_kinds))
    for precision, recall in scores(found, detector["defects"], all_kinds).values():
        assert precision >= 0.95 and recall >= 0.95
    assert np.all(found["do_not_use"][found["dead"] | found["hot"] | found["noisy"]])
    assert dq_def_names(job.output) == ["DO_NOT_USE", "HOT", "UNRELIABLE_SLOPE", "DEAD",
                                        "LOW_QE", "REFERENCE_PIXEL"]
    text = history(job.output)
    assert ("refsmith mask tests combined: each flag voted among the files that tested it: "
            "HOT 2 of 3, UNRELIABLE_SLOPE 2 of 3, DEAD 1 of 3, LOW_QE 1 of 3") in text
    reference = np.zeros(found["hot"].shape, bool)
    reference[:4] = reference[:, :4] = True
    assert np.all(fits.getdata(job.output, "DQ")[reference] == 2 ** 31)  # REFERENCE_PIXEL
