"""One directory of NIRCam and MIRI darks (issue 15, item 10): a recipe whose steps MIRI
lacks (`superbias-`) plans the NIRCam darks and leaves the MIRI ones out with the reason;
`select` applies before the step check; top-level `instrument:` keeps only its exposures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from refsmith.cli import main
from refsmith.config import load_config, parse_config
from refsmith.errors import ConfigError
from refsmith.plan import build_plan
from refsmith.synthetic.headers import write_exposure

RECIPES = """\
inputs: {paths: [raw]}
max_days: {DD: 2.0}
output: {root: out}
recipes:
  superbias: {imtypes: DD, steps: superbias-%(select)s}
  readnoise: {imtypes: DD, steps: dq_init-}
"""


@pytest.fixture
def mixed(tmp_path: Path) -> Path:
    """Two NIRCam darks and two MIRI darks, a day apart, in one directory."""
    raw = tmp_path / "raw"
    for i, mjd in enumerate((60000.0, 60000.5)):
        write_exposure(raw / f"jw0000100{i}001_01101_00001_nrca1_uncal.fits", mjd=mjd)
        write_exposure(raw / f"jw0000200{i}001_01101_00001_mirimage_uncal.fits",
                       instrument="MIRI", mjd=mjd)
    return tmp_path


def write_config(project: Path, *, select: str = "", top: str = "") -> Path:
    path = project / "refsmith.yaml"
    path.write_text(top + RECIPES % {"select": select})
    return path


def left_out(plan, recipe: str) -> dict[str, str]:
    return {Path(x.path).name: x.reason for x in plan.leftovers if x.recipe == recipe}


def grouped(plan, recipe: str) -> set[str]:
    return {Path(m.path).name for g in plan.groups if g.recipe == recipe for m in g.members}


NIRCAM = {"jw00001000001_01101_00001_nrca1_uncal.fits",
          "jw00001001001_01101_00001_nrca1_uncal.fits"}
MIRI = {"jw00002000001_01101_00001_mirimage_uncal.fits",
        "jw00002001001_01101_00001_mirimage_uncal.fits"}


def test_an_instrument_without_a_required_step_is_a_leftover_not_an_error(mixed, capsys):
    config = write_config(mixed)
    assert main(["plan", str(config)]) == 0  # was: exit 2, "step 'superbias' does not exist"
    plan = build_plan(load_config(config))
    assert grouped(plan, "superbias") == NIRCAM
    reasons = left_out(plan, "superbias")
    assert set(reasons) == MIRI
    for reason in reasons.values():
        assert "step 'superbias' does not exist for MIRI" in reason
        assert "recipe 'superbias'" in reason
    # the other recipe plans both instruments, each with its own steps
    assert grouped(plan, "readnoise") == NIRCAM | MIRI
    miri_jobs = [j for j in plan.calibration.calibration_jobs if j.instrument == "MIRI"]
    assert miri_jobs and all(j.recipes == ("readnoise",) for j in miri_jobs)
    for job in miri_jobs:  # MIRI's dq_init- is not NIRCam's
        assert job.steps_to_run == ("group_scale", "dq_init")
    stats = plan.calibration.stats["superbias"]
    assert stats["excluded_by_start_state"] == 2


def test_select_applies_before_the_step_check(mixed):
    config = write_config(mixed, select=", select: {INSTRUME: [NIRCAM]}")
    plan = build_plan(load_config(config))
    assert grouped(plan, "superbias") == NIRCAM
    reasons = left_out(plan, "superbias")
    assert set(reasons) == MIRI
    assert set(reasons.values()) == {"INSTRUME=MIRI not in select [NIRCAM]"}
    assert not any(key[0] == "superbias" and Path(key[1]).name in MIRI
                   for key in plan.calibration.start_choices)


def test_top_level_instrument_keeps_only_its_exposures(mixed, capsys):
    config = write_config(mixed, top="instrument: nircam\n")
    assert main(["plan", str(config), "--format", "json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    for recipe in ("superbias", "readnoise"):
        members = {Path(m["path"]).name for g in plan["groups"] if g["recipe"] == recipe
                   for m in g["members"]}
        assert members == NIRCAM
        reasons = {Path(x["path"]).name: x["reason"] for x in plan["leftovers"]
                   if x["recipe"] == recipe}
        assert reasons == dict.fromkeys(MIRI, "INSTRUME=MIRI not in select [NIRCAM]")
    assert not [j for j in plan["calibration_jobs"] if j["instrument"] == "MIRI"]
    assert main(["explain", str(config), sorted(MIRI)[0]]) == 0
    assert "left out: INSTRUME=MIRI not in select [NIRCAM]" in capsys.readouterr().out


def test_top_level_instrument_and_a_recipe_select_that_excludes_it_disagree():
    text = RECIPES % {"select": ", select: {INSTRUME: [MIRI]}"} + "instrument: nircam\n"
    with pytest.raises(ConfigError, match=r"recipes\.superbias\.select\.INSTRUME") as error:
        parse_config(text)
    assert "the config's instrument is NIRCAM" in str(error.value)


def test_top_level_instrument_is_every_recipes_select():
    config = parse_config("instrument: miri\nrecipes:\n  r: {imtypes: DD, steps: dq_init-, "
                          "select: {INSTRUME: ['MIR*'], DETECTOR: [MIRIMAGE]}}\n")
    assert config.recipes["r"].select == {"INSTRUME": ["MIRI"], "DETECTOR": ["MIRIMAGE"]}


def test_a_step_the_instrument_lacks_excludes_its_exposures_with_the_reason(tmp_path):
    """choose_starts itself: `rscd` (MIRI only) on NIRCam darks; `save_steps` alike."""
    from refsmith.catalog.catalog import header_reader, scan
    from refsmith.catalog.options import CatalogOptions
    from refsmith.grouping import GroupingRule
    from refsmith.planning.specs import PlanningOptions, RecipeSpec
    from refsmith.planning.starts import choose_starts

    write_exposure(tmp_path / "raw" / "jw_a_uncal.fits")
    write_exposure(tmp_path / "raw" / "jw_b_uncal.fits", instrument="MIRI")
    exposures = scan([str(tmp_path / "raw")], CatalogOptions()).exposures
    options = PlanningOptions(store_dir=tmp_path / "store",
                              read_headers=header_reader(CatalogOptions()))

    def excluded(steps, save_steps=()):
        spec = RecipeSpec(GroupingRule(recipe="r", reftype="r", imtypes="D"), steps,
                          tuple(save_steps))
        starts = choose_starts(exposures, [spec], options)
        return {Path(x.path).name: x.reason for x in starts.excluded["r"]}

    assert excluded(["dq_init", "rscd"]) == {
        "jw_a_uncal.fits": "step 'rscd' does not exist for NIRCAM, and recipe 'r' requires it "
                           "(steps: dq_init, rscd)"}
    assert excluded("dark_current-", ["superbias"]) == {
        "jw_b_uncal.fits": "step 'superbias' does not exist for MIRI, and recipe 'r' saves it "
                           "(save_steps: superbias)"}
    with pytest.raises(ConfigError, match="recipe 'r': save_steps"):  # no step at all
        excluded("dark_current-", ["warp"])
