"""Built-in plug-ins recover injected detector properties through the real pipeline.

One synthetic NIRCam SUB64P detector (known bias, read noise and gain maps, dark current,
hot/dead/low-QE/noisy pixels): four darks and two flats (4 integrations x 10 groups) are
calibrated once with the real calwebb_detector1 to ``linearity-``, keeping the
``dq_init-`` state too; each built-in then runs as a real ReffileJob on the state its
default ``steps`` name, with pipeline validation.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from refsmith.calibrate.runner import import_pipeline, run_calibration
from refsmith.detector1.steps import expand_steps
from refsmith.jobs.records import CombineJob, ReffileInput, ReffileJob
from refsmith.plugins import load_plugin, run_combine_job, run_reffile_job
from refsmith.synthetic.ramps import frame_time, group_times, inject_defects, write_raw_exposure
from refsmith.synthetic.references import reference_overrides, write_reference_files

SHAPE = (4, 10, 64, 64)
NY, NX = SHAPE[2:]
LEFT = np.arange(NX)[None, :] < 32
READ_NOISE = np.where(LEFT, 2.5, 3.5) * np.ones((NY, NX))
GAIN = np.where(LEFT, 2.0, 2.5) * np.ones((NY, NX))
DARK_RATE = 4.0
FLUX = 5000.0
DETECTOR_SEED = 7
SCIENCE = (slice(4, None), slice(4, None))  # SUB64P at (1, 1): 4 reference rows/columns

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def detector(tmp_path_factory):
    """Raw exposures, truth, and each exposure calibrated to dq_init- and linearity-."""
    root = tmp_path_factory.mktemp("plugins_truth")
    import_pipeline()  # once, with gc.freeze(): each small run is then ~1 s instead of ~5 s
    defects = inject_defects((NY, NX), seed=5)
    common = dict(shape=SHAPE, read_noise=READ_NOISE, gain=GAIN, dark_rate=DARK_RATE,
                  detector_seed=DETECTOR_SEED, defects=defects)
    raws = {f"D{i + 1}": write_raw_exposure(root / f"jw_d{i + 1}_uncal.fits", seed=10 + i,
                                            mjd=60000 + i / 24, **common)
            for i in range(4)}
    raws |= {f"F{i + 1}": write_raw_exposure(root / f"jw_f{i + 1}_uncal.fits", seed=20 + i,
                                             exp_type="NRC_FLAT", flux=FLUX,
                                             mjd=60000.5 + i / 24, **common)
             for i in range(2)}
    refs = write_reference_files(root / "refs", shape=SHAPE, ipc_alpha=0.0,
                                 detector_seed=DETECTOR_SEED, dark_rate=DARK_RATE)
    overrides = reference_overrides(refs)
    linearity = expand_steps("linearity-", "NIRCAM")
    dq_init = expand_steps("dq_init-", "NIRCAM")
    products: dict[str, dict[str, str]] = {"dq_init-": {}, "linearity-": {}}
    for role, raw in raws.items():
        out = root / "calibrated" / role
        result = run_calibration(
            str(raw), linearity,
            [(linearity, str(out / "lin.fits")), (dq_init, str(out / "dqi.fits"))],
            overrides, str(out / "cal.log"))
        assert result.ok, result.error
        products["dq_init-"][role] = str(out / "dqi.fits")
        products["linearity-"][role] = str(out / "lin.fits")
    bias = fits.getdata(refs["superbias"], "SCI").astype(float)
    return {"root": root, "raws": raws, "products": products, "defects": defects,
            "bias": bias, "refs": refs}


def make_job(detector, recipe: str, plugin: str, roles: list[str], *, group: str = "g1",
             params: dict | None = None) -> ReffileJob:
    steps = load_plugin(plugin).steps[0]
    inputs = tuple(ReffileInput(role=r.rstrip("ab"), exposure=str(detector["raws"][r]),
                                path=detector["products"][steps][r]) for r in roles)
    return ReffileJob(
        id=f"reffile-{recipe}-{group}", recipe=recipe, reftype=load_plugin(plugin).reftype,
        group=f"{recipe}-{group}", plugin=plugin, inputs=inputs,
        output=str(detector["root"] / "run" / "reffiles" / recipe / f"{group}.fits"),
        params={"validate": "pipeline", **(params or {})})


def run(detector, *args, **kwargs) -> Path:
    job = make_job(detector, *args, **kwargs)
    result = run_reffile_job(job, str(detector["root"] / "run" / "logs" / f"{job.id}.log"))
    assert result.ok, result.error
    assert result.outputs == (job.output,)
    assert "pipeline validation passed" in Path(result.log_path).read_text()
    return Path(job.output)


def box_means(array: np.ndarray, box: int = 16) -> np.ndarray:
    science = array[SCIENCE]
    ny, nx = science.shape
    return np.array([science[y:y + box, x:x + box].mean()
                     for y in range(0, ny, box) for x in range(0, nx, box)])


def test_readnoise_recovers_the_injected_map(detector):
    path = run(detector, "readnoise", "readnoise", ["D1", "D2"])
    recovered = fits.getdata(path, "SCI").astype(float)
    # the pipeline's convention: the noise of a CDS of two frames, sqrt(2) x one read
    truth = np.sqrt(2) * READ_NOISE
    truth[detector["defects"].noisy] *= detector["defects"].noisy_factor
    ratio = recovered / truth
    print("readnoise: median ratio", np.median(ratio[SCIENCE]),
          "16x16 box ratios", np.round(box_means(ratio), 3))
    assert abs(np.median(ratio[SCIENCE]) - 1) < 0.05
    assert np.all(np.abs(box_means(ratio) - 1) < 0.05)
    # each noisy pixel stands out (36 CDS samples a pixel: ~12 % scatter per pixel)
    noisy = detector["defects"].noisy
    assert np.all(np.abs(ratio[noisy] - 1) < 0.4)


def test_ramp_fit_with_the_readnoise_predicts_the_scatter_of_slopes(detector):
    """What the READNOISE file means to the pipeline: ramp_fit's VAR_RNOISE + VAR_POISSON
    must equal the real scatter of per-integration slopes of a dark it did not see."""
    from jwst.ramp_fitting import RampFitStep

    path = run(detector, "readnoise", "readnoise", ["D1", "D2"])
    _, rateints = RampFitStep.call(
        detector["products"]["linearity-"]["D3"], override_readnoise=str(path),
        override_gain=str(detector["refs"]["gain"]), maximum_cores="1")
    slopes = rateints.data.astype(float)  # (4 integrations, ny, nx)
    predicted = (rateints.var_rnoise + rateints.var_poisson).astype(float)
    defects = detector["defects"]
    normal = ~(defects.any)
    normal[:4] = normal[:, :4] = False
    observed = np.var(slopes, axis=0, ddof=1)[normal]
    ratio = float(np.mean(observed) / np.mean(np.mean(predicted, axis=0)[normal]))
    print(f"ramp_fit: observed / predicted slope variance = {ratio:.3f}")
    assert abs(ratio - 1) < 0.15  # per-read noise in the file (the old convention): ~2


def test_dark_current_with_the_dark_removes_the_injected_dark(detector):
    """What the DARK file means to the pipeline: dark_current with it leaves no slope."""
    from jwst.dark_current import DarkCurrentStep

    path = run(detector, "dark", "dark", ["D1", "D2", "D3"], group="meaning")
    corrected = DarkCurrentStep.call(detector["products"]["linearity-"]["D4"],
                                     override_dark=str(path))
    assert corrected.meta.cal_step.dark_sub == "COMPLETE"
    defects = detector["defects"]
    normal = ~(defects.hot | defects.dead)
    normal[:4] = normal[:, :4] = False
    ramp = corrected.data.astype(float)[..., normal].mean(axis=(0, 2))  # per group
    times = group_times(10, 1, 0, frame_time("NIRCAM", NY, NX))
    residual = np.polyfit(times, ramp, 1)[0]
    print(f"dark_current: residual rate {residual:.3f} DN/s (injected {DARK_RATE})")
    assert abs(residual) < 0.05 * DARK_RATE


def test_superbias_recovers_the_bias_within_1_dn_rms(detector):
    path = run(detector, "superbias", "superbias", ["D1", "D2", "D3", "D4"])
    with fits.open(path) as hdus:
        recovered = hdus["SCI"].data.astype(float)
        err = hdus["ERR"].data
        dq = hdus["DQ"].data
        assert hdus[0].header["REFTYPE"] == "SUPERBIAS"
    # the first group holds the bias plus the dark charge of its first frame
    defects = detector["defects"]
    dark = np.full((NY, NX), DARK_RATE)
    dark[defects.hot] += defects.hot_rate
    dark[defects.dead] = 0.0
    dark[:4] = dark[:, :4] = 0.0
    first_group_time = group_times(10, 1, 0, frame_time("NIRCAM", NY, NX))[0]
    truth = detector["bias"] + dark * first_group_time
    good = ~defects.noisy
    residual = (recovered - truth)[good]
    rms = float(np.sqrt(np.mean(residual ** 2)))
    print(f"superbias: rms residual {rms:.3f} DN, median ERR {np.median(err):.3f}")
    assert rms < 1.0
    # the ERR array describes the residuals
    assert 0.7 < rms / float(np.sqrt(np.mean(err[good] ** 2))) < 1.3
    assert (dq[good] == 0).mean() > 0.99


def test_dark_recovers_the_injected_dark_rate(detector):
    path = run(detector, "dark", "dark", ["D1", "D2", "D3", "D4"])
    with fits.open(path) as hdus:
        ramp = hdus["SCI"].data.astype(float)
        header = hdus[0].header
    assert ramp.shape == SHAPE[1:]
    assert (header["NGROUPS"], header["READPATT"], header["NFRAMES"]) == (10, "RAPID", 1)
    times = group_times(10, 1, 0, frame_time("NIRCAM", NY, NX))
    t = times - times.mean()
    slope = np.tensordot(t, ramp - ramp.mean(axis=0), axes=(0, 0)) / np.sum(t * t)
    defects = detector["defects"]
    normal = ~(defects.hot | defects.dead)
    normal[:4] = normal[:, :4] = False
    median = float(np.median(slope[normal]))
    hot = slope[defects.hot] / (DARK_RATE + defects.hot_rate)
    print(f"dark: median rate {median:.3f} DN/s (injected {DARK_RATE}); hot ratios "
          f"{np.round(hot, 3)}")
    assert abs(median / DARK_RATE - 1) < 0.05
    assert abs(np.mean(hot) - 1) < 0.05 and np.all(np.abs(hot - 1) < 0.1)


def test_gain_recovers_the_injected_gain_in_boxes(detector):
    path = run(detector, "gain", "gain", ["D1", "D2", "F1", "F2"])
    recovered = fits.getdata(path, "SCI").astype(float)
    boxes = {(y, x): recovered[y + 8, x + 8] for y in (0, 32) for x in (0, 32)}
    print("gain per 32x32 box:", {k: round(v, 3) for k, v in boxes.items()})
    for (_, x), value in boxes.items():
        truth = 2.0 if x < 32 else 2.5
        assert abs(value / truth - 1) < 0.05


def test_bad_pixel_mask_precision_and_recall(detector):
    from stdatamodels.jwst.datamodels import dqflags

    path = run(detector, "bad_pixel_mask", "bad_pixel_mask",
               ["D1", "D2", "D3", "D4", "F1", "F2"])
    dq = fits.getdata(path, "DQ")
    defects = detector["defects"]
    flags = dqflags.pixel
    found = {
        "hot": (dq & flags["HOT"]) != 0, "dead": (dq & flags["DEAD"]) != 0,
        "low_qe": (dq & flags["LOW_QE"]) != 0,
        "noisy": (dq & flags["UNRELIABLE_SLOPE"]) != 0,
    }
    scores = {}
    for kind, flagged in found.items():
        truth = getattr(defects, kind)
        true_positive = np.sum(flagged & truth)
        scores[kind] = (true_positive / max(flagged.sum(), 1), true_positive / truth.sum())
    any_flag = np.any(list(found.values()), axis=0)
    true_positive = np.sum(any_flag & defects.any)
    scores["all"] = (true_positive / any_flag.sum(), true_positive / defects.any.sum())
    print("bad pixels (precision, recall):", scores)
    for precision, recall in scores.values():
        assert precision >= 0.95 and recall >= 0.95
    reference = np.zeros((NY, NX), bool)
    reference[:4] = reference[:, :4] = True
    assert np.all(dq[reference] == flags["REFERENCE_PIXEL"])
    assert np.all(dq[found["dead"] | found["hot"]] & flags["DO_NOT_USE"])


def test_readnoise_files_combine_into_a_final_file(detector):
    first = run(detector, "readnoise", "readnoise", ["D1", "D2"], group="a")
    second = run(detector, "readnoise", "readnoise", ["D3", "D4"], group="b")
    job = CombineJob(
        id="combine-readnoise-x", recipe="readnoise", reftype="readnoise",
        plugin="readnoise", partition=(("DETECTOR", "NRCA1"),),
        inputs=(str(first), str(second)),
        output=str(detector["root"] / "run" / "final" / "readnoise" / "readnoise_x.fits"),
        params={"validate": "pipeline", "combine": "mean"})
    result = run_combine_job(job, str(detector["root"] / "run" / "logs" / "combine.log"))
    assert result.ok, result.error
    combined = fits.getdata(job.output, "SCI")
    # read noise combines as variances: the root of the mean square
    squares = [fits.getdata(p, "SCI").astype(float) ** 2 for p in (first, second)]
    np.testing.assert_allclose(combined, np.sqrt(np.mean(squares, axis=0)), rtol=1e-6)
    history = str(fits.getheader(job.output, 0)["HISTORY"])
    assert str(first) in history.replace("\n", "") or first.name in history
