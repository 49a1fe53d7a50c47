"""The Dask executor on a real `dask scheduler` + two `dask worker` processes (127.0.0.1)."""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from refsmith.calibrate.products import outputs_valid
from refsmith.config import load_config
from refsmith.execute.store import JobStore
from refsmith.running import RunOptions, run
from run_dataset import make_dataset, plan_jobs


def _command(name: str) -> list[str]:
    return [str(Path(sys.executable).with_name("dask")), name]


@contextlib.contextmanager
def dask_cluster(directory: Path):
    """A scheduler and two single-threaded workers (with nannies) on 127.0.0.1, always
    torn down."""
    pytest.importorskip("distributed")
    scheduler_file = directory / "scheduler.json"
    env = dict(os.environ, DASK_CONFIG=str(directory / "config"),
               DASK_DISTRIBUTED__WORKER__DAEMON="False")
    logs = [(directory / f"{n}.log").open("w")
            for n in ("scheduler", "worker1", "worker2")]
    processes = [subprocess.Popen(
        [*_command("scheduler"), "--host", "127.0.0.1", "--port", "0",
         "--dashboard-address", "127.0.0.1:0", "--scheduler-file", str(scheduler_file)],
        stdout=logs[0], stderr=subprocess.STDOUT, env=env)]
    try:
        deadline = time.monotonic() + 60
        while not scheduler_file.is_file() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert scheduler_file.is_file(), "the dask scheduler did not start"
        for log in logs[1:]:
            processes.append(subprocess.Popen(
                [*_command("worker"), "--scheduler-file", str(scheduler_file),
                 "--host", "127.0.0.1", "--nthreads", "1", "--nworkers", "1",
                 "--dashboard-address", "127.0.0.1:0", "--local-directory", str(directory)],
                stdout=log, stderr=subprocess.STDOUT, env=env))
        from distributed import Client

        with Client(scheduler_file=str(scheduler_file), timeout=60) as client:
            client.wait_for_workers(2, timeout=90)
            yield {"address": client.scheduler.address, "directory": directory,
                   "client": client}
    finally:
        for process in reversed(processes):
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        for log in logs:
            log.close()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with dask_cluster(tmp_path_factory.mktemp("dask")) as running:
        yield running


@pytest.mark.slow
def test_a_real_plan_runs_on_a_dask_cluster(cluster, tmp_path):
    config_path = make_dataset(tmp_path, 3)
    summary = run(load_config(config_path),
                  options=RunOptions(executor="dask", scheduler=cluster["address"],
                                     progress="none"))
    jobs = plan_jobs(summary.run_dir)
    assert len(jobs) == 3
    assert all(outputs_valid(job) for job in jobs)
    with JobStore(summary.run_dir / "store.sqlite", readonly=True) as store:
        records = {r.id: r for r in store.jobs()}
    for job in jobs:
        record = records[job.id]
        assert record.state == "done" and record.worker.startswith("dask:"), record
        assert int(record.worker.split(":")[1]) != os.getpid()  # ran in a dask worker
    assert summary.counts["running"] == 0
    # the same DAG semantics as the local executor: reference files after their inputs
    readnoise = records["reffile-readnoise-NRCA1-SUB64P-RAPID-001"]
    assert readnoise.state == "done", readnoise.error
    assert readnoise.started >= max(records[d].ended for d in readnoise.depends_on)


def test_jobqueue_cluster_is_built_from_the_config():
    """A real HTCondorCluster (no pool here: nothing is submitted within its 10 s adapt
    interval): the job script it would submit, and the bounded adaptive scaling."""
    pytest.importorskip("dask_jobqueue")
    from refsmith.errors import ConfigError
    from refsmith.execute.dask import build_jobqueue_cluster

    options = {"kind": "htcondor", "memory": "4GiB", "disk": "4GiB", "interface": "lo",
               "python": sys.executable,
               "scheduler_options": {"dashboard_address": "127.0.0.1:0"}}
    cluster = build_jobqueue_cluster(options)
    try:
        script = cluster.job_script()
        adaptive = cluster._adaptive
        bounds = (adaptive.minimum, adaptive.maximum, adaptive.interval,
                  adaptive.wait_count, adaptive.target_duration)
        address = cluster.scheduler_address
    finally:
        cluster.close()
    assert f"{sys.executable} -m distributed.cli.dask_worker tcp://127.0.0.1:" in script
    assert address.startswith("tcp://127.0.0.1:")  # scheduler and workers on one interface
    assert "--nthreads 1 " in script and "--interface lo" in script
    assert f"--resources MEMORY={4 * 1024**3}" in script and "RequestCpus" in script
    assert bounds == (1, 32, 10, 6, 300)  # 1-32 jobs, decided every 10 s, ...
    cluster = build_jobqueue_cluster({**options, "processes": 2, "cores": 2,
                                      "adapt": {"maximum_jobs": 4, "interval": "30s"}})
    try:
        script = cluster.job_script()
        adaptive = cluster._adaptive
        bounds = (adaptive.minimum, adaptive.maximum, adaptive.interval)
    finally:
        cluster.close()
    assert f"--resources MEMORY={2 * 1024**3}" in script  # 4 GiB over 2 processes
    assert bounds == (2, 8, 30)  # workers = jobs x processes
    with pytest.raises(ConfigError, match="htcondor, slurm or pbs"):
        build_jobqueue_cluster({"kind": "lsf"})
    with pytest.raises(ConfigError, match=r"execution.cluster \(slurm\): .*bogus"):
        build_jobqueue_cluster({"kind": "slurm", "bogus": 1})
    with pytest.raises(ConfigError, match=r"execution\.cluster\.adapt must be a mapping"):
        build_jobqueue_cluster({"kind": "slurm", "adapt": 3})


def test_importing_dask_jobqueue_keeps_the_sigint_handler():
    """dask_jobqueue.runner sets SIGINT to ``sys.exit()`` on import; refsmith puts the
    handler back (a fresh interpreter: the import happens once)."""
    pytest.importorskip("dask_jobqueue")
    code = ("import signal\n"
            "from refsmith.execute.jobqueue import import_jobqueue\n"
            "import_jobqueue()\n"
            "assert signal.getsignal(signal.SIGINT) is signal.default_int_handler\n"
            "import dask_jobqueue.runner\n"
            "print(signal.getsignal(signal.SIGINT) is signal.default_int_handler)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, check=True).stdout
    assert out.strip() == "True"


@pytest.mark.slow
def test_a_worker_killed_mid_job_loses_nothing(tmp_path):
    """kill -9 of the worker process running a calibration job: the scheduler moves the
    job to the other worker and the run completes with every output valid."""
    (tmp_path / "dask").mkdir()
    with dask_cluster(tmp_path / "dask") as running:
        client = running["client"]
        config_path = make_dataset(tmp_path / "data", 4)
        outcome: dict[str, object] = {}

        def go() -> None:
            try:
                outcome["summary"] = run(load_config(config_path), options=RunOptions(
                    executor="dask", scheduler=running["address"], progress="none"))
            except BaseException as exc:  # reported below
                outcome["error"] = exc

        thread = threading.Thread(target=go)
        thread.start()
        killed = None
        lost: set[str] = set()
        deadline = time.monotonic() + 240
        while killed is None and thread.is_alive() and time.monotonic() < deadline:
            busy = [address for address, keys in client.processing().items()
                    if any(str(k).startswith("refsmith-cal-") for k in keys)]
            if busy:
                time.sleep(1.0)  # well inside the job (jwst is imported by then or soon)
                pids = client.run(os.getpid)  # worker address -> its process id
                in_flight = [str(k) for k in client.processing().get(busy[0], ())]
                if busy[0] in pids and in_flight:
                    killed = pids[busy[0]]
                    os.kill(killed, signal.SIGKILL)
                    lost = {key.split("-", 1)[1].rsplit("-", 2)[0] for key in in_flight}
            time.sleep(0.05)
        thread.join(timeout=600)
        assert not thread.is_alive(), "refsmith run did not finish"
        assert "error" not in outcome, outcome.get("error")
        assert killed is not None, "no calibration job was seen running"
        summary = outcome["summary"]
        assert summary.exit_code == 0, summary.to_dict()
        jobs = plan_jobs(summary.run_dir)
        assert len(jobs) == 4 and all(outputs_valid(job) for job in jobs)
        with JobStore(summary.run_dir / "store.sqlite", readonly=True) as store:
            records = store.jobs()
        assert all(r.state == "done" for r in records), records
        by_id = {r.id: r for r in records}
        assert lost and lost <= set(by_id), (lost, sorted(by_id))
        for job_id in lost:  # finished by the other worker
            assert by_id[job_id].worker != f"dask:{killed}", by_id[job_id]


# ---------------------------------------------------------------- memory as a resource


def probe(job_id: str, memory: int, seconds: float = 0.0) -> dict:
    return {"id": job_id, "kind": "probe", "job": {"seconds": seconds}, "settings": {},
            "log_path": "", "attempt": 1, "memory": memory}


def completions(executor, count: int, timeout: float = 60.0) -> dict:
    done: list = []
    deadline = time.monotonic() + timeout
    while len(done) < count and time.monotonic() < deadline:
        done += executor.wait(0.5)
    assert len(done) == count, done
    return {c.task_id: c for c in done}


def restrictions(client, count: int) -> list[dict]:
    """The resource restrictions of the tasks the scheduler holds (once it holds ``count``)."""

    def of_tasks(dask_scheduler) -> list[dict]:
        return [dict(ts.resource_restrictions or {}) for ts in dask_scheduler.tasks.values()]

    deadline = time.monotonic() + 10
    seen = client.run_on_scheduler(of_tasks)
    while len(seen) < count and time.monotonic() < deadline:
        time.sleep(0.05)
        seen = client.run_on_scheduler(of_tasks)
    return sorted(seen, key=lambda r: r.get("MEMORY", 0))


def test_local_cluster_workers_declare_memory_and_tasks_ask_for_theirs():
    """refsmith's LocalCluster: each worker has MEMORY = its memory limit (max_memory
    shared); a task asks for its estimate, capped at a worker's (with one warning)."""
    pytest.importorskip("distributed")
    from refsmith.execute.dask import DaskExecutor

    gib = 1024**3
    notices: list[str] = []
    executor = DaskExecutor(workers=2, max_memory=2 * gib, notice=notices.append)
    executor.start()
    try:
        workers = executor.client.scheduler_info()["workers"].values()
        assert [w["resources"] for w in workers] == [{"MEMORY": gib}] * 2
        assert [w["memory_limit"] for w in workers] == [gib] * 2
        executor.submit(probe("probe-small", 100 * 1000**2, seconds=1.0))
        executor.submit(probe("probe-big", 5 * gib, seconds=1.0))
        asked = restrictions(executor.client, 2)
        done = completions(executor, 2)
    finally:
        executor.shutdown()
    assert asked == [{"MEMORY": 100 * 1000**2}, {"MEMORY": gib}]
    assert all(c.ok for c in done.values()), done
    assert done["probe-big"].result["peak_rss"] > 0
    assert len(notices) == 1 and "probe-big" in notices[0] and "5.37 GB" in notices[0]


def test_an_external_scheduler_uses_memory_only_if_its_workers_declare_it():
    pytest.importorskip("distributed")
    from distributed import LocalCluster

    from refsmith.execute.dask import DaskExecutor

    for resources in (None, {"MEMORY": 1000}):
        notices: list[str] = []
        extra = {"resources": resources} if resources else {}
        with LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                          protocol="tcp://", host="127.0.0.1", dashboard_address=None,
                          **extra) as cluster:
            executor = DaskExecutor(scheduler=cluster.scheduler_address,
                                    notice=notices.append)
            executor.start()
            try:
                executor.submit(probe("probe-a", 600, seconds=0.5))
                asked = restrictions(executor.client, 1)
                done = completions(executor, 1)
            finally:
                executor.shutdown()
        assert done["probe-a"].ok, done
        if resources:
            assert executor.worker_memory == 1000 and not notices
            assert asked == [{"MEMORY": 600}]
        else:
            assert executor.worker_memory is None and asked == [{}]
            assert len(notices) == 1 and "declare no MEMORY" in notices[0]


# ---------------------------------------------------------------- timeouts


@pytest.mark.slow
def test_a_dask_job_past_its_timeout_is_failed_and_its_worker_restarted():
    """A probe that sleeps 120 s with a 2 s timeout on refsmith's LocalCluster (workers
    with nannies): failed as timed out, not before its start; its worker process is
    restarted (another pid), and the next job runs."""
    pytest.importorskip("distributed")
    from refsmith.execute.dask import DaskExecutor

    notices: list[str] = []
    executor = DaskExecutor(workers=1, max_memory=2 * 1024**3, notice=notices.append)
    executor.start()
    try:
        before = set(executor.client.run(os.getpid).values())
        started = time.monotonic()
        executor.submit(probe("probe-stuck", 1000, seconds=120.0) | {"timeout": 2.0})
        done = completions(executor, 1, timeout=90)
        elapsed = time.monotonic() - started
        after = set(executor.client.run(os.getpid).values())
        executor.submit(probe("probe-next", 1000, seconds=0.1) | {"timeout": 30.0})
        following = completions(executor, 1, timeout=60)
    finally:
        executor.shutdown()
    stuck = done["probe-stuck"]
    assert not stuck.ok and stuck.result["timed_out"] and stuck.result["permanent"]
    assert stuck.result["error"].startswith("timed out after 2 s: the Dask task was "
                                            "cancelled and its worker tcp://"), stuck.result
    assert "restarted" in stuck.result["error"] and not notices
    assert 2.0 <= stuck.result["seconds"] < 30 and elapsed < 60
    assert before and after and not before & after  # the worker process was replaced
    assert following["probe-next"].ok, following
    assert executor.timed_out == 1


# ---------------------------------------------------------------- queued is not running


def test_only_jobs_started_on_a_worker_count_as_running(tmp_path):
    """Three 1 s probes on one Dask worker: the scheduler queues two, which are ``queued``
    (not ``running``) and start, in the store, when the worker takes them, not when they
    were submitted."""
    pytest.importorskip("distributed")
    from refsmith.execute.dag import Node, execute_dag
    from refsmith.execute.dask import DaskExecutor

    nodes = [Node(f"probe-{n}", "probe", {"seconds": 1.0}) for n in "abc"]
    seen: list[dict] = []
    executor = DaskExecutor(workers=1, max_memory=2 * 1024**3)
    executor.start()
    with JobStore(tmp_path / "store.sqlite") as store:
        store.sync_plan((n.id, n.kind, n.depends_on, "") for n in nodes)
        try:
            outcome = execute_dag(nodes, store, executor, {}, poll=0.1,
                                  progress=lambda states: seen.append(dict(states)))
        finally:
            executor.shutdown()
        records = sorted(store.jobs(), key=lambda r: r.started)
        attempts = store.attempts()
    assert outcome.count("done") == 3, outcome
    counts = [sum(s == "running" for s in states.values()) for states in seen]
    # one worker: before, all three were running at once; a start event may arrive just
    # before the result of the task before it (seen under load), hence at most two
    assert max(counts) <= 2 and counts.count(2) <= 2, counts
    assert any("queued" in states.values() for states in seen)
    for first, second in itertools.pairwise(records):
        assert second.started >= first.ended - 0.5, records  # not at submission
    assert all(0.9 <= r.seconds < 5 for r in records), records
    assert [a["attempt"] for a in attempts] == [1, 1, 1] and all(r.worker.startswith(
        "dask:") for r in records)


# ---------------------------------------------------------------- no worker at all


def test_a_run_without_any_worker_stops_after_no_worker_timeout(tmp_path):
    """A real scheduler with no worker (as when every batch job is lost or never starts):
    the run stops with exit code 1 and one line naming the setting, its jobs pending."""
    pytest.importorskip("distributed")
    from distributed import LocalCluster

    config_path = make_dataset(tmp_path, 2)
    config_path.write_text(config_path.read_text().replace(
        "execution: {workers: 2, retries: 1}",
        "execution: {executor: dask, retries: 1, no_worker_timeout: 3s}"))
    with LocalCluster(n_workers=0, processes=False, protocol="tcp://", host="127.0.0.1",
                      dashboard_address=None) as cluster:
        started = time.monotonic()
        summary = run(load_config(config_path), options=RunOptions(
            scheduler=cluster.scheduler_address, progress="none"))
        elapsed = time.monotonic() - started
    assert summary.exit_code == 1, summary.to_dict()
    assert re.fullmatch(
        rf"no Dask worker for [3-9] s on the scheduler {cluster.scheduler_address} \(execution"
        r"\.no_worker_timeout = 3 s\): no worker connected or all were lost; check the "
        r"workers, then run again to resume", summary.stopped), summary.stopped
    assert summary.counts["pending"] == summary.jobs and summary.counts["running"] == 0
    assert elapsed < 60
