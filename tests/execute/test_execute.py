"""The DAG loop (with a scripted in-process executor), off-line reference checks, helpers."""

from __future__ import annotations

from pathlib import Path

import pytest

from refsmith.calibrate.products import check_offline_references, outputs_valid
from refsmith.errors import ConfigError, PlanError
from refsmith.execute.dag import Node, execute_dag
from refsmith.execute.store import JobStore
from refsmith.jobs.records import CalibrationJob, ProductOutput
from refsmith.util.memory import parse_memory
from scripted_executor import DAG, ScriptedExecutor


def run_dag(tmp_path, script, nodes=DAG, **kwargs):
    store = JobStore(tmp_path / "store.sqlite")
    store.sync_plan((n.id, n.kind, n.depends_on, "") for n in nodes)
    executor = ScriptedExecutor(script)
    outcome = execute_dag(nodes, store, executor, {}, **kwargs)
    return outcome, store, executor


def test_jobs_run_after_their_dependencies(tmp_path):
    outcome, store, executor = run_dag(tmp_path, {})
    assert set(outcome.states.values()) == {"done"}
    order = executor.order
    assert order.index("reffile-1") > max(order.index("cal-a"), order.index("cal-b"))
    assert order.index("combine-k") > max(order.index("reffile-1"), order.index("reffile-2"))
    assert store.counts()["done"] == 7


def test_a_failure_blocks_only_its_dependents(tmp_path):
    outcome, store, _ = run_dag(tmp_path, {"cal-b": ["fail", "fail"]}, retries=1)
    assert outcome.states["cal-b"] == "failed"
    assert store.job("cal-b").attempts == 2
    assert store.job("cal-b").error == "bad data"
    assert outcome.states["reffile-1"] == "blocked"
    assert outcome.states["combine-k"] == "blocked"  # transitively
    assert "depends on reffile-1" in store.job("combine-k").error
    assert "cal-b, which failed: bad data" in store.job("reffile-1").error
    for job in ("cal-a", "cal-c", "cal-z", "reffile-2"):
        assert outcome.states[job] == "done", job


def test_retry_then_success_and_lost_worker_counts_as_an_attempt(tmp_path):
    outcome, store, _ = run_dag(tmp_path, {"cal-a": ["lost", "ok"], "cal-c": ["fail", "ok"]},
                                retries=1)
    assert set(outcome.states.values()) == {"done"}
    assert store.job("cal-a").attempts == 2
    assert [a["outcome"] for a in store.attempts("cal-a")] == ["failed", "ok"]
    assert outcome.lost_workers == 1
    assert outcome.retried == 2


def test_no_retry_when_retries_is_zero_or_the_failure_is_permanent(tmp_path):
    outcome, store, _ = run_dag(tmp_path, {"cal-a": ["fail", "ok"], "cal-c": ["permanent"]},
                                retries=0)
    assert outcome.states["cal-a"] == "failed"
    outcome, store, _ = run_dag(tmp_path / "2", {"cal-c": ["permanent", "ok"]}, retries=3)
    assert outcome.states["cal-c"] == "failed"
    assert store.job("cal-c").attempts == 1


def test_finished_jobs_are_not_rerun(tmp_path):
    nodes = [Node(n.id, n.kind, n.job, n.depends_on, "",
                  "done" if n.id in ("cal-a", "cal-b") else n.state) for n in DAG]
    outcome, store, executor = run_dag(tmp_path, {}, nodes=nodes)
    assert "cal-a" not in executor.order and "cal-b" not in executor.order
    assert outcome.executed == 5
    assert store.counts()["done"] == 7


def test_max_jobs_leaves_the_rest_pending(tmp_path):
    outcome, store, executor = run_dag(tmp_path, {}, max_jobs=3)
    assert len(executor.order) == 3
    assert outcome.stopped_early
    assert store.counts()["pending"] == 4
    assert store.counts()["running"] == 0


def test_interrupt_leaves_no_job_running(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        run_dag(tmp_path, {"cal-b": ["interrupt"]})
    with JobStore(tmp_path / "store.sqlite", readonly=True) as store:
        counts = store.counts()
        assert counts["running"] == 0
        assert counts["pending"] >= 1


def test_dependency_outside_the_plan_blocks(tmp_path):
    nodes = [Node("reffile-x", "reffile", {}, ("cal-gone",))]
    outcome, store, _ = run_dag(tmp_path, {}, nodes=nodes)
    assert outcome.states["reffile-x"] == "blocked"
    assert "not in the plan" in store.job("reffile-x").error


# ---------------------------------------------------------------- off-line references


def job(steps, overrides, exposure="/raw/jw_a_uncal.fits"):
    return CalibrationJob(
        id="cal-a", exposure=exposure, instrument="NIRCAM", start_file=exposure,
        start_steps=(), steps_to_run=tuple(steps), steps_to_skip=(),
        outputs=(ProductOutput(tuple(steps), "/store/a.fits"),), overrides=overrides)


def test_missing_required_reference_is_a_plan_error_naming_type_and_step():
    overrides = {"jump": {"gain": "/g.fits"}, "ramp_fit": {"gain": "/g.fits"}}
    with pytest.raises(PlanError) as info:
        check_offline_references([job(["jump", "ramp_fit"], overrides)])
    message = str(info.value)
    assert "step jump requires reference type readnoise" in message
    assert "step ramp_fit requires reference type readnoise" in message
    assert "pipeline.references.readnoise" in message
    assert "jw_a_uncal.fits" in message


def test_optional_references_become_not_applicable():
    overrides = {"saturation": {"saturation": "/s.fits"}}
    completed = check_offline_references([job(["saturation", "refpix"], overrides)])
    assert completed[0].overrides == {
        "saturation": {"saturation": "/s.fits", "superbias": "N/A"},
        "refpix": {"refpix": "N/A", "sirskernel": "N/A"},
    }


def test_a_step_that_would_do_nothing_is_an_error_too():
    with pytest.raises(PlanError, match=r"step dq_init needs reference type mask.*'N/A'"):
        check_offline_references([job(["dq_init"], {})])


def test_parse_memory():
    assert parse_memory("4GiB") == 4 * 1024**3
    assert parse_memory("500MB") == 500 * 1000**2
    assert parse_memory("1.5 G") == 1_500_000_000
    assert parse_memory(None) is None
    with pytest.raises(ConfigError, match="max_memory"):
        parse_memory("lots")
    with pytest.raises(ConfigError, match=r"recipes\.dark\.memory must look like"):
        parse_memory("5PB", "recipes.dark.memory")


def test_outputs_valid_reads_the_s_keywords(tmp_path):
    from refsmith.synthetic.headers import write_exposure

    steps = ("group_scale", "dq_init")
    path = tmp_path / "a.fits"
    calibration = CalibrationJob(
        id="cal-a", exposure="/raw/a_uncal.fits", instrument="NIRCAM",
        start_file="/raw/a_uncal.fits", start_steps=(), steps_to_run=steps, steps_to_skip=(),
        outputs=(ProductOutput(steps, str(path)),))
    assert not outputs_valid(calibration)  # not there
    write_exposure(path, instrument="NIRCAM", detector="NRCA1", exp_type="NRC_DARK",
                   readpatt="RAPID", subarray="SUB64P", ngroups=5, nints=1, mjd=60000.0,
                   steps={"group_scale": "SKIPPED", "dq_init": "COMPLETE"})
    assert outputs_valid(calibration)  # group_scale SKIPPED: not applicable (NFRAMES 1)
    write_exposure(path, instrument="NIRCAM", detector="NRCA1", exp_type="NRC_DARK",
                   readpatt="RAPID", subarray="SUB64P", ngroups=5, nints=1, mjd=60000.0,
                   steps={"group_scale": "SKIPPED", "dq_init": "COMPLETE",
                          "saturation": "COMPLETE"})
    assert not outputs_valid(calibration)  # one step too many
    assert Path(path).is_file()


def test_progress_sees_the_workers_refilled(tmp_path):
    """Progress is reported once per turn after free workers got new jobs (so a busy pool
    shows as busy), and once at the end."""
    seen: list[tuple[int, int]] = []  # (running, finished)

    def progress(states):
        values = list(states.values())
        seen.append((values.count("running"), values.count("done")))

    nodes = [Node(f"cal-{n}", "calibration", {}) for n in range(5)]
    run_dag(tmp_path, {}, nodes=nodes, progress=progress)
    # 5 jobs on 2 slots; the scripted executor finishes one job per wait
    assert seen == [(0, 0), (2, 0), (2, 1), (2, 2), (2, 3), (1, 4), (0, 5)]


@pytest.mark.parametrize("mode", ["bar", "lines"])
def test_progress_reporter_shows_the_counts(tmp_path, mode):
    """Both progress modes, driven by a real DAG run, end showing every job finished."""
    import io

    from refsmith.execute.progress import Reporter

    stream = io.StringIO()
    nodes = [Node(f"cal-{n}", "calibration", {}) for n in range(5)]
    with Reporter(len(nodes), mode, interval=0.0, stream=stream) as reporter:
        run_dag(tmp_path, {"cal-3": ["fail"]}, nodes=nodes, progress=reporter, retries=0)
    text = stream.getvalue()
    if mode == "bar":
        assert "4 done, 1 failed, 0 running" in text and "5/5" in text
    else:
        assert text.splitlines()[-1].split("]", 1)[1].startswith(
            " 5/5 finished: 4 done, 0 cached, 1 failed, 0 blocked, 0 running")


# ---------------------------------------------------------------- memory-aware admission


class MemoryExecutor(ScriptedExecutor):
    """Two slots and a memory limit: ``fits`` as the local executor decides it; records
    the estimates running together at every submission."""

    def __init__(self, limit: int, slots: int = 2) -> None:
        super().__init__({}, slots)
        self.limit = limit
        self.memory: dict[str, int] = {}
        self.together: list[int] = []

    def fits(self, memory):
        used = sum(self.memory[j] for j in self.running)
        return not self.running or used + memory <= self.limit

    def submit(self, task):
        self.memory[task["id"]] = task["memory"]
        worker = super().submit(task)
        self.together.append(sum(self.memory[j] for j in self.running))
        return worker


def run_memory_dag(tmp_path, sizes: dict[str, int], limit: int, **kwargs):
    nodes = [Node(job_id, "calibration", {}, memory=size) for job_id, size in sizes.items()]
    store = JobStore(tmp_path / "store.sqlite")
    store.sync_plan((n.id, n.kind, n.depends_on, "") for n in nodes)
    executor = MemoryExecutor(limit)
    outcome = execute_dag(nodes, store, executor, {}, **kwargs)
    assert set(outcome.states.values()) == {"done"}
    return executor


def test_a_job_that_does_not_fit_lets_smaller_ones_start(tmp_path):
    # cal-a (6) runs; cal-b (8) does not fit beside it: cal-c (3) starts in its place
    executor = run_memory_dag(tmp_path, {"cal-a": 6, "cal-b": 8, "cal-c": 3}, limit=10)
    assert executor.order == ["cal-a", "cal-c", "cal-b"]
    assert max(executor.together) <= 10


def test_a_job_larger_than_the_limit_runs_alone(tmp_path):
    executor = run_memory_dag(tmp_path, {"cal-a": 2, "cal-b": 50, "cal-c": 2, "cal-d": 2},
                              limit=10)
    position = executor.order.index("cal-b")
    assert executor.together[position] == 50  # nothing else was running
    assert all(t <= 10 for i, t in enumerate(executor.together) if i != position)


def test_the_oldest_job_is_not_overtaken_forever(tmp_path):
    """Small jobs may overtake a big one waiting for memory only ``max_overtakes`` times;
    then the machine drains and the big one starts."""
    sizes = {"cal-a": 4, "cal-b": 9} | {f"cal-s{n:02d}": 4 for n in range(20)}
    executor = run_memory_dag(tmp_path, sizes, limit=10, max_overtakes=3)
    assert executor.order[:5] == ["cal-a", "cal-s00", "cal-s01", "cal-s02", "cal-b"]
    assert executor.together[4] == 9  # it waited for the others to finish
    assert max(executor.together) <= 10


def test_local_executor_admits_jobs_by_memory(tmp_path):
    """Real worker processes: two probes whose estimates together exceed max_memory do not
    run at the same time; a job larger than max_memory runs alone, with one warning; the
    worker's peak memory of each job is in the store."""
    from refsmith.execute.local import LocalExecutor
    from refsmith.execute.worker import WorkerSettings

    mb = 1000**2
    nodes = [
        Node("probe-a", "probe", {"seconds": 0.4, "bytes": 60 * mb}, memory=600 * mb),
        Node("probe-b", "probe", {"seconds": 0.4, "bytes": 10 * mb}, memory=600 * mb),
        Node("probe-huge", "probe", {"seconds": 0.4}, memory=5000 * mb),
        Node("probe-c", "probe", {"seconds": 0.4}, memory=100 * mb),
        Node("probe-d", "probe", {"seconds": 0.4}, memory=100 * mb),
    ]
    notices: list[str] = []
    store = JobStore(tmp_path / "store.sqlite")
    store.sync_plan((n.id, n.kind, n.depends_on, "") for n in nodes)
    executor = LocalExecutor(2, WorkerSettings(eager_setup=False), max_memory=1000 * mb,
                             notice=notices.append)
    executor.start()
    try:
        outcome = execute_dag(nodes, store, executor, {"eager_setup": False}, poll=0.05)
    finally:
        executor.shutdown()
    assert set(outcome.states.values()) == {"done"}, outcome.errors
    spans = {a["job"]: (a["started"], a["ended"]) for a in store.attempts()}

    def overlap(one: str, other: str) -> bool:
        return spans[one][0] < spans[other][1] and spans[other][0] < spans[one][1]

    assert not overlap("probe-a", "probe-b")
    assert not any(overlap("probe-huge", other) for other in spans if other != "probe-huge")
    assert overlap("probe-a", "probe-c")  # probe-c overtook probe-b, which did not fit
    assert len(notices) == 1
    assert "probe-huge" in notices[0] and "5.00 GB" in notices[0] and "1.00 GB" in notices[0]
    peaks = {a["job"]: a["peak_rss"] for a in store.attempts()}
    assert peaks["probe-a"] >= 60 * mb and peaks["probe-b"] < peaks["probe-a"]


# ---------------------------------------------------------------- timeouts


def test_local_executor_kills_a_job_past_its_timeout(tmp_path):
    """Real worker processes: a probe that sleeps 60 s with a 1 s timeout is failed with
    the reason, not retried, its worker process killed and replaced (the next jobs run on
    the new one), its dependent blocked; a job within its timeout is done."""
    import os
    import time

    from refsmith.execute.local import LocalExecutor
    from refsmith.execute.worker import WorkerSettings

    nodes = [
        Node("probe-stuck", "probe", {"seconds": 60}, log_path=str(tmp_path / "stuck.log"),
             timeout=1.0),
        Node("probe-after", "probe", {"seconds": 0.1}, ("probe-stuck",), timeout=5.0),
        Node("probe-quick", "probe", {"seconds": 0.2}, timeout=30.0),
        Node("probe-then", "probe", {"seconds": 0.1}, ("probe-quick",), timeout=30.0),
    ]
    store = JobStore(tmp_path / "store.sqlite")
    store.sync_plan((n.id, n.kind, n.depends_on, n.log_path) for n in nodes)
    executor = LocalExecutor(1, WorkerSettings(eager_setup=False))
    executor.start()
    started = time.monotonic()
    try:
        outcome = execute_dag(nodes, store, executor, {"eager_setup": False}, retries=2,
                              poll=0.05)
    finally:
        executor.shutdown()
    elapsed = time.monotonic() - started
    assert outcome.states == {"probe-stuck": "failed", "probe-after": "blocked",
                              "probe-quick": "done", "probe-then": "done"}, outcome.errors
    assert elapsed < 30, elapsed  # not the probe's 60 s
    assert outcome.timed_out == 1 and executor.timed_out == 1
    stuck = store.job("probe-stuck")
    assert stuck.error.startswith("timed out after 1 s: the worker process ")
    assert stuck.attempts == 1  # a timeout is not retried (retries=2)
    assert 1.0 <= stuck.seconds < 10, stuck.seconds
    assert "depends on probe-stuck, which failed: timed out after 1 s" in \
        store.job("probe-after").error
    assert "timed out after 1 s" in (tmp_path / "stuck.log").read_text()
    killed = int(stuck.worker.rsplit(":", 1)[1])
    assert not os.path.exists(f"/proc/{killed}")  # killed, and reaped
    # one worker: quick ran before the stuck job, then on the killed one's replacement
    assert store.job("probe-quick").worker == stuck.worker
    assert store.job("probe-then").worker.startswith("local-1:")
    assert store.job("probe-then").worker != stuck.worker


@pytest.mark.slow
def test_a_timeout_counts_from_the_start_on_the_worker(tmp_path):
    """A job that waits in the pipe while its worker sets itself up (imports jwst, seconds)
    is not timed out: a 0.2 s probe with a 1.5 s timeout, submitted at once to a new worker
    that sets itself up eagerly, is done."""
    import time

    from refsmith.execute.local import LocalExecutor
    from refsmith.execute.worker import WorkerSettings

    nodes = [Node("probe-a", "probe", {"seconds": 0.2}, timeout=1.5)]
    store = JobStore(tmp_path / "store.sqlite")
    store.sync_plan((n.id, n.kind, n.depends_on, "") for n in nodes)
    executor = LocalExecutor(1, WorkerSettings(offline=False, crds_timeout=1.0))
    executor.start()
    started = time.monotonic()
    try:
        outcome = execute_dag(nodes, store, executor, {}, poll=0.05)
    finally:
        executor.shutdown()
    assert time.monotonic() - started > 1.5  # the set-up took longer than the timeout
    assert outcome.states == {"probe-a": "done"}, outcome.errors
