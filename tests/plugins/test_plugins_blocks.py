"""Block-wise input of the plug-ins: reading rows, memory budgets, block-size independence,
and the built-ins' recovery of injected truth at realistic sample counts (no pipeline:
calibrated-looking ramps of known noise, dark current and gain from ``tests/ramps.py``).
"""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from ramps import write_ramp
from refsmith.jobs.records import CombineJob, ReffileInput, ReffileJob
from refsmith.plugins import blocks, combine, load_plugin, run_combine_job, run_reffile_job
from refsmith.plugins.blocks import MemoryBudgetError, amplifier_map, memory_budget, sample_rows
from refsmith.plugins.combine import combine_files
from refsmith.plugins.fitsrows import ImageRows
from refsmith.plugins.inputs import load_group
from refsmith.util.memory import resident_memory

REFTYPES = {"readnoise": "readnoise", "superbias": "superbias", "dark": "dark",
            "gain": "gain", "bad_pixel_mask": "mask"}


# ------------------------------------------------------------------ reading rows


@pytest.fixture(scope="module")
def fits_file(tmp_path_factory):
    rng = np.random.default_rng(0)
    arrays = {
        "SCI": rng.standard_normal((2, 3, 50, 40)).astype(np.float32),
        "GROUPDQ": rng.integers(0, 255, (2, 3, 50, 40)).astype(np.uint8),
        "PIXELDQ": rng.integers(0, 2**32 - 1, (50, 40), dtype=np.uint64).astype(np.uint32),
        "RAW": rng.integers(0, 65535, (2, 3, 50, 40)).astype(np.uint16),
        "F64": rng.standard_normal((50, 40)),
    }
    path = tmp_path_factory.mktemp("rows") / "f.fits"
    fits.HDUList([fits.PrimaryHDU(), *(fits.ImageHDU(a, name=n) for n, a in arrays.items())]
                 ).writeto(path)
    zipped = path.with_suffix(".fits.gz")
    with open(path, "rb") as source, gzip.open(zipped, "wb") as target:
        shutil.copyfileobj(source, target)
    return {"plain": path, "gzip": zipped}, arrays


@pytest.mark.parametrize("kind", ["plain", "gzip"])
def test_rows_read_equal_astropy_for_every_type(fits_file, kind):
    paths, arrays = fits_file
    for name, truth in arrays.items():
        rows = ImageRows(str(paths[kind]), name)
        assert rows.shape == truth.shape and rows.dtype == truth.dtype, name
        np.testing.assert_array_equal(rows.read(slice(10, 27)), truth[..., 10:27, :])
        picked = [0, 8, 9, 10, 49]  # runs and single rows
        np.testing.assert_array_equal(rows.read(picked), truth[..., picked, :])
        if truth.ndim == 4:
            np.testing.assert_array_equal(rows.read(picked, (1, slice(0, 2))),
                                          truth[1:2, 0:2][..., picked, :])


def test_a_truncated_file_is_a_clear_error(fits_file, tmp_path):
    paths, _ = fits_file
    cut = tmp_path / "cut.fits"
    cut.write_bytes(paths["plain"].read_bytes()[:9000])
    rows = ImageRows(str(cut), "SCI")
    with pytest.raises(OSError, match="ends before its data"):
        rows.read(slice(0, 50))


def test_amplifiers_follow_noutputs_subarray_and_miri():
    full = amplifier_map({"NOUTPUTS": 4, "SUBSTRT1": 1}, 2048)
    assert [int(full[c]) for c in (0, 511, 512, 1535, 2047)] == [0, 0, 1, 2, 3]
    sub = amplifier_map({"NOUTPUTS": 4, "SUBSTRT1": 1000}, 100)  # columns 999..1098
    assert set(sub.tolist()) == {0, 1} and sub[0] == 0 and sub[-1] == 1
    assert set(amplifier_map({"NOUTPUTS": 1}, 64).tolist()) == {0}
    miri = amplifier_map({"INSTRUME": "MIRI", "NOUTPUTS": 4, "SUBSTRT1": 1}, 8)
    assert miri.tolist() == [0, 1, 2, 3, 0, 1, 2, 3]
    rows = sample_rows(2048)
    assert rows.size == 256 and len(np.unique(rows)) == 256 and rows[-1] == 2047
    assert np.count_nonzero(np.diff(rows) != 1) == 31  # 32 runs of 8 rows
    assert sample_rows(64).tolist() == list(range(64))


# ------------------------------------------------------------ the built-ins by blocks


SHAPE = (1, 6, 96, 64)


@pytest.fixture(scope="module")
def ramps(tmp_path_factory):
    root = tmp_path_factory.mktemp("blocks")
    hot = np.zeros(SHAPE[2:], bool)
    hot[40, 30] = True
    dead = np.zeros(SHAPE[2:], np.uint32)
    dead[50, 20] = 1  # DO_NOT_USE in PIXELDQ
    common = dict(shape=SHAPE, read_noise=np.where(np.arange(64) < 32, 4.0, 6.0) *
                  np.ones(SHAPE[2:]), bias=1000.0, pixeldq=dead)
    darks = [write_ramp(root / f"d{i}.fits", dark_rate=np.where(hot, 50.0, 0.1), seed=i,
                        **common) for i in range(4)]
    flats = [write_ramp(root / f"f{i}.fits", flux=40.0, seed=10 + i, exp_type="NRC_FLAT",
                        **common) for i in range(2)]
    return root, darks, flats


def members(plugin: str, darks: list[Path], flats: list[Path]) -> list[tuple[str, str, str]]:
    chosen = {"readnoise": darks[:2], "superbias": darks, "dark": darks,
              "gain": darks[:2] + flats, "bad_pixel_mask": darks + flats}[plugin]
    roles = [f"{'F' if p in flats else 'D'}{i + 1}" for i, p in enumerate(chosen)]
    return [(r, str(p), str(p)) for r, p in zip(roles, chosen, strict=True)]


def save(model, output: Path) -> None:
    """What the framework does with the model a built-in returns."""
    model.save(str(output))
    model.close()


def make(plugin: str, ramps, output: Path, memory: int = 0) -> dict[str, np.ndarray]:
    _, darks, flats = ramps
    cls = load_plugin(plugin)
    group = load_group(plugin, "g1", members(plugin, darks, flats), memory=memory)
    params = cls.Params(**({"box": 16} if plugin == "gain" else {}))
    save(cls().make(group, params, str(output)), output)
    with fits.open(output) as hdus:
        return {h.name: h.data.copy() for h in hdus[1:] if h.is_image and h.data is not None}


@pytest.mark.parametrize("plugin", sorted(REFTYPES))
def test_results_do_not_depend_on_the_block_size(ramps, tmp_path, plugin, monkeypatch):
    _, darks, flats = ramps
    whole = make(plugin, ramps, tmp_path / "whole.fits")  # one block: the default budget
    monkeypatch.setattr(blocks, "block_rows", lambda *args, **kwargs: 8)
    group = load_group(plugin, "g1", members(plugin, darks, flats))
    assert len(list(group.blocks())) == SHAPE[2] // 8
    small = make(plugin, ramps, tmp_path / "small.fits")
    assert whole.keys() == small.keys() and whole
    for name, array in whole.items():
        np.testing.assert_array_equal(small[name], array, err_msg=f"{plugin} {name}")


def test_block_rows_follow_the_budget():
    held = resident_memory()
    assert blocks.block_rows(1000, 2048, budget=held + 100 * 1000 + 500) == 100
    assert blocks.block_rows(1000, 2048, budget=held + 10**9) == 2048  # all rows
    assert blocks.block_rows(1000, 2048, reserve=50_000,
                             budget=held + 100 * 1000 + 500) == 50
    with memory_budget(held + 20_000):
        assert blocks.block_rows(1000, 2048) == 20


def test_the_dark_fills_a_dead_pixel_and_flags_it(ramps, tmp_path):
    found = make("dark", ramps, tmp_path / "dark.fits")
    sci, err, dq = found["SCI"], found["ERR"], found["DQ"]
    assert np.isfinite(sci).all() and np.isfinite(err).all()
    # the dead pixel (DO_NOT_USE in every dark) takes the median of the cube, ERR 0
    others = np.delete(sci.reshape(len(sci), -1), 50 * 64 + 20, axis=1)
    assert sci[:, 50, 20] == pytest.approx(np.median(others), abs=0.5)
    assert (err[:, 50, 20] == 0).all() and (err[:, 40, 30] > 0).all()
    assert dq[50, 20] & 1 and np.count_nonzero(dq) == 1


def test_blocks_stop_at_the_block_size_however_big_the_budget():
    held = resident_memory()
    mib = 2**20
    assert blocks.block_rows(mib, 2048, budget=held + 2**33) == blocks.BLOCK_BYTES // mib < 2048
    assert blocks.block_rows(mib, 2048, budget=held + 10 * mib + 1) == 10  # the budget first
    assert blocks.block_rows(20 * mib, 2048, budget=held + 2**33) == blocks.MIN_ROWS
    assert blocks.block_rows(mib, 40, budget=held + 2**33) == 40


def test_a_budget_too_small_names_what_to_raise(ramps, tmp_path):
    with pytest.raises(MemoryBudgetError, match=r"recipes.<name>.memory or "
                       r"execution.reffile_memory"):
        make("dark", ramps, tmp_path / "x.fits", memory=2**20)


def test_a_builtin_given_rate_images_says_which_steps_to_use(tmp_path):
    """plan refuses slopes for a plug-in that reads ramps (test_plugin_checks); a caller
    that gets past it (the API, a hand-written plan) still gets the reason, not a crash."""
    rates = []
    for i in range(2):
        path = tmp_path / f"rate{i}.fits"
        fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(np.ones((16, 16), np.float32),
                                                       name="SCI")]).writeto(path)
        rates.append(("D" + str(i + 1), f"raw{i}", str(path)))
    group = load_group("readnoise", "g1", rates)
    cls = load_plugin("readnoise")
    with pytest.raises(ValueError, match=r"D1 is not a ramp .* 2-D \(16, 16\) .*"
                       r"calibrated before ramp_fit \(steps: dq_init-\)"):
        cls().make(group, cls.Params(), str(tmp_path / "out.fits"))


@pytest.mark.parametrize("method", ["clipped_mean", "mean", "median"])
def test_combining_does_not_depend_on_the_block_size(ramps, tmp_path, method, monkeypatch):
    _, darks, _ = ramps
    cls = load_plugin("readnoise")
    files = []
    for index in range(3):
        group = load_group("rn", f"g{index}", [("D1", str(darks[index]), str(darks[index])),
                                               ("D2", str(darks[3]), str(darks[3]))])
        path = tmp_path / f"rn{index}.fits"
        save(cls().make(group, cls.Params(), str(path)), path)
        files.append(str(path))
    params = cls.Params(combine=method)
    combine_files(files, params, str(tmp_path / "one.fits"), combine_as="variance")
    monkeypatch.setattr(combine, "block_rows", lambda *args, **kwargs: 8)
    combine_files(files, params, str(tmp_path / "many.fits"), combine_as="variance")
    one, many = (fits.getdata(tmp_path / n, "SCI") for n in ("one.fits", "many.fits"))
    np.testing.assert_array_equal(one, many)
    squares = np.array([fits.getdata(f, "SCI").astype(float) ** 2 for f in files])
    if method == "mean":  # read noise combines as the root of the mean variance
        np.testing.assert_allclose(one, np.sqrt(squares.mean(axis=0)), rtol=1e-5)


def test_combining_keeps_the_first_files_tables_and_other_arrays(tmp_path):
    from stdatamodels.jwst import datamodels

    from refsmith.plugins.builtin._common import dq_def

    files = []
    for index in range(2):
        dq = np.zeros((8, 8), np.uint32)
        dq[index, index] = 1  # uint32: BZERO in the file, wrong unless read scaled
        model = datamodels.LinearityModel(coeffs=np.full((3, 8, 8), index + 1.0, np.float32),
                                          dq=dq, dq_def=dq_def(["DO_NOT_USE", "NO_LIN_CORR"]))
        model.meta.instrument.name = "NIRCAM"
        files.append(str(tmp_path / f"lin{index}.fits"))
        model.save(files[-1])
        with fits.open(files[-1], mode="update") as hdus:  # stored scaled: BZERO = 100
            hdus["COEFFS"].scale("int16", bzero=100)
    combined = combine_files(files, load_plugin("dark").Params(), None)
    assert (combined.coeffs == 1.0).all()  # another image array: the first file's, scaled
    assert combined.dq[0, 0] == combined.dq[1, 1] == 1 and combined.dq.sum() == 2
    assert [str(n).strip() for n in combined.dq_def["NAME"]] == ["DO_NOT_USE", "NO_LIN_CORR"]

    dark = datamodels.DarkModel(data=np.ones((2, 8, 8), np.float32),
                                err=np.ones((2, 8, 8), np.float32),
                                dq=np.ones((8, 8), np.uint32), dq_def=dq_def(["DO_NOT_USE"]))
    dark.save(str(tmp_path / "dark.fits"))
    template, arrays = combine._template(str(tmp_path / "dark.fits"), "DarkModel")
    assert arrays == ["data", "err", "dq"] and "data" not in template.instance
    assert [str(n).strip() for n in template.dq_def["NAME"]] == ["DO_NOT_USE"]


# ------------------------------------------------ injected truth at few samples per pixel


def reffile_job(root: Path, plugin: str, paths: list[tuple[str, Path]],
                params: dict | None = None) -> ReffileJob:
    return ReffileJob(
        id=f"reffile-{plugin}-t", recipe=plugin, reftype=REFTYPES[plugin], group="t",
        plugin=plugin, inputs=tuple(ReffileInput(r, str(p), str(p)) for r, p in paths),
        output=str(root / "reffiles" / plugin / "t.fits"), params=params or {})


def run_job(root: Path, plugin: str, paths, params=None) -> Path:
    job = reffile_job(root, plugin, paths, params)
    result = run_reffile_job(job, str(root / "logs" / f"{plugin}.log"))
    assert result.ok, result.error
    return Path(job.output)


# samples per pixel -> (nints, ngroups) of each ramp
LAYOUTS = {5: (1, 6), 10: (1, 11), 36: (4, 10)}
INTERIOR = (slice(4, -4), slice(4, -4))


@pytest.mark.parametrize("samples", sorted(LAYOUTS))
def test_readnoise_is_cds_noise_recovered_at_few_samples(tmp_path, samples):
    nints, ngroups = LAYOUTS[samples]
    shape = (nints, ngroups, 128, 128)
    noise = 5.0  # DN per frame
    pair = [write_ramp(tmp_path / f"d{i}.fits", shape=shape, read_noise=noise, seed=i,
                       nframes=2) for i in range(2)]
    path = run_job(tmp_path, "readnoise", [("D1", pair[0]), ("D2", pair[1])])
    readnoise = fits.getdata(path, "SCI").astype(float)[INTERIOR]
    # the pipeline's READNOISE: the noise of a CDS of single frames, sqrt(2) x per frame,
    # whatever NFRAMES (ramp fitting divides it by sqrt(2 NFRAMES) for a group)
    ratio = np.sqrt(np.mean(readnoise ** 2)) / (np.sqrt(2) * noise)
    print(f"{samples} CDS samples per pixel: recovered / injected = {ratio:.4f}")
    assert ratio == pytest.approx(1, abs=0.03)


@pytest.mark.parametrize("samples", sorted(LAYOUTS))
def test_gain_recovered_at_few_samples(tmp_path, samples):
    nints, ngroups = LAYOUTS[samples]
    shape = (nints, ngroups, 128, 128)
    common = dict(shape=shape, read_noise=5.0, gain=2.5)
    darks = [write_ramp(tmp_path / f"d{i}.fits", seed=i, dark_rate=0.05, **common)
             for i in range(2)]
    flats = [write_ramp(tmp_path / f"f{i}.fits", seed=5 + i, flux=30.0, exp_type="NRC_FLAT",
                        **common) for i in range(2)]
    path = run_job(tmp_path, "gain", [("D1", darks[0]), ("D2", darks[1]),
                                      ("F1", flats[0]), ("F2", flats[1])])
    gain = fits.getdata(path, "SCI").astype(float)[INTERIOR]
    print(f"{samples} group steps per pixel: gain {np.mean(gain):.4f} (injected 2.5)")
    assert np.mean(gain) / 2.5 == pytest.approx(1, abs=0.03)


@pytest.mark.parametrize("samples", sorted(LAYOUTS))
def test_dark_rate_recovered_at_few_integrations(tmp_path, samples):
    # samples = integrations per pixel: 5 darks of 1, 10 of 1, or 4 darks of 9
    count, nints = {5: (5, 1), 10: (10, 1), 36: (4, 9)}[samples]
    shape = (nints, 8, 64, 64)
    darks = [write_ramp(tmp_path / f"d{i}.fits", shape=shape, read_noise=5.0, dark_rate=0.2,
                        seed=i) for i in range(count)]
    path = run_job(tmp_path, "dark", [(f"D{i + 1}", p) for i, p in enumerate(darks)])
    ramp = fits.getdata(path, "SCI").astype(float)[:, 4:-4, 4:-4]
    times = 10.0 * (np.arange(8) + 1.0)  # RAPID, TFRAME = 10 s
    rate = np.polyfit(times, ramp.reshape(8, -1).mean(axis=1), 1)[0]
    print(f"{samples} integrations: dark rate {rate:.4f} DN/s (injected 0.2)")
    assert rate / 0.2 == pytest.approx(1, abs=0.03)
    # ERR is the error of the mean: (read noise**2 + dark shot noise) / samples
    err = fits.getdata(path, "ERR").astype(float)[:, 4:-4, 4:-4]
    expected = (5.0 ** 2 + 0.2 * times / 2.0) / samples  # gain 2 e-/DN
    ratio = np.mean(err ** 2, axis=(1, 2)) / expected
    assert np.all(np.abs(ratio - 1) < 0.1), ratio
    assert not fits.getdata(path, "DQ").any()


def test_final_file_lists_the_raw_exposures_it_was_made_from(tmp_path, ramps):
    _, darks, _ = ramps
    individual = [run_job(tmp_path / f"g{i}", "readnoise",
                          [("D1", darks[i]), ("D2", darks[i + 2])]) for i in range(2)]
    job = CombineJob(id="combine-readnoise-x", recipe="readnoise", reftype="readnoise",
                     plugin="readnoise", partition=(("DETECTOR", "NRCA1"),),
                     inputs=tuple(map(str, individual)),
                     output=str(tmp_path / "final" / "readnoise" / "readnoise_x.fits"))
    result = run_combine_job(job, str(tmp_path / "combine.log"))
    assert result.ok, result.error
    history = [str(c) for c in fits.getheader(job.output, 0)["HISTORY"]]
    used = [line for line in history if line.startswith("DATA USED:")]
    assert used == ["DATA USED: 4 raw exposures", *(f"DATA USED: {p.name}" for p in
                                                    (darks[0], darks[2], darks[1], darks[3]))]


def test_box_gain_equals_the_box_by_box_loop():
    """All boxes at once give what one box at a time gave (the first version's loop)."""
    from refsmith.plugins.builtin.gain import GainParams, box_gain
    from refsmith.plugins.stats import robust_zscore

    rng = np.random.default_rng(4)
    ny, nx = 70, 45  # partial boxes at the edges
    signal_d = rng.normal(1.0, 0.1, (ny, nx))
    signal_f = rng.normal(101.0, 2.0, (ny, nx))
    variance_d = rng.normal(50.0, 3.0, (ny, nx))
    variance_f = variance_d + 2 * (signal_f - signal_d) / 2.5 + rng.normal(0, 3, (ny, nx))
    signal_f[rng.random((ny, nx)) < 0.02] *= 0.1  # dead and hot pixels
    variance_d[rng.random((ny, nx)) < 0.02] *= 20
    signal_d[3, 3] = np.nan
    reference = np.zeros((ny, nx), bool)
    reference[:4] = reference[:, :4] = True
    params = GainParams(box=16, min_pixels=16)
    expected = np.full((ny, nx), np.nan)
    for y in range(0, ny, 16):
        for x in range(0, nx, 16):
            box = (slice(y, y + 16), slice(x, x + 16))
            usable = ~reference[box] & np.isfinite(signal_f[box] + variance_f[box] +
                                                   signal_d[box] + variance_d[box])
            for values in (signal_f[box], variance_f[box], variance_d[box]):
                usable &= np.abs(robust_zscore(values, usable)) <= params.reject_sigma
            if usable.sum() < params.min_pixels:
                continue
            signal = signal_f[box][usable].mean() - signal_d[box][usable].mean()
            variance = variance_f[box][usable].mean() - variance_d[box][usable].mean()
            if signal > 0 and variance > 0:
                expected[box] = 2 * signal / variance
    found = box_gain(signal_f, variance_f, signal_d, variance_d, reference, params)
    np.testing.assert_allclose(found, expected, rtol=1e-10)
    assert np.isfinite(found).mean() > 0.8 and np.nanmedian(found) == pytest.approx(2.5, 0.05)


@pytest.mark.parametrize("plugin", ["dark", "readnoise", "bad_pixel_mask"])
def test_a_lone_file_is_the_final_file_as_it_is(tmp_path, ramps, plugin):
    """One individual file (a D+ recipe's partition): the final holds its arrays unchanged
    (SCI and ERR written from a memory map of it), and the file itself is not modified."""
    import hashlib

    _, darks, flats = ramps
    paths = [(r, Path(p)) for r, p, _ in members(plugin, darks, flats)]
    individual = run_job(tmp_path / "g", plugin, paths)
    digest = hashlib.sha256(individual.read_bytes()).hexdigest()
    job = CombineJob(id=f"combine-{plugin}-x", recipe=plugin, reftype=REFTYPES[plugin],
                     plugin=plugin, partition=(("DETECTOR", "NRCA1"),),
                     inputs=(str(individual),),
                     output=str(tmp_path / "final" / plugin / f"{plugin}_x.fits"))
    result = run_combine_job(job, str(tmp_path / "combine.log"))
    assert result.ok, result.error
    with fits.open(individual) as one, fits.open(job.output) as final:
        names = [h.name for h in one[1:] if h.is_image and h.data is not None]
        assert names and names == [h.name for h in final[1:]
                                   if h.is_image and h.data is not None]
        for name in names:
            assert final[name].data.dtype == one[name].data.dtype, name
            np.testing.assert_array_equal(final[name].data, one[name].data, err_msg=name)
    assert hashlib.sha256(individual.read_bytes()).hexdigest() == digest
