"""Calibration planning: start files, merged jobs, names, references, DAG (issue 4)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from refsmith.catalog.catalog import header_reader, scan
from refsmith.catalog.options import CatalogOptions
from refsmith.detector1.naming import exposure_base, product_base, state_id
from refsmith.detector1.steps import step_order
from refsmith.errors import ConfigError, PlanError
from refsmith.grouping import GroupingRule
from refsmith.grouping.build import group_recipes
from refsmith.jobs.records import CalibrationJob, CombineJob, ReffileJob, StartChoice
from refsmith.model import Exposure
from refsmith.planning.calibration_jobs import merge_targets
from refsmith.planning.planner import CalibrationPlan, plan_jobs
from refsmith.planning.specs import PlanningOptions, RecipeSpec
from refsmith.planning.starts import choose_starts
from refsmith.synthetic.headers import write_exposure

NIR = step_order("NIRCAM")
DQ = ("group_scale", "dq_init")
DARK = ("group_scale", "dq_init", "saturation", "ipc", "superbias", "refpix", "linearity",
        "dark_current")


def raw(tmp: Path, name: str, **kw) -> Path:
    return write_exposure(tmp / "raw" / f"{name}_uncal.fits", **kw)


def product(directory: Path, name: str, suffix: str, steps: dict[str, str], **kw) -> Path:
    return write_exposure(directory / f"{name}_{suffix}.fits", steps=steps, **kw)


def complete(*names: str) -> dict[str, str]:
    return dict.fromkeys(names, "COMPLETE")


def catalog(tmp: Path) -> list[Exposure]:
    return scan([str(tmp / "raw")], CatalogOptions()).exposures


def recipe(name: str, steps, imtypes: str = "D", reftype: str | None = None,
           save_steps=(), **rule) -> RecipeSpec:
    return RecipeSpec(GroupingRule(recipe=name, reftype=reftype or name, imtypes=imtypes,
                                   **rule), steps, tuple(save_steps))


def make_plan(tmp: Path, recipes, **options) -> CalibrationPlan:
    """Start files, groups, jobs: the stages of build_plan after the catalog."""
    exposures = catalog(tmp)
    planning = PlanningOptions(store_dir=tmp / "out" / "calibrated",
                               read_headers=header_reader(CatalogOptions()),
                               output_dir=tmp / "out" / "run", **options)
    starts = choose_starts(exposures, recipes, planning)
    groups = group_recipes(exposures, [r.rule for r in recipes], starts.excluded_paths())
    return plan_jobs(exposures, groups, starts, recipes, planning)


def only_job(plan: CalibrationPlan) -> CalibrationJob:
    assert len(plan.calibration_jobs) == 1, [j.id for j in plan.calibration_jobs]
    return plan.calibration_jobs[0]


# ---------------------------------------------------------------- names


@pytest.mark.parametrize("name, base", [
    ("jw01_nrca1_uncal.fits", "jw01_nrca1"),
    ("jw01_nrca1_dq_init.fits", "jw01_nrca1"),
    ("jw01_nrca1_ramp.fits", "jw01_nrca1"),
    ("jw01_nrca1_rate.fits", "jw01_nrca1"),
    ("jw01_nrca1_0_ramp_fit.fits", "jw01_nrca1"),
    ("jw01_nrca1_dark_current.fits", "jw01_nrca1"),
    ("jw01_nrca1_dark_current_0123abcd.fits", "jw01_nrca1"),
    ("jw01_nrca1_rateints.fits", None),
    ("jw01_nrca1_1_ramp_fit.fits", None),
    ("jw01_nrca1_fitopt.fits", None),
    ("notes.txt", None),
])
def test_product_base(name: str, base: str | None) -> None:
    assert product_base(name) == base


def test_state_id_is_order_free_and_distinct() -> None:
    assert state_id(["dq_init", "group_scale"]) == state_id(("group_scale", "dq_init"))
    assert state_id(DQ) != state_id(DARK)
    assert exposure_base("/x/jw02_mirimage_uncal.fits") == "jw02_mirimage"


# ---------------------------------------------------------------- required state, starts


@pytest.mark.parametrize("instrument, steps, expected", [
    ("NIRCAM", "dq_init-", DQ),
    ("NIRCAM", "dark_current-", DARK),
    ("MIRI", "dark_current-", ("group_scale", "dq_init", "saturation", "ipc", "lastframe",
                               "reset", "linearity", "rscd", "dark_current")),
    ("MIRI", ["dq_init", "rate"], ("dq_init", "ramp_fit")),
])
def test_raw_start_runs_the_required_steps_in_pipeline_order(tmp_path, instrument, steps,
                                                             expected) -> None:
    raw(tmp_path, "jw_a", instrument=instrument)
    job = only_job(make_plan(tmp_path, [recipe("r", steps)]))
    assert job.steps_to_run == expected
    order = step_order(instrument)
    assert job.steps_to_skip == tuple(s for s in order if s not in expected)
    assert job.start_file.endswith("jw_a_uncal.fits")
    assert [o.steps for o in job.outputs] == [expected]


@pytest.mark.parametrize("steps, error", [
    ("warp-", "recipe 'r'"),
    (["dq_init", "warp"], "recipe 'r'.*unknown"),
])  # a step the exposure's instrument lacks: tests/planning/test_mixed_instruments.py
def test_bad_steps_are_config_errors_naming_the_recipe(tmp_path, steps, error) -> None:
    raw(tmp_path, "jw_a")
    with pytest.raises(ConfigError, match=error):
        make_plan(tmp_path, [recipe("r", steps)])


@pytest.mark.parametrize("raw_steps, products, recipe_steps, start, to_run", [
    # partly processed input: continue from it
    (complete(*DQ), {}, "dark_current-", "raw", DARK[2:]),
    # products in a search dir: the one with most steps done that fits wins
    ({}, {"dq_init": complete(*DQ), "superbias": complete(*DARK[:5])}, "dark_current-",
     "superbias", DARK[5:]),
    # a product with a step the recipe forbids is rejected; the next best is used
    ({}, {"dq_init": complete(*DQ), "jump": complete(*DARK, "jump")}, "dark_current-",
     "dq_init", DARK[2:]),
    # a product missing an earlier required step cannot be used
    ({}, {"linearity": complete("group_scale", "dq_init", "saturation", "linearity")},
     "dark_current-", "raw", DARK),
    # exactly at the required state: nothing to run
    ({}, {"dark_current": complete(*DARK)}, "dark_current-", "dark_current", ()),
    # a rate product cannot be resumed
    ({}, {"rate": complete(*DARK, "jump", "ramp_fit")},
     ["ramp_fit-", "gain_scale"], "raw", (*DARK, "jump", "ramp_fit", "gain_scale")),
    # SKIPPED group_scale with NFRAMES=1 counts as done (the pipeline skips it)
    ({}, {"dq_init": {"group_scale": "SKIPPED", "dq_init": "COMPLETE"}}, "dark_current-",
     "dq_init", DARK[2:]),
    # SKIPPED where the step does apply is not done: start earlier
    ({}, {"dq_init": {"group_scale": "SKIPPED", "dq_init": "COMPLETE"},
          "uncal2": {}}, "dark_current-", "raw", DARK),
])
def test_start_choice(tmp_path, raw_steps, products, recipe_steps, start, to_run) -> None:
    extra = {"NFRAMES": 3} if "uncal2" in products else None
    products = {k: v for k, v in products.items() if k != "uncal2"}
    raw(tmp_path, "jw_a", steps=raw_steps, extra=extra)
    for suffix, steps in products.items():
        product(tmp_path / "search", "jw_a", suffix, steps, extra=extra)
    plan = make_plan(tmp_path, [recipe("r", recipe_steps)], search_dirs=(tmp_path / "search",))
    choice = plan.start_choices[("r", str((tmp_path / "raw" / "jw_a_uncal.fits").resolve()))]
    expected = "jw_a_uncal.fits" if start == "raw" else f"jw_a_{start}.fits"
    assert Path(choice.start_file).name == expected
    assert choice.steps_to_run == to_run
    assert len(choice.rejected) == len(products) + 1 - 1
    if to_run:
        assert only_job(plan).steps_to_run == to_run
    else:
        assert plan.calibration_jobs == ()
        assert plan.stats["r"]["already_at_required_state"] == 1
        assert Path(plan.reffile_jobs[0].inputs[0].path).name == expected


def test_forbidden_step_done_excludes_the_exposure_before_grouping(tmp_path) -> None:
    raw(tmp_path, "jw_a", steps=complete(*DARK))
    raw(tmp_path, "jw_b", mjd=60000.1)
    plan = make_plan(tmp_path, [recipe("dark", "superbias-", imtypes="DD")])
    assert plan.groups == ()  # jw_a never reached grouping: jw_b is alone
    reasons = {Path(x.path).name: x.reason for x in plan.leftovers}
    assert reasons["jw_a_uncal.fits"] == (
        "S_REFPIX=COMPLETE but recipe 'dark' requires refpix not run")
    assert "jw_b_uncal.fits" in reasons
    assert plan.stats["dark"]["excluded_by_start_state"] == 1


@pytest.mark.parametrize("product_steps", [
    {},                                   # no S_* keyword at all
    {"group_scale": "SKIPPED"},           # SKIPPED where it applies (NFRAMES 3): not done
])
def test_a_product_with_no_required_step_done_is_not_a_start(tmp_path, product_steps) -> None:
    raw(tmp_path, "jw_a", extra={"NFRAMES": 3})
    search = tmp_path / "a_search"  # sorts before raw/: it would win a tie with the raw file
    product(search, "jw_a", "dq_init", product_steps, extra={"NFRAMES": 3})
    plan = make_plan(tmp_path, [recipe("r", "superbias-")], search_dirs=(search,))
    (choice,) = plan.start_choices.values()
    assert Path(choice.start_file).name == "jw_a_uncal.fits"
    assert choice.start_steps == ()
    assert choice.steps_to_run == DARK[:5]
    assert [(Path(r.path).name, r.reason) for r in choice.rejected] == [
        ("jw_a_dq_init.fits", "no required step done (the raw file is equivalent)")]
    assert Path(only_job(plan).start_file).name == "jw_a_uncal.fits"


def test_product_of_another_detector_is_rejected(tmp_path) -> None:
    raw(tmp_path, "jw_a")
    product(tmp_path / "search", "jw_a", "dq_init", complete(*DQ), detector="NRCB1")
    plan = make_plan(tmp_path, [recipe("r", "superbias-")], search_dirs=(tmp_path / "search",))
    (choice,) = plan.start_choices.values()
    assert Path(choice.start_file).name == "jw_a_uncal.fits"
    assert any("DETECTOR=NRCB1" in r.reason for r in choice.rejected)


# ---------------------------------------------------------------- merging


def test_merge_targets_nests_prefixes_only() -> None:
    start = frozenset(DQ)
    a = frozenset(DARK)
    b = frozenset(DARK[:5])                     # prefix of a's remaining steps
    c = frozenset((*DQ, "saturation", "superbias"))  # skips ipc: not on a's way
    chains = merge_targets(NIR, start, [a, b, c])
    assert [(chain, sorted(map(len, states))) for chain, states in chains] == [
        (DARK[2:], [5, 8]), (("saturation", "superbias"), [4])]


def test_identical_requests_from_three_recipes_give_one_job(tmp_path) -> None:
    raw(tmp_path, "jw_a")
    raw(tmp_path, "jw_b", mjd=60000.1)
    recipes = [recipe("r1", "dark_current-"), recipe("r2", "dark_current-", imtypes="DD"),
               recipe("r3", list(DARK), imtypes="D+")]
    plan = make_plan(tmp_path, recipes)
    assert len(plan.calibration_jobs) == 2
    for job in plan.calibration_jobs:
        assert job.recipes == ("r1", "r2", "r3")
        assert len(job.groups) == 3
    assert plan.stats["r1"]["step_executions_saved"] == 0
    assert plan.stats["r2"]["step_executions_saved"] == 16
    assert plan.stats["r3"]["jobs"] == 2
    inputs = {i.path for j in plan.reffile_jobs for i in j.inputs}
    assert inputs == {j.final_output.path for j in plan.calibration_jobs}


def test_nested_requests_and_save_steps_are_one_job(tmp_path) -> None:
    raw(tmp_path, "jw_a")
    recipes = [recipe("short", "dq_init-"),
               recipe("long", "ramp_fit-", save_steps=("superbias", "fitopt"))]
    plan = make_plan(tmp_path, recipes)
    job = only_job(plan)
    assert job.steps_to_run == (*DARK, "jump", "ramp_fit")
    kinds = [(o.kind, o.steps[-1]) for o in job.outputs]
    assert kinds == [("product", "dq_init"), ("product", "superbias"),
                     ("product", "ramp_fit"), ("fitopt", "ramp_fit")]
    assert "--steps.dq_init.save_results=True" in job.argv
    assert "--steps.superbias.save_results=True" in job.argv
    assert "--steps.ramp_fit.save_opt=True" in job.argv
    assert plan.stats["short"]["jobs"] == plan.stats["long"]["jobs"] == 1
    assert len(job.groups) == 2 and job.recipes == ("short", "long")
    short = next(j for j in plan.reffile_jobs if j.recipe == "short")
    assert short.inputs[0].path == job.outputs[0].path
    assert short.depends_on == (job.id,)
    assert plan.stats["long"]["step_executions_saved"] == 0
    assert plan.stats["short"]["step_executions_saved"] == 2


def test_names_are_stable_across_plans_and_reused(tmp_path) -> None:
    raw(tmp_path, "jw_a")
    first = make_plan(tmp_path, [recipe("r", "dark_current-")])
    second = make_plan(tmp_path, [recipe("r", "dark_current-")])
    assert [j.to_dict() for j in first.calibration_jobs] == [
        j.to_dict() for j in second.calibration_jobs]
    out = only_job(first).final_output
    assert Path(out.path).name == f"jw_a_dark_current_{state_id(DARK)}.fits"
    assert Path(out.path).parent.name == "jw_a"
    other = only_job(make_plan(tmp_path, [recipe("r", "superbias-")])).final_output
    assert other.path != out.path
    # once the product exists in the store, the next plan starts from it: nothing to run
    write_exposure(out.path, steps=complete(*DARK))
    third = make_plan(tmp_path, [recipe("r", "dark_current-")])
    assert third.calibration_jobs == ()
    assert third.reffile_jobs[0].inputs[0].path == out.path


# ---------------------------------------------------------------- argv and references


def write_reference(path: Path, reftype: str, detector: str, subarray: str) -> Path:
    return write_exposure(path, detector=detector, subarray=subarray,
                                extra={"REFTYPE": reftype.upper()})


def test_argv_and_reference_overrides(tmp_path) -> None:
    raw(tmp_path, "jw_a")  # NRCA1 SUB64P
    refs = tmp_path / "refs"
    write_reference(refs / "gain_nrca1_full.fits", "gain", "NRCA1", "FULL")
    write_reference(refs / "gain_nrcb1_full.fits", "gain", "NRCB1", "FULL")
    write_reference(refs / "rn_nrca1_full.fits", "readnoise", "NRCA1", "FULL")
    write_reference(refs / "rn_nrca1_sub64p.fits", "readnoise", "NRCA1", "SUB64P")
    recipes = [recipe("r", ["ramp_fit-", "charge_migration"])]
    plan = make_plan(tmp_path, recipes, references={
        "gain": str(refs / "gain_*.fits"), "readnoise": str(refs / "rn_*.fits"),
        "mask": "crds"})
    job = only_job(plan)
    gain, rn = str(refs / "gain_nrca1_full.fits"), str(refs / "rn_nrca1_sub64p.fits")
    assert job.overrides["jump"] == {"gain": gain, "readnoise": rn}
    assert job.overrides["ramp_fit"] == {"gain": gain, "readnoise": rn}
    assert "dq_init" not in job.overrides
    argv = list(job.argv)
    assert argv[:3] == ["strun", "calwebb_detector1", job.start_file]
    assert f"--output_dir={Path(job.final_output.path).parent}" in argv
    assert "--output_file=jw_a" in argv
    assert "--steps.gain_scale.skip=True" in argv
    assert "--steps.persistence.skip=True" in argv
    # MIRI-only steps exist in every Detector1Pipeline: skipped so strun asks CRDS nothing
    for miri_step in ("emicorr", "firstframe", "lastframe", "reset", "rscd"):
        assert f"--steps.{miri_step}.skip=True" in argv
    assert "--steps.charge_migration.skip=False" in argv
    assert not any(a.startswith("--steps.dq_init.skip") for a in argv)
    assert f"--steps.jump.override_gain={gain}" in argv
    assert f"--steps.ramp_fit.override_readnoise={rn}" in argv
    assert job.final_output.strun_name == "jw_a_rate.fits"


@pytest.mark.parametrize("references, message", [
    ({"dark": "{refs}/nothing_*.fits"}, "reference type 'dark' for .*jw_a_uncal.fits"),
    ({"dark": "{refs}/dark_full.fits"}, "none of the 1 file.*SUBARRAY=SUB64P"),
    ({"mask": "self"}, "'mask' is 'self' but no recipe makes it"),
])
def test_unresolvable_references_are_plan_errors(tmp_path, references, message) -> None:
    raw(tmp_path, "jw_a")
    refs = tmp_path / "refs"
    write_reference(refs / "dark_full.fits", "dark", "NRCA1", "FULL")
    references = {k: v.format(refs=refs) for k, v in references.items()}
    with pytest.raises(PlanError, match=message):
        make_plan(tmp_path, [recipe("r", "dark_current-")], references=references)


def test_self_reference_orders_jobs_after_the_recipe_that_makes_it(tmp_path) -> None:
    for i in range(2):
        raw(tmp_path, f"jw_d{i}", mjd=60000 + i / 10)
        raw(tmp_path, f"jw_f{i}", exp_type="NRC_FLAT", mjd=60000 + i / 10)
    recipes = [recipe("superbias", "dq_init-", imtypes="D+"),
               recipe("flat", "superbias-", imtypes="F")]
    plan = make_plan(tmp_path, recipes, references={"superbias": "self"})
    combine = next(c for c in plan.combine_jobs if c.recipe == "superbias")
    flat_jobs = [j for j in plan.calibration_jobs if "flat" in j.recipes]
    assert len(flat_jobs) == 2
    for job in flat_jobs:
        assert job.depends_on == (combine.id,)
        assert job.overrides["saturation"]["superbias"] == combine.output
        assert job.overrides["superbias"]["superbias"] == combine.output
    dark_jobs = [j for j in plan.calibration_jobs if "superbias" in j.recipes]
    assert all(j.depends_on == () for j in dark_jobs)
    # a recipe that would need its own product: a cycle
    with pytest.raises(PlanError, match="depends on itself"):
        make_plan(tmp_path, [recipe("superbias", "superbias-", imtypes="D+")],
                  references={"superbias": "self"})


# ---------------------------------------------------------------- DAG and serialisation


def test_reffile_and_combine_jobs_and_round_trip(tmp_path) -> None:
    for i in range(4):
        raw(tmp_path, f"jw_d{i}", mjd=60000 + i / 10, detector="NRCA1" if i < 2 else "NRCA2")
    plan = make_plan(tmp_path, [recipe("dark", "dark_current-", imtypes="DD")])
    assert len(plan.calibration_jobs) == 4
    assert len(plan.reffile_jobs) == 2
    assert len(plan.combine_jobs) == 2
    for reffile in plan.reffile_jobs:
        assert len(reffile.depends_on) == 2
        assert [i.role for i in reffile.inputs] == ["D1", "D2"]
    by_id = {j.id: j for j in plan.reffile_jobs}
    for combine in plan.combine_jobs:
        assert [by_id[d].output for d in combine.depends_on] == list(combine.inputs)
    for cls, jobs in ((CalibrationJob, plan.calibration_jobs), (ReffileJob, plan.reffile_jobs),
                      (CombineJob, plan.combine_jobs)):
        for job in jobs:
            data = json.loads(json.dumps(job.to_dict()))
            assert cls.from_dict(data).to_dict() == job.to_dict()
    for choice in plan.start_choices.values():
        assert StartChoice.from_dict(json.loads(json.dumps(choice.to_dict()))) == choice


def test_miri_subarray_refpix_skipped_counts_as_done(tmp_path) -> None:
    steps = complete("group_scale", "dq_init", "saturation", "ipc", "lastframe", "reset",
                     "linearity", "rscd", "dark_current") | {"refpix": "SKIPPED"}
    raw(tmp_path, "jw_m", instrument="MIRI")
    product(tmp_path / "search", "jw_m", "refpix", steps, instrument="MIRI")
    plan = make_plan(tmp_path, [recipe("r", "jump-")], search_dirs=(tmp_path / "search",))
    assert only_job(plan).steps_to_run == ("jump",)


# ---------------------------------------------------------------- memory estimates


# peak memory above the worker's base (MiB) of calibration jobs measured one by one with
# jwst 3.0.0 on full-frame NIRCam exposures: (nints, ngroups, ny, nx, steps) -> MiB
MEASURED = [
    ((1, 20, 2048, 2048, ("dq_init",)), 487),
    ((1, 40, 2048, 2048, ("dq_init",)), 967),
    ((1, 20, 2048, 2048, ("dq_init", "saturation", "superbias", "refpix", "linearity")), 704),
    ((2, 10, 2048, 2048, ("dq_init", "saturation", "superbias", "refpix", "linearity")), 680),
    ((1, 10, 512, 512, ("dq_init", "saturation", "linearity")), 67),
    ((1, 10, 2048, 2048, ("dq_init", "linearity", "dark_current", "jump", "ramp_fit")), 2498),
    ((2, 10, 2048, 2048, ("dq_init", "linearity", "dark_current", "jump", "ramp_fit")), 4730),
    ((1, 20, 2048, 2048, ("dq_init", "linearity", "dark_current", "jump", "ramp_fit")), 1769),
    ((1, 40, 2048, 2048, ("dq_init", "linearity", "dark_current", "jump", "ramp_fit")), 3489),
]


@pytest.mark.parametrize(("shape", "measured"), MEASURED)
def test_memory_model_bounds_the_measured_peaks(shape, measured) -> None:
    from refsmith.detector1.memory import calibration_memory

    estimate = calibration_memory(*shape) / 2**20
    assert measured <= estimate <= 1.3 * measured


def test_memory_model_edges() -> None:
    from refsmith.detector1.memory import calibration_memory, frame_shape

    assert calibration_memory(1, None, 2048, 2048, DQ) == 0  # NGROUPS unknown: no estimate
    assert calibration_memory(1, 20, 2048, 2048, ()) == 0  # nothing runs
    assert calibration_memory(None, 20, 64, 64, DQ) == calibration_memory(1, 20, 64, 64, DQ)
    # 10 groups: the jump step's iterative search takes more than 11 groups do
    jump = ("jump",)
    assert calibration_memory(1, 10, 2048, 2048, jump) > calibration_memory(1, 11, 2048,
                                                                            2048, jump)
    assert frame_shape("NIRCAM", 64, 32) == (32, 64)
    assert frame_shape("NIRSPEC", None, "bad") == (2048, 2048)
    assert frame_shape("MIRI", None, None) == (1024, 1032)


def test_plan_json_carries_the_memory_of_every_job(tmp_path) -> None:
    """A full-frame 20-group exposure's job is estimated as the model says (SUBSIZE1/2 read
    by the planner, else the instrument's full frame); reference-file and combine jobs get
    their recipe's budget."""
    from refsmith.config import load_config
    from refsmith.detector1.memory import calibration_memory
    from refsmith.plan import build_plan
    from refsmith.plan_files import write_run_dir

    raw(tmp_path, "jw01_nrca1", subarray="FULL", ngroups=20,
        extra={"SUBSIZE1": 2048, "SUBSIZE2": 2048})
    raw(tmp_path, "jw02_nrcb1", detector="NRCB1", subarray="FULL", ngroups=20,
        extra={"SUBSIZE1": None, "SUBSIZE2": None})
    raw(tmp_path, "jw03_mirimage", instrument="MIRI", ngroups=10,
        extra={"SUBSIZE1": None, "SUBSIZE2": None})
    raw(tmp_path, "jw04_nrca2", detector="NRCA2", ngroups=5)  # SUB64P: 64 x 64
    config = tmp_path / "refsmith.yaml"
    config.write_text("inputs: {paths: [raw]}\noutput: {root: out}\n"
                      "execution: {reffile_memory: 3GiB}\n"
                      "recipes:\n  rate: {imtypes: D, steps: ramp_fit-}\n"
                      "  rate2: {imtypes: D, steps: ramp_fit-, memory: 500MB}\n")
    plan = build_plan(load_config(config), use_cache=False)
    data = json.loads(write_run_dir(plan)["plan.json"].read_text())
    memory = {Path(j["exposure"]).name[:4]: j["memory"] for j in data["calibration_jobs"]}
    steps = {Path(j["exposure"]).name[:4]: j["steps_to_run"] for j in data["calibration_jobs"]}
    assert "jump" in steps["jw01"]
    assert memory == {
        "jw01": calibration_memory(1, 20, 2048, 2048, steps["jw01"]),
        "jw02": calibration_memory(1, 20, 2048, 2048, steps["jw02"]),
        "jw03": calibration_memory(1, 10, 1024, 1032, steps["jw03"]),
        "jw04": calibration_memory(1, 5, 64, 64, steps["jw04"]),
    }
    assert 2.0e9 < memory["jw01"] < 2.5e9  # 1.77 GB measured
    for kind in ("reffile_jobs", "combine_jobs"):
        budgets = {j["recipe"]: j["memory"] for j in data[kind]}
        assert budgets == {"rate": 3 * 1024**3, "rate2": 500_000_000}, kind
