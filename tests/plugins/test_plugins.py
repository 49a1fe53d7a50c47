"""The plug-in framework: registry, parameters, failures, provenance, combiners, validation.

Fast: the inputs are synthetic raw exposures (no pipeline run), except where marked slow.
"""

from __future__ import annotations

import json
from importlib import metadata
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from refsmith.jobs.records import CombineJob, ReffileInput, ReffileJob
from refsmith.plugins import (
    BUILTIN_PLUGINS,
    ParameterError,
    PluginNotFoundError,
    PluginParams,
    ReffilePlugin,
    describe_plugins,
    load_plugin,
    merge_params,
    registry,
    run_combine_job,
    run_reffile_job,
)
from refsmith.plugins.combine import combine_arrays, vote_flags
from refsmith.plugins.validate import ReferenceFileInvalid, check_datamodel
from refsmith.synthetic.ramps import write_raw_exposure

EXAMPLE = "example_plugin:MedianBias"
SHAPE = (2, 3, 32, 32)


@pytest.fixture(scope="module")
def darks(tmp_path_factory):
    root = tmp_path_factory.mktemp("plugin_inputs")
    return [write_raw_exposure(root / f"jw_d{i}_uncal.fits", shape=SHAPE, subarray="SUB32",
                               seed=i, mjd=60100.0 + i, read_noise=2.0) for i in (1, 2)]


def reffile_job(root: Path, darks, plugin: str = EXAMPLE, recipe: str = "bias",
                params: dict | None = None, reftype: str = "superbias") -> ReffileJob:
    return ReffileJob(
        id=f"reffile-{recipe}-g1", recipe=recipe, reftype=reftype, group=f"{recipe}-g1",
        plugin=plugin,
        inputs=tuple(ReffileInput(f"D{i + 1}", str(p), str(p)) for i, p in enumerate(darks)),
        output=str(root / "run" / "reffiles" / recipe / "g1.fits"), params=params or {},
        config="/cfg/refsmith.yaml sha256:0123456789abcdef")


def run_job(tmp_path, darks, **kwargs):
    job = reffile_job(tmp_path, darks, **{k: v for k, v in kwargs.items()
                                          if k != "param_overrides"})
    log = tmp_path / "run" / "logs" / f"{job.id}.log"
    result = run_reffile_job(job, str(log), param_overrides=kwargs.get("param_overrides", {}))
    return job, result


# ----------------------------------------------------------------------- registry


def test_builtins_are_found_without_entry_points():
    for name in BUILTIN_PLUGINS:
        plugin = load_plugin(name)
        assert plugin.name == name
        assert issubclass(plugin.Params, PluginParams)
        assert plugin.steps and plugin.imtypes


def test_module_class_names_load_directly():
    plugin = load_plugin(EXAMPLE)
    assert plugin.name == "median_bias" and plugin.reftype == "superbias"
    with pytest.raises(PluginNotFoundError, match="not a refsmith plug-in"):
        load_plugin("json:JSONDecoder")
    with pytest.raises(PluginNotFoundError, match="cannot import module"):
        load_plugin("no_such_module_xyz:Thing")


def test_entry_points_add_third_party_plugins(monkeypatch):
    fake = metadata.EntryPoint(name="median_bias", value=EXAMPLE,
                               group=registry.ENTRY_POINT_GROUP)
    monkeypatch.setattr(registry.metadata, "entry_points",
                        lambda group: [fake] if group == registry.ENTRY_POINT_GROUP else [])
    assert load_plugin("median_bias").__name__ == "MedianBias"
    rows = {row["name"]: row for row in describe_plugins()}
    assert rows["median_bias"]["source"] == EXAMPLE
    offset = next(p for p in rows["median_bias"]["parameters"] if p["name"] == "offset")
    assert offset["default"] == 0.0 and "added to the bias" in offset["description"]


def test_plugins_command_shows_needs_and_a_plugin_that_cannot_load(monkeypatch, capsys):
    from refsmith.cli import main

    broken = metadata.EntryPoint(name="broken_bias", value="no_such_module_xyz:Thing",
                                 group=registry.ENTRY_POINT_GROUP)
    monkeypatch.setattr(registry.metadata, "entry_points",
                        lambda group: [broken] if group == registry.ENTRY_POINT_GROUP else [])
    assert main(["plugins"]) == 0
    text = capsys.readouterr().out
    assert "broken_bias (no_such_module_xyz:Thing): cannot be loaded:" in text
    assert "needs: groups holding DDFF; ramps (steps stopping before ramp_fit)" in text


def test_describe_plugins_lists_builtins_with_parameters():
    rows = {row["name"]: row for row in describe_plugins()}
    assert set(BUILTIN_PLUGINS) <= set(rows)
    gain = rows["gain"]
    assert (gain["reftype"], gain["imtypes"], gain["steps"]) == ("gain", "DDFF", ["linearity-"])
    params = {p["name"]: p for p in gain["parameters"]}
    assert params["box"]["default"] == 32 and params["box"]["description"]
    assert params["validate"]["default"] == "datamodel"
    json.dumps(list(rows.values()), default=str)  # printable as --format json


# --------------------------------------------------------------------- parameters


def test_parameter_precedence_defaults_config_command_line():
    plugin = load_plugin(EXAMPLE)
    assert merge_params(plugin, "bias", {}).offset == 0.0
    assert merge_params(plugin, "bias", {"offset": 2}).offset == 2.0
    merged = merge_params(plugin, "bias", {"offset": 2, "min_darks": 2},
                          {"bias.offset": "3.5", "other.offset": "9", "author": "me"})
    assert (merged.offset, merged.min_darks, merged.author) == (3.5, 2, "me")
    assert merge_params(plugin, "bias", {"validate": "pipeline"}).validate_with == "pipeline"


@pytest.mark.parametrize(("config", "overrides", "message"), [
    ({}, {"bias.offset": "abc"}, "parameter 'offset' (--param bias.offset)"),
    ({"min_darks": 0}, {}, "parameter 'min_darks' (config params)"),
    ({"offest": 1}, {}, "unknown parameter 'offest' (config params); known:"),
    ({"validate": "maybe"}, {}, "parameter 'validate'"),
])
def test_bad_parameters_name_the_key(config, overrides, message):
    with pytest.raises(ParameterError, match="recipe 'bias'") as info:
        merge_params(load_plugin(EXAMPLE), "bias", config, overrides)
    assert message in str(info.value)


def test_the_docs_show_the_example_plugin_as_it_is():
    docs = (Path(__file__).parents[2] / "docs" / "plugins.md").read_text()
    example = (Path(__file__).parents[1] / "example_plugin.py").read_text()
    shown = docs.split("```python\n", 1)[1].split("```", 1)[0]
    assert shown.strip() and example.endswith(shown)


def test_example_plugin_end_to_end_with_precedence(tmp_path, darks):
    job, result = run_job(tmp_path, darks, params={"offset": 2.0, "author": "Team X"},
                          param_overrides={"bias.offset": "5"})
    assert result.ok, result.error
    assert result.outputs == (job.output,) and Path(result.log_path).is_file()
    first_groups = np.concatenate([fits.getdata(p, "SCI")[:, 0] for p in darks]).astype(float)
    np.testing.assert_allclose(fits.getdata(job.output, "SCI"),
                               np.median(first_groups, axis=0) + 5.0, rtol=1e-6)
    header = fits.getheader(job.output, 0)
    assert (header["REFTYPE"], header["AUTHOR"], header["PEDIGREE"]) == (
        "SUPERBIAS", "Team X", "GROUND")
    assert (header["INSTRUME"], header["DETECTOR"], header["SUBARRAY"]) == (
        "NIRCAM", "NRCA1", "SUB32")
    assert header["USEAFTER"] == "2023-06-06T00:00:00"  # EXPSTART of the earliest
    assert header["DESCRIP"] == "Median of the first group of darks"
    history = "".join(str(card) for card in header["HISTORY"])
    for path in darks:
        assert f"raw={path}" in history
    assert "example_plugin:MedianBias" in history and '"offset": 5.0' in history
    assert "jwst=" in history and "stdatamodels=" in history
    assert "config /cfg/refsmith.yaml sha256:0123456789abcdef" in history
    assert not [p for p in Path(job.output).parent.iterdir() if p.name.startswith(".")]


# ------------------------------------------------------------------------ failures


class Raises(ReffilePlugin):
    name, reftype = "raises", "superbias"

    def make(self, group, params, output_path):
        raise RuntimeError("the detector is on fire")


class WritesNothing(ReffilePlugin):
    name, reftype = "writes_nothing", "superbias"

    def make(self, group, params, output_path):
        return None


class WritesNaN(ReffilePlugin):
    name, reftype = "writes_nan", "superbias"

    def make(self, group, params, output_path):
        from stdatamodels.jwst import datamodels

        datamodels.SuperBiasModel(data=np.full((32, 32), np.nan, np.float32)).save(output_path)


def test_plugin_that_raises_is_this_jobs_failure(tmp_path, darks):
    Path(tmp_path / "run" / "reffiles" / "bias").mkdir(parents=True)
    stale = tmp_path / "run" / "reffiles" / "bias" / "g1.fits"
    stale.write_text("from an earlier run")
    _, result = run_job(tmp_path, darks, plugin=f"{__name__}:Raises")
    assert not result.ok and result.outputs == ()
    assert "plug-in 'test_plugins:Raises' failed" in result.error
    assert "RuntimeError: the detector is on fire" in result.error
    assert result.log_path in result.error
    assert "Traceback" in Path(result.log_path).read_text()
    assert not stale.exists()
    assert list(stale.parent.iterdir()) == []  # no temporaries left


def test_plugin_that_writes_nothing(tmp_path, darks):
    job, result = run_job(tmp_path, darks, plugin=f"{__name__}:WritesNothing")
    assert not result.ok and "wrote nothing" in result.error
    assert not Path(job.output).exists()


def test_unknown_plugin(tmp_path, darks):
    _, result = run_job(tmp_path, darks, plugin="badpix_from_flats", recipe="x")
    assert not result.ok
    assert result.error.startswith("recipe 'x': plug-in 'badpix_from_flats' is not installed "
                                   "(installed: bad_pixel_mask, dark, gain, readnoise")


def test_reftype_mismatch(tmp_path, darks):
    _, result = run_job(tmp_path, darks, reftype="dark")
    assert not result.ok and "makes reftype 'dark'" in result.error


def test_invalid_file_goes_to_rejected_with_its_reason(tmp_path, darks):
    job, result = run_job(tmp_path, darks, plugin=f"{__name__}:WritesNaN")
    assert not result.ok and "failed validation" in result.error
    assert not Path(job.output).exists()
    rejected = tmp_path / "run" / "rejected" / "reffiles" / "bias" / "g1.fits"
    assert rejected.is_file()
    assert "non-finite" in Path(f"{rejected}.reason.txt").read_text()


def test_bad_parameter_fails_the_job_before_the_plugin_runs(tmp_path, darks):
    _, result = run_job(tmp_path, darks, plugin=f"{__name__}:Raises",
                          param_overrides={"bias.validate": "sometimes"})
    assert not result.ok and "parameter 'validate'" in result.error
    assert "on fire" not in result.error


def test_strict_datamodel_check_names_missing_metadata(tmp_path):
    from stdatamodels.jwst import datamodels

    path = tmp_path / "bare.fits"
    datamodels.SuperBiasModel(data=np.zeros((4, 4), np.float32)).save(str(path))
    with pytest.raises(ReferenceFileInvalid, match="reftype"):
        check_datamodel(path, "superbias")
    with pytest.raises(ReferenceFileInvalid, match="does not open as ReadnoiseModel"):
        check_datamodel(path, "readnoise")


# ----------------------------------------------------------------------- combiners


def test_combine_arrays_methods_and_error_propagation():
    stack = np.array([[1.0, 2.0], [1.2, 2.0], [0.8, 2.0], [1.1, 2.0], [50.0, 2.0]])
    errors = np.ones_like(stack)
    clipped, clipped_err = combine_arrays(stack, "clipped_mean", 3.0, errors)
    assert clipped[0] == pytest.approx(1.025, abs=1e-6)  # the 50 is clipped
    assert clipped_err[0] == pytest.approx(1 / 2)  # 4 values kept: sqrt(4) / 4
    mean, mean_err = combine_arrays(stack, "mean", errors=errors)
    assert mean[0] == pytest.approx(10.82) and mean_err[1] == pytest.approx(1 / np.sqrt(5))
    median, median_err = combine_arrays(stack, "median", errors=errors)
    assert median[0] == pytest.approx(1.1)
    assert median_err[1] == pytest.approx(np.sqrt(np.pi / 2) / np.sqrt(5))
    assert combine_arrays(stack, "mean")[1] is None
    with pytest.raises(ValueError, match="unknown combine method"):
        combine_arrays(stack, "mode")


def test_vote_flags_keeps_bits_set_by_enough_files():
    masks = [np.array([1 | 1024, 2048], np.uint32), np.array([1024, 0], np.uint32),
             np.array([0, 0], np.uint32)]
    assert vote_flags(masks, 0.5).tolist() == [1024, 0]
    assert vote_flags(masks, 0.3).tolist() == [1 | 1024, 2048]
    assert vote_flags(masks, 1.0).tolist() == [0, 0]


def _mask_file(path: Path, dq: np.ndarray) -> str:
    from stdatamodels.jwst import datamodels

    model = datamodels.MaskModel(dq=dq.astype(np.uint32))
    meta = model.meta
    meta.reftype, meta.author, meta.pedigree = "MASK", "t", "GROUND"
    meta.description, meta.useafter = "individual", "2023-01-01T00:00:00"
    meta.instrument.name, meta.instrument.detector = "NIRCAM", "NRCA1"
    meta.subarray.name = "SUB32"
    path.parent.mkdir(parents=True, exist_ok=True)
    model.save(str(path))
    return str(path)


def test_combine_job_votes_masks_and_lists_individual_files(tmp_path):
    dq = np.zeros((3, 8, 8), np.uint32)
    dq[:, 0, 0] = 1024  # in all three
    dq[0, 1, 1] = 2048  # in one only
    dq[:2, 2, 2] = 8192  # in two
    files = [_mask_file(tmp_path / "run" / "reffiles" / "bpm" / f"g{i}.fits", dq[i])
             for i in range(3)]
    job = CombineJob(id="combine-bpm-p", recipe="bpm", reftype="mask",
                     plugin="bad_pixel_mask", partition=(("DETECTOR", "NRCA1"),),
                     inputs=tuple(files),
                     output=str(tmp_path / "run" / "final" / "bpm" / "bpm_p.fits"),
                     params={"vote_fraction": 0.6})
    result = run_combine_job(job, str(tmp_path / "combine.log"))
    assert result.ok, result.error
    final = fits.getdata(job.output, "DQ")
    assert (final[0, 0], final[1, 1], final[2, 2]) == (1024, 0, 8192)
    history = "".join(str(c) for c in fits.getheader(job.output, 0)["HISTORY"])
    for path in files:
        assert f"individual | file={path}" in history
    assert "individual" not in history.split("combined")[0]  # no inherited HISTORY


def test_combine_job_with_a_missing_individual_file(tmp_path):
    job = CombineJob(id="combine-bpm-p", recipe="bpm", reftype="mask",
                     plugin="bad_pixel_mask", partition=(), inputs=(str(tmp_path / "no.fits"),),
                     output=str(tmp_path / "final" / "bpm" / "x.fits"))
    result = run_combine_job(job, str(tmp_path / "c.log"))
    assert not result.ok and "individual files missing" in result.error


# -------------------------------------------------------- pipeline validation (slow)


class WrongShapeDark(ReffilePlugin):
    name, reftype = "wrong_shape_dark", "dark"

    def make(self, group, params, output_path):
        from stdatamodels.jwst import datamodels

        model = datamodels.DarkModel(data=np.zeros((3, 16, 16), np.float32),
                                     err=np.zeros((3, 16, 16), np.float32),
                                     dq=np.zeros((16, 16), np.uint32))
        model.meta.exposure.ngroups, model.meta.exposure.nframes = 3, 1
        model.meta.exposure.groupgap = 0
        model.save(output_path)


@pytest.mark.slow
def test_pipeline_validation_rejects_a_file_the_step_cannot_use(tmp_path, darks):
    job, result = run_job(tmp_path, darks, plugin=f"{__name__}:WrongShapeDark",
                          reftype="dark", params={"validate": "pipeline"})
    assert not result.ok and "DarkCurrentStep failed" in result.error
    rejected = tmp_path / "run" / "rejected" / "reffiles" / "bias" / "g1.fits"
    assert rejected.is_file() and not Path(job.output).exists()


@pytest.mark.slow
def test_pipeline_validation_passes_the_example(tmp_path, darks):
    _, result = run_job(tmp_path, darks, params={"validate": "pipeline"})
    assert result.ok, result.error
    assert "pipeline validation passed" in Path(result.log_path).read_text()
