"""The HTML report (``refsmith.report``): content, escaping, embedding, and a browser check."""

from __future__ import annotations

import base64
import html
import io
import json
import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from refsmith.errors import RefsmithError
from refsmith.report import build_report
from refsmith.report.reffiles import robust_std
from refsmith.report.summary import duration
from refsmith.report.timeline import build_timelines

CHROMIUM = "/usr/bin/chromium"
IMG = re.compile(r'<img [^>]*src="data:image/png;base64,([A-Za-z0-9+/=]+)"')
EVIL = "<script>alert('x')</script> & \"quoted\""


def make_plan_only_run(directory: Path) -> Path:
    """Write the demo data set and config, plan it (nothing executed); return the run dir."""
    from refsmith.cli.demo import write_dataset
    from refsmith.config import load_config
    from refsmith.plan import build_plan
    from refsmith.plan_files import write_run_dir

    write_dataset(directory)  # raw files, reference files and refsmith.yaml
    paths = write_run_dir(build_plan(load_config(directory / "refsmith.yaml")))
    return Path(paths["plan.json"]).parent


def write_final_files(plan: dict) -> dict[str, dict]:
    """Write small final and individual files for three recipes of NRCA1; return facts."""
    from stdatamodels.jwst import datamodels

    rng = np.random.default_rng(7)
    facts = {}
    dq_def = np.array([(0, 1, "DO_NOT_USE", "Bad pixel"), (10, 1024, "DEAD", "Dead"),
                       (11, 2048, "HOT", "Hot")],
                      dtype=[("BIT", "<i4"), ("VALUE", "<u4"), ("NAME", "S40"),
                             ("DESCRIPTION", "S80")])
    for job in plan["combine_jobs"]:
        if "NRCA1" not in job["id"] or job["recipe"] not in ("readnoise", "bad_pixel_mask",
                                                             "dark"):
            continue
        if job["recipe"] == "readnoise":
            data = rng.normal(10.0, 2.0, (64, 64)).astype(np.float32)
            data[:3, 0] = np.nan
            model = datamodels.ReadnoiseModel(data=data)
            facts["readnoise"] = {"median": float(np.nanmedian(data)), "nan": 3}
        elif job["recipe"] == "dark":
            data = rng.normal(0.0, 0.1, (5, 64, 64)).astype(np.float32) + np.arange(5)[:, None,
                                                                                        None]
            model = datamodels.DarkModel(data=data, dq=np.zeros((64, 64), np.uint32))
            facts["dark"] = {"rate": float(np.median(np.polyfit(
                np.arange(5), data.reshape(5, -1), 1)[0])), "nan": 0,
                "means": [float(plane.mean()) for plane in data]}
        else:
            dq = np.zeros((64, 64), np.uint32)
            dq[5, :10] = 1 | 1024
            dq[9, :7] = 1 | 2048
            model = datamodels.MaskModel(dq=dq, dq_def=dq_def)
            # SUB64P sits in the detector's corner: columns and rows 0-3 are reference
            # pixels, so 6 + 3 of the 17 flagged pixels are science pixels
            model.meta.subarray.name = "SUB64P"
            model.meta.subarray.xstart = model.meta.subarray.ystart = 1
            model.meta.subarray.xsize = model.meta.subarray.ysize = 64
            facts["bad_pixel_mask"] = {"flagged": 17, "science": 9, "DEAD": 6, "HOT": 3}
        model.meta.instrument.name = "NIRCAM"
        model.meta.instrument.detector = "NRCA1"
        model.meta.reftype = job["reftype"].upper()
        Path(job["output"]).parent.mkdir(parents=True, exist_ok=True)
        model.save(job["output"])
        model.close()
        for individual in job["inputs"]:
            Path(individual).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(job["output"], individual)
        facts[job["recipe"]]["path"] = job["output"]
        facts[job["recipe"]]["inputs"] = job["inputs"]
    return facts


def write_readnoise_baseline(run_dir: Path, readnoise: dict) -> int:
    """A baseline of the final read-noise file, 10 DN higher in a 16 x 16 corner, named in
    the config's report.baselines; returns the pixels changed (NaN in both are not)."""
    from stdatamodels.jwst import datamodels

    with datamodels.open(readnoise["path"]) as model:
        data = model.data.copy()
        data[:16, :16] += 10.0
        baseline = datamodels.ReadnoiseModel(data=data)
        baseline.meta.instrument.name = "NIRCAM"
        baseline.meta.instrument.detector = "NRCA1"
        baseline.meta.reftype = "READNOISE"
    target = run_dir.parents[1] / "baselines" / "readnoise_base.fits"
    target.parent.mkdir()
    baseline.save(target)
    config = run_dir.parents[1] / "refsmith.yaml"
    text = config.read_text()
    assert "readnoise: 'refs/*/*_readnoise.fits'" in text
    config.write_text(text.replace("readnoise: 'refs/*/*_readnoise.fits'",
                                   "readnoise: baselines/readnoise_base.fits"))
    return int(np.isfinite(data[:16, :16]).sum())


def fill_store(run_dir: Path, plan: dict) -> dict:
    """A job store as a run leaves it: done, cached, one failure with a log, one blocked."""
    from refsmith.execute.store import JobStore

    logs = run_dir / "logs"
    logs.mkdir(exist_ok=True)
    jobs = [(j["id"], kind, j.get("depends_on", []), str(logs / f"{j['id']}.log"))
            for kind, key in (("calibration", "calibration_jobs"), ("reffile", "reffile_jobs"),
                              ("combine", "combine_jobs")) for j in plan[key]]
    failed = plan["reffile_jobs"][2]["id"]
    blocked = next(j["id"] for j in plan["combine_jobs"] if failed in j["depends_on"])
    lines = [f"line {i} of the log" for i in range(100)] + ["Traceback: " + EVIL]
    (logs / f"{failed}.log").write_text("\n".join(lines) + "\n")
    with JobStore(run_dir / "store.sqlite") as store:
        store.sync_plan(jobs)
        for number, (job_id, *_rest) in enumerate(jobs):
            if job_id == blocked:
                store.set_state(job_id, "blocked", error=f"depends on {failed}, which failed")
            elif job_id == failed:
                store.start_attempt(job_id, "worker-1")
                store.finish_attempt(job_id, "failed", error="ValueError: " + EVIL, seconds=3.5)
            elif number % 5 == 0:
                store.set_state(job_id, "cached")
            else:
                store.start_attempt(job_id, f"worker-{number % 2}")
                store.finish_attempt(job_id, "done", seconds=0.5 + number)
        store.set_meta("last_run", {"seconds": 125.0, "ended": time.time()})
        counts = store.counts()
    return {"failed": failed, "blocked": blocked, "counts": counts}


@pytest.fixture(scope="module")
def plan_only(tmp_path_factory) -> Path:
    run_dir = make_plan_only_run(tmp_path_factory.mktemp("planonly"))
    build_report(run_dir)
    return run_dir


@pytest.fixture(scope="module")
def ran(tmp_path_factory) -> dict:
    run_dir = make_plan_only_run(tmp_path_factory.mktemp("ran"))
    plan = json.loads((run_dir / "plan.json").read_text())
    plan["leftovers"][0]["reason"] += " " + EVIL  # text from files must be escaped
    (run_dir / "plan.json").write_text(json.dumps(plan))
    facts = write_final_files(plan)
    facts["readnoise"]["changed"] = write_readnoise_baseline(run_dir, facts["readnoise"])
    store = fill_store(run_dir, plan)
    report = build_report(run_dir)
    return {"dir": run_dir, "plan": plan, "files": facts, "store": store,
            "html": report.read_text(encoding="utf-8"), "report": report}


def read(run_dir: Path) -> str:
    return (run_dir / "report.html").read_text(encoding="utf-8")


def card(text: str, label: str) -> int:
    match = re.search(r'<div class="n">(\d+)</div><div class="l">' + re.escape(label), text)
    assert match, f"no summary card {label!r}"
    return int(match.group(1))


def decoded_images(text: str) -> list[np.ndarray]:
    from matplotlib import image

    return [image.imread(io.BytesIO(base64.b64decode(m)), format="png")
            for m in IMG.findall(text)]


def assert_self_contained(text: str) -> None:
    assert "<script" not in text.lower()
    assert re.search(r"https?://", text) is None
    assert re.search(r"""(?:src|href)\s*=\s*["']?//""", text) is None
    assert "@import" not in text and "url(" not in text
    for src in re.findall(r'src="([^"]*)"', text):
        assert src.startswith("data:image/png;base64,")


# ---------------------------------------------------------------- plan-only run directory


def test_plan_only_report_summary_counts(plan_only):
    text = read(plan_only)
    plan = json.loads((plan_only / "plan.json").read_text())
    exposures = plan["exposures"]
    for anchor in ("summary", "timeline", "jobs", "reffiles"):
        assert f'<section id="{anchor}">' in text and f'href="#{anchor}"' in text
    assert card(text, "input files") == len(exposures) == 29
    assert card(text, "unusable") == sum(not e["usable"] for e in exposures) == 1
    assert card(text, "unclassified") == 0
    assert card(text, "usable, classified") == 28
    assert "truncated: no END card" in text
    assert "No jobs were run in this directory" in text
    n = len(plan["calibration_jobs"]), len(plan["reffile_jobs"]), len(plan["combine_jobs"])
    assert f"{n[0]} calibration, {n[1]} reference-file and {n[2]} combine jobs planned" in text


def test_plan_only_report_groups_per_recipe(plan_only):
    text = read(plan_only)
    plan = json.loads((plan_only / "plan.json").read_text())
    recipes = re.search(r'<table class="recipes">(.*?)</table>', text, re.S).group(1)
    for recipe in ("readnoise", "superbias", "dark", "gain", "bad_pixel_mask"):
        groups = sum(g["recipe"] == recipe for g in plan["groups"])
        left = sum(item["recipe"] == recipe for item in plan["leftovers"])
        row = re.search(rf"<tr><td>{recipe}</td><td>[^<]*</td><td>[^<]*</td>"
                        r"<td>(\d+)</td><td>(\d+)</td><td>(\d+)</td><td>(\d+)</td>", recipes)
        assert row, recipe
        assert int(row.group(1)) == groups and int(row.group(4)) == left
        assert int(row.group(2)) == 2  # two detectors


def test_plan_only_report_timelines_and_every_leftover_reason(plan_only):
    text = read(plan_only)
    plan = json.loads((plan_only / "plan.json").read_text())
    for partition in ("NRCA1/SUB64P/RAPID", "NRCB1/SUB64P/RAPID"):
        assert f"<h3>{partition}</h3>" in text
    images = decoded_images(text)
    assert len(images) == 2  # one timeline per partition, no reference file yet
    for image in images:
        assert image.shape[1] == 1100 and image.shape[0] > 300
        assert image[..., :3].std() > 0.05  # not blank
    assert len(plan["leftovers"]) == 6
    for leftover in plan["leftovers"]:
        assert html.escape(leftover["reason"]) in text
    assert "No final reference file" in text
    assert_self_contained(text)


def test_timeline_data_places_groups_and_numbers_leftovers(plan_only):
    plan = json.loads((plan_only / "plan.json").read_text())
    timelines, unplaced = build_timelines(plan)
    assert [t.key for t in timelines] == ["NRCA1/SUB64P/RAPID", "NRCB1/SUB64P/RAPID"]
    assert unplaced == []  # the corrupt file is no candidate of any recipe
    first = timelines[0]
    assert len(first.exposures) == 14
    rows = {r.recipe: r for r in first.rows}
    assert [len(rows[r].groups) for r in ("readnoise", "gain", "bad_pixel_mask")] == [3, 3, 1]
    assert [m.number for m in first.leftovers] == [1, 2, 3]
    assert sum(len(t.leftovers) for t in timelines) == len(plan["leftovers"])
    assert all(len(g.members) == 4 for g in rows["gain"].groups)


def test_capped_timelines_say_so(plan_only, tmp_path):
    run_dir = tmp_path / "copy"
    shutil.copytree(plan_only, run_dir)
    text = build_report(run_dir, max_timelines=1).read_text()
    assert len(IMG.findall(text)) == 1
    assert "Only the first 1 of 2 partitions are plotted" in text


def test_a_directory_without_a_plan_is_an_error(tmp_path):
    with pytest.raises(RefsmithError, match=r"no plan\.json"):
        build_report(tmp_path)


# ---------------------------------------------------------------- a run with jobs and files


def test_job_counts_wall_time_and_failures_first(ran):
    text, store = ran["html"], ran["store"]
    for state, number in store["counts"].items():
        assert card(text, state) == number
    assert store["counts"]["failed"] == 1 and store["counts"]["blocked"] == 1
    assert "wall time of the last run 2 min 05 s" in text
    failures = text.index("Failures (1)")
    assert failures < text.index("Blocked (1)") < text.index("All jobs (")
    failure = text[failures:text.index("Blocked (1)")]
    assert ran["store"]["failed"] in failure
    assert "line 99 of the log" in failure and "line 10 of the log" not in failure
    assert f'href="logs/{ran["store"]["failed"]}.log"' in failure
    assert f"depends on {ran['store']['failed']}, which failed" in text
    listing = text[text.index("All jobs ("):text.index('<section id="reffiles">')]
    sections = re.findall(r'<details class="jobs (\w+)"( open)?><summary>(\w+) jobs '
                          r'<span class="state \w+">\w+</span> (\d+)</summary>(.*?)</details>',
                          listing, re.S)
    order = ["failed", "blocked", "running", "pending", "done", "cached"]
    states = [s[0] for s in sections]
    assert [order.index(s) for s in states] == sorted(order.index(s) for s in states)
    assert len(set((s[0], s[2]) for s in sections)) == len(sections)  # one per kind, state
    for state, opened, kind, number, rows in sections:
        assert bool(opened) == (state == "failed")  # failures open, the rest folded
        assert rows.count("<tr><td>") == int(number)
        assert rows.count(f'<span class="state {state}">') == int(number)
        assert rows.count(f"</td><td>{kind}</td>") == int(number)
    assert sum(int(s[3]) for s in sections) == sum(store["counts"].values())
    by_kind = {kind: sum(int(s[3]) for s in sections if s[2] == kind)
               for kind in ("calibration", "reffile", "combine")}
    assert by_kind == {"calibration": len(ran["plan"]["calibration_jobs"]),
                       "reffile": len(ran["plan"]["reffile_jobs"]),
                       "combine": len(ran["plan"]["combine_jobs"])}


def test_text_from_files_is_escaped(ran):
    text = ran["html"]
    assert "<script>" not in text
    assert html.escape(EVIL) in text
    assert text.count(html.escape(EVIL)) >= 3  # leftover reason, error, log tail
    assert_self_contained(text)


def test_final_files_statistics_pictures_and_provenance(ran):
    text, files = ran["html"], ran["files"]
    assert card(text, "input files") == 29
    sections = text.split('<div class="reffile">')[1:]
    assert len(sections) == 3
    by_recipe = {re.search(r"<h3>(\w+):", s).group(1): s for s in sections}
    readnoise = by_recipe["readnoise"]
    median = re.search(r"<td>median</td><td>([^<]+)</td>", readnoise).group(1)
    assert float(median) == pytest.approx(files["readnoise"]["median"], rel=1e-3)
    assert "<td>NaN pixels</td><td>3</td>" in readnoise
    std = float(re.search(r"<td>robust std[^<]*</td><td>([^<]+)</td>", readnoise).group(1))
    assert std == pytest.approx(2.0, rel=0.1)
    mask = by_recipe["bad_pixel_mask"]
    assert "<td>flagged pixels (all)</td><td>17</td>" in mask
    assert "<td>reference pixels</td><td>496</td>" in mask  # 64 x 4 + 60 x 4
    assert "<td>flagged science pixels</td><td>9</td>" in mask
    assert f"<td>flagged science fraction</td><td>{9 / 3600:.3%}</td>" in mask
    flags = dict(re.findall(r"<tr><td>(\w+)</td><td>(\d+)</td></tr>",
                            re.search(r'<table class="flags">(.*?)</table>', mask, re.S)[1]))
    assert flags == {"DEAD": "6", "DO_NOT_USE": "9", "HOT": "3"}
    amps = re.search(r'<table class="amps">(.*?)</table>', mask, re.S).group(1)
    assert "<th>flagged science pixels</th>" in amps  # a subarray: one output
    assert f"<tr><td>all</td><td>0-63</td><td>9</td><td>{9 / 3600:.3%}</td></tr>" in amps
    dark = by_recipe["dark"]
    assert "mean rate (DN/group)" in dark and "<td>groups</td><td>5</td>" in dark
    rate = float(re.search(r"<td>median</td><td>([^<]+)</td>", dark).group(1))
    assert rate == pytest.approx(files["dark"]["rate"], abs=0.02)
    first, last = re.search(r"<td>mean signal, first / last group</td><td>([^<]+) / "
                            r"([^<]+)</td>", dark).groups()
    assert float(first) == pytest.approx(files["dark"]["means"][0], abs=1e-3)
    assert float(last) == pytest.approx(files["dark"]["means"][-1], abs=1e-3)
    for recipe, section in by_recipe.items():
        # baselines: the mask's matches the synthetic reference (SUB64P), the read noise
        # has its own; their cards have a comparison picture too
        assert len(IMG.findall(section)) == (1 if recipe == "dark" else 2), recipe
        assert "<td>DETECTOR</td><td>NRCA1</td>" in section
        reftype = next(j["reftype"] for j in ran["plan"]["combine_jobs"] if j["recipe"] == recipe)
        assert f"<td>REFTYPE</td><td>{reftype.upper()}</td>" in section
        for individual in files[recipe]["inputs"]:
            assert Path(individual).name in section
        job = next(j for j in ran["plan"]["reffile_jobs"] if j["output"]
                   == files[recipe]["inputs"][0])
        for item in job["inputs"]:
            assert Path(item["exposure"]).name in section
    for image in decoded_images(text):
        assert image[..., :3].std() > 0.05
    assert len(IMG.findall(text)) == 2 + 3 + 2 + 3  # timelines, cards, comparisons, trends


def test_verdict_per_final_file_in_the_summary(ran):
    text = ran["html"]
    summary = text[text.index('<section id="summary">'):text.index('<section id="timeline">')]
    verdicts = re.search(r'<table class="verdicts">(.*?)</table>', summary, re.S).group(1)
    rows = {re.search(r">([^<]+\.fits)</a>", row).group(1): row
            for row in verdicts.split("<tr>")[1:] if "</a>" in row}
    assert len(rows) == 3
    readnoise = rows[Path(ran["files"]["readnoise"]["path"]).name]
    assert "readnoise_base.fits</a> <span class=\"note\">(config)</span>" in readnoise
    assert '<span class="state blocked">changed</span>' in readnoise
    changed = ran["files"]["readnoise"]["changed"]
    assert f"{changed / 4096:.2%} of pixels changed by &gt; 5 sigma" in readnoise
    assert "median difference -10" not in readnoise  # most pixels did not change
    mask = rows[Path(ran["files"]["bad_pixel_mask"]["path"]).name]
    assert "synth_nrca1_sub64p_mask.fits</a>" in mask
    dark = rows[Path(ran["files"]["dark"]["path"]).name]
    assert "no baseline" in dark  # the synthetic dark is SUB64P; this one has no SUBARRAY
    assert "CRDS not asked: the run was off-line" in dark
    assert "no earlier run directory holds this final file" in dark


def test_leftovers_grouped_by_recipe_and_reason(plan_only):
    text = read(plan_only)
    plan = json.loads((plan_only / "plan.json").read_text())
    groups = re.findall(r'<details class="leftovers"( open)?><summary>(\w+): (\d+) left out, '
                        r"([^<]+)</summary>(.*?)</details>", text, re.S)
    assert sum(int(g[2]) for g in groups) == len(plan["leftovers"]) == 6
    for opened, recipe, number, reason, rows in groups:
        assert rows.count("<tr><td>") == int(number)
        assert rows.count(f"<td>{recipe}</td>") == int(number)
        assert bool(opened) == (int(number) <= 10)
        assert rows.count(f'<span class="reason">{reason}') == int(number)
    expected = Counter((item["recipe"], item["reason"].split(" (", 1)[0])
                       for item in plan["leftovers"])
    found = Counter()
    for group in groups:
        found[(group[1], html.unescape(group[3]))] += int(group[2])
    assert found == expected


def test_helpers():
    assert duration(0.42) == "0.4 s"
    assert duration(125) == "2 min 05 s"
    assert duration(7500) == "2 h 05 min"
    assert duration(None) == ""
    values = np.random.default_rng(1).normal(5, 3, 20000)
    values[:100] = np.nan
    assert robust_std(values) == pytest.approx(3.0, rel=0.05)


def test_thousands_of_exposures_stay_fast(tmp_path):
    rng = np.random.default_rng(3)
    exposures, groups, leftovers = [], [], []
    for d in range(3):
        part = {"DETECTOR": f"NRC{d}", "SUBARRAY": "FULL", "READPATT": "RAPID"}
        times = np.sort(60000 + rng.uniform(0, 300, 1800))
        paths = [f"/data/nrc{d}_{i:05d}_uncal.fits" for i in range(len(times))]
        exposures += [{"path": p, "usable": True, "reason": "", "imtype": "dark",
                       "partition": part, "mjd": float(t)}
                      for p, t in zip(paths, times, strict=True)]
        for i in range(0, len(paths) - 1, 3):
            groups.append({"id": f"readnoise-NRC{d}-{i:05d}", "recipe": "readnoise",
                           "imtypes": "DD", "partition": part, "mjd_span": [0, 0],
                           "members": [{"role": "D1", "path": paths[i]},
                                       {"role": "D2", "path": paths[i + 1]}]})
            leftovers.append({"recipe": "readnoise", "path": paths[i + 2],
                              "reason": "next dark too far"})
    (tmp_path / "plan.json").write_text(json.dumps(
        {"exposures": exposures, "groups": groups, "leftovers": leftovers}))
    started = time.perf_counter()
    text = build_report(tmp_path).read_text()
    assert time.perf_counter() - started < 60
    assert card(text, "input files") == 5400
    assert len(IMG.findall(text)) == 3
    assert text.count("first 500 of 600 leftovers") == 3
    assert text.count('<span class="reason">next dark too far</span>') == 3 * 500


# ---------------------------------------------------------------- headless Chromium


@pytest.mark.slow
@pytest.mark.skipif(not Path(CHROMIUM).is_file(),
                    reason=f"Chromium is not installed ({CHROMIUM}); apt-get install chromium")
def test_report_renders_in_headless_chromium(ran, tmp_path):
    report = ran["report"]
    flags = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
             "--no-first-run", "--disable-background-networking", "--disable-component-update",
             "--disable-sync", "--disable-dev-shm-usage", "--hide-scrollbars",
             "--enable-logging=stderr", "--v=0"]
    dom = subprocess.run([*flags, f"--user-data-dir={tmp_path / 'profile1'}", "--dump-dom",
                          report.as_uri()], capture_output=True, text=True, timeout=180)
    assert dom.returncode == 0, dom.stderr[-2000:]
    for marker in ("ERROR:CONSOLE", "Uncaught", "Failed to load resource"):
        assert marker not in dom.stderr, dom.stderr[-2000:]
    assert '<section id="jobs">' in dom.stdout
    assert len(IMG.findall(dom.stdout)) == len(IMG.findall(ran["html"])) == 10
    # one tall screenshot: the top as a reader first sees it, the comparisons further down
    shot = tmp_path / "report.png"
    run = subprocess.run([*flags, f"--user-data-dir={tmp_path / 'profile2'}",
                          f"--screenshot={shot}", "--window-size=1280,12000",
                          report.as_uri()], capture_output=True, text=True, timeout=180)
    assert run.returncode == 0 and shot.is_file(), run.stderr[-2000:]
    from matplotlib import image

    whole = image.imread(shot)[..., :3]
    assert whole.shape[:2] == (12000, 1280)
    pixels = whole[:2000]
    assert pixels.std() > 0.05  # not a blank page
    # the timeline plot is decoded and drawn: its group colours (tab:blue) are on screen
    blue = np.abs(pixels - np.array([31, 119, 180]) / 255).max(axis=-1) < 0.06
    assert blue.sum() > 300
    # the comparison views: the read noise's difference image (its -10 DN corner at the
    # deep-blue end of RdBu_r) and the mask's changed pixels (magenta)
    assert '<div class="comparison">' in dom.stdout
    deep_blue = np.abs(whole - np.array([5, 48, 97]) / 255).max(axis=-1) < 0.06
    red = np.abs(whole - np.array([230, 0, 126]) / 255).max(axis=-1) < 0.06
    assert deep_blue[2000:].sum() > 300, "no difference image on screen"
    assert not red[:2000].any()
    assert red[2000:].sum() > 20, "no changed mask pixels on screen"


def test_unreadable_files_are_reported_not_fatal(plan_only, tmp_path):
    run_dir = tmp_path / "copy"
    shutil.copytree(plan_only, run_dir)
    (run_dir / "final" / "readnoise").mkdir(parents=True)
    (run_dir / "final" / "readnoise" / "broken.fits").write_bytes(b"not a FITS file")
    text = build_report(run_dir).read_text()
    section = text[text.index('<div class="reffile">'):]
    assert "broken.fits" in section and "cannot be read" in section
    (run_dir / "store.sqlite").write_bytes(b"this is no database" * 100)
    with pytest.raises(RefsmithError, match="job store cannot be read"):
        build_report(run_dir)


def test_importing_the_report_does_not_import_matplotlib():
    code = ("import sys, refsmith.report; "
            "sys.exit(any(m.startswith('matplotlib') for m in sys.modules))")
    assert subprocess.run([sys.executable, "-c", code], timeout=120).returncode == 0
