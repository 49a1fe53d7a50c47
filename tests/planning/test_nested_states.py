"""States equal up to steps that do not apply share one calibration job (issue 15, item 7).

A legacy ``ssbsteps: dq_init`` recipe asks for exactly {dq_init}; ``superbias-`` runs
group_scale, dq_init, saturation, ipc, superbias. group_scale is recorded SKIPPED, which
counts as done, where NFRAMES == FRMDIVSR (or NFRAMES is a power of 2 without FRMDIVSR):
there the two states are nested and one job per exposure makes both (the smaller saved
on the way). Where group_scale applies they differ, and ``refsmith explain`` says so.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from refsmith.cli import main
from refsmith.config import load_config
from refsmith.detector1.steps import step_order
from refsmith.plan import build_plan
from refsmith.planning.calibration_jobs import merge_targets, place
from refsmith.synthetic.headers import write_exposure

NIR = step_order("NIRCAM")
SUPERBIAS = ("group_scale", "dq_init", "saturation", "ipc", "superbias")
CONFIG = """\
inputs: {paths: [raw]}
output: {root: out}
recipes:
  rdnoise: {reftype: readnoise, plugin: readnoise, imtypes: DD, steps: [dq_init]}
  bias: {reftype: superbias, plugin: superbias, imtypes: D+, steps: superbias-}
"""
LEGACY = """\
reflabels: [rdnoise_nircam, bias]
inputfiles: {dark_pattern: DARK}
output: {outrootdir: out, runID: 1}
rdnoise_nircam: {reftype: rdnoise, imtypes: DD, ssbsteps: dq_init}
bias: {reftype: superbias, imtypes: D+, ssbsteps: superbias-}
"""
# group_scale does not apply (SKIPPED counts as done) / applies
NOT_APPLICABLE = [{"NFRAMES": 1}, {"NFRAMES": 4, "FRMDIVSR": 4}]
APPLIES = {"NFRAMES": 5, "FRMDIVSR": 4}


def darks(tmp_path: Path, frames: dict, count: int = 4, config: str = CONFIG) -> Path:
    for i in range(count):
        write_exposure(tmp_path / "raw" / f"jw_{i}_DARK_uncal.fits", mjd=60000 + i / 100,
                       extra=frames)
    path = tmp_path / ("mkrefs.cfg" if config is LEGACY else "refsmith.yaml")
    path.write_text(config)
    return path


def test_place_leaves_neutral_steps_out():
    chain = SUPERBIAS
    assert place(chain, ("dq_init",)) == 0  # not a prefix
    assert place(chain, ("dq_init",), frozenset({"group_scale"})) == 2  # after group_scale
    assert place(chain, ("group_scale", "dq_init")) == 2
    assert place(chain, ("dq_init", "ipc"), frozenset({"group_scale"})) == 0  # skips saturation
    assert place(("dq_init", "saturation"), ("group_scale", "dq_init"),
                 frozenset({"group_scale"})) == 1
    chains = merge_targets(NIR, frozenset(), [frozenset({"dq_init"}), frozenset(SUPERBIAS)],
                           frozenset({"group_scale"}))
    assert chains == [(SUPERBIAS, [frozenset(SUPERBIAS), frozenset({"dq_init"})])]
    assert len(merge_targets(NIR, frozenset(), [frozenset({"dq_init"}),
                                                frozenset(SUPERBIAS)])) == 2


@pytest.mark.parametrize("frames", NOT_APPLICABLE)
@pytest.mark.parametrize("config", [CONFIG, LEGACY], ids=["yaml", "legacy"])
def test_dq_init_alone_and_superbias_share_one_job_per_exposure(tmp_path, frames, config):
    inputs = [str(tmp_path / "raw")] if config is LEGACY else []  # legacy: command line
    plan = build_plan(load_config(darks(tmp_path, frames, config=config)), inputs)
    jobs = plan.calibration.calibration_jobs
    recipes = list(load_config(tmp_path / ("mkrefs.cfg" if config is LEGACY
                                           else "refsmith.yaml")).recipes)
    assert len(jobs) == 4  # one per exposure (was 8)
    for job in jobs:
        assert job.steps_to_run == SUPERBIAS and job.recipes == tuple(recipes)
        assert [o.steps for o in job.outputs] == [("group_scale", "dq_init"), SUPERBIAS]
        assert "--steps.dq_init.save_results=True" in job.argv
    intermediate = {job.outputs[0].path for job in jobs}
    readnoise = [j for j in plan.calibration.reffile_jobs if j.recipe == recipes[0]]
    assert {i.path for j in readnoise for i in j.inputs} == intermediate
    assert all(set(j.depends_on) <= {c.id for c in jobs} for j in readnoise)
    stats = plan.calibration.stats[recipes[0]]
    assert (stats["jobs"], stats["step_executions_saved"]) == (4, 4)


def test_the_shared_products_satisfy_both_recipes_next_time(tmp_path):
    frames = NOT_APPLICABLE[0]
    config = load_config(darks(tmp_path, frames))
    for job in build_plan(config).calibration.calibration_jobs:
        for output in job.outputs:  # what the job writes: group_scale recorded SKIPPED
            steps = {s: "COMPLETE" for s in output.steps} | {"group_scale": "SKIPPED"}
            write_exposure(output.path, mjd=60000, extra=frames, steps=steps)
    again = build_plan(config)
    assert again.calibration.calibration_jobs == ()
    for recipe in ("rdnoise", "bias"):
        assert again.calibration.stats[recipe]["already_at_required_state"] == 4


def test_where_group_scale_applies_the_states_differ_and_explain_says_why(tmp_path, capsys,
                                                                          monkeypatch):
    path = darks(tmp_path, APPLIES)
    jobs = build_plan(load_config(path)).calibration.calibration_jobs
    assert sorted(j.steps_to_run for j in jobs) == [("dq_init",)] * 4 + [SUPERBIAS] * 4
    monkeypatch.chdir(tmp_path)
    assert main(["explain", str(path), "jw_0_DARK_uncal.fits"]) == 0
    out = capsys.readouterr().out
    assert ("not one job: cal-jw_0_DARK-superbias_9773fd44 (recipes bias) runs group_scale, "
            "which cal-jw_0_DARK-dq_init_902afd76 (recipes rdnoise) leaves out: the states "
            "differ by group_scale (SKIPPED would count as done, and the states be one, only "
            "where NFRAMES is a power of 2 (no FRMDIVSR) or equals FRMDIVSR; this exposure "
            "has NFRAMES=5, FRMDIVSR=4)") in out


def test_explain_lists_the_shared_job(tmp_path, capsys, monkeypatch):
    path = darks(tmp_path, NOT_APPLICABLE[0])
    monkeypatch.chdir(tmp_path)
    assert main(["explain", str(path), "jw_0_DARK_uncal.fits"]) == 0
    out = capsys.readouterr().out
    assert ("cal-jw_0_DARK-superbias_9773fd44: runs group_scale, dq_init, saturation, ipc, "
            "superbias from jw_0_DARK_uncal.fits for rdnoise, bias, saving 1 intermediate "
            "state") in out
    assert "not one job" not in out


def test_dq_init_shorthand_beside_a_list_without_group_scale(tmp_path):
    """The other way round: ``dq_init-`` (group_scale, dq_init) is on the way of
    ``[dq_init, saturation]`` (group_scale skipped by the job, recorded SKIPPED)."""
    config = CONFIG.replace("steps: [dq_init]", "steps: dq_init-").replace(
        "steps: superbias-", "steps: [dq_init, saturation]")
    jobs = build_plan(load_config(darks(tmp_path, NOT_APPLICABLE[0], config=config))
                      ).calibration.calibration_jobs
    assert len(jobs) == 4
    for job in jobs:
        assert job.steps_to_run == ("dq_init", "saturation")
        assert [o.steps for o in job.outputs] == [("dq_init",), ("dq_init", "saturation")]
