"""Faults, with real processes and files: a job that never returns (timeouts), a full disk
(a small tmpfs where mounting is allowed, else skipped with the reason; a file-size limit,
RLIMIT_FSIZE, everywhere), the temporaries a killed run leaves, `plan` during a run.

Each end-to-end case checks: no traceback, the documented exit code, nothing stale or
partial left with a final name, and the next run finishing.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import resource
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from refsmith.calibrate.products import provenance_path
from refsmith.config import load_config
from refsmith.execute.dag import Node, execute_dag
from refsmith.execute.store import RESERVE_BYTES, JobStore, RunLock, StoreWriteError
from refsmith.jobs.records import ReffileInput, ReffileJob
from refsmith.running import RunOptions, run
from refsmith.synthetic.ramps import write_raw_exposure
from refsmith.util.files import host_token, stale_temporaries
from run_dataset import exposure_name, make_dataset, products, start_run, stop, wait_for

TESTS = Path(__file__).parents[1]  # the fault plug-ins are there
ENV = dict(os.environ, PYTHONPATH=os.pathsep.join(
    p for p in (str(TESTS), os.environ.get("PYTHONPATH", "")) if p))
HOLDS = "fault_plugins:Holds"


def refsmith(*args: str, cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    """``refsmith ARGS`` in a new process (the fault plug-ins importable)."""
    return subprocess.run([sys.executable, "-m", "refsmith.cli", *args], cwd=cwd, env=ENV,
                          capture_output=True, text=True, timeout=timeout)


def records(run_dir: Path) -> dict:
    with JobStore(run_dir / "store.sqlite", readonly=True) as store:
        return {r.id: r for r in store.jobs()}


def raw_darks(root: Path, count: int) -> Path:
    raw = root / "raw"
    raw.mkdir(parents=True)
    for index in range(count):
        write_raw_exposure(raw / exposure_name(index), shape=(1, 5, 64, 64),
                           mjd=60000.0 + 0.1 * index, seed=index + 1)
    return raw


def dead_pid() -> int:
    """The pid of a process that has ended (and been reaped)."""
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


# ---------------------------------------------------------------- tmpfs, full disks


@contextlib.contextmanager
def tmpfs(path: Path, size: str):
    """A tmpfs of ``size`` mounted at ``path`` (skips where mounting is not allowed)."""
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root; the RLIMIT_FSIZE tests cover disk-full "
                    "job outputs")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "refsmith-test",
                           str(path)], capture_output=True, text=True)
    if done.returncode:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip()}); the RLIMIT_FSIZE "
                    "tests cover disk-full job outputs")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


def fill(directory: Path) -> Path:
    """Fill the file system of ``directory`` to the last byte; return the ballast file."""
    ballast = directory / "ballast"
    fd = os.open(ballast, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        for size in (1 << 20, 1 << 12, 1):
            with contextlib.suppress(OSError):
                while True:
                    os.write(fd, b"\0" * size)
    finally:
        os.close(fd)
    return ballast


@contextlib.contextmanager
def file_size_limit(limit: int):
    """RLIMIT_FSIZE for the processes started inside (this one gets its limit back; Python
    ignores SIGXFSZ, so a write past the limit fails with EFBIG)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))


# ---------------------------------------------------------------- timeouts


HOLD_CONFIG = """\
instrument: nircam
inputs: {{paths: [raw]}}
output: {{root: out, run: auto}}
pipeline: {{offline: true}}
execution: {{workers: 1, retries: 2}}
recipes:
  stuck:
    imtypes: D+
    reftype: superbias
    plugin: "{plugin}"
    timeout: {timeout}
    params: {{started: "{started}"}}
  stuck_combine:
    imtypes: D+
    reftype: superbias
    plugin: "{plugin}"
    timeout: {timeout}
    params: {{hold_in: combine}}
"""


@pytest.mark.slow
def test_a_plugin_that_never_returns_is_stopped_at_its_timeout(tmp_path):
    """`refsmith run` with a plug-in that holds for an hour and a 3 s recipe timeout: the
    job fails with the reason, is not retried, its worker process is killed, the combine
    job that needs it is blocked, exit 1, no traceback. Another recipe's combine job times
    out after its plug-in began writing its output: that temporary is removed at the end."""
    raw_darks(tmp_path, 2)
    started = tmp_path / "started.txt"
    config = tmp_path / "refsmith.yaml"
    config.write_text(HOLD_CONFIG.format(plugin=HOLDS, timeout=3, started=started))
    began = time.monotonic()
    done = refsmith("run", str(config), "--progress", "none", "--no-report", cwd=tmp_path)
    elapsed = time.monotonic() - began
    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    assert "Traceback" not in output and "Logging error" not in output
    assert elapsed < 300
    jobs = records(tmp_path / "out" / "refsmith")
    reffile = jobs["reffile-stuck-NRCA1-SUB64P-RAPID-001"]
    combine = jobs["combine-stuck-NRCA1-SUB64P-RAPID"]
    assert reffile.state == "failed" and reffile.attempts == 1, reffile  # retries: 2
    assert reffile.error.startswith("timed out after 3 s: the worker process ")
    assert 3 <= reffile.seconds < 60, reffile.seconds
    assert f"failed {reffile.id}: timed out after 3 s" in done.stdout
    assert combine.state == "blocked"
    assert f"depends on {reffile.id}, which failed: timed out after 3 s" in combine.error
    holder = int(started.read_text().split()[1])  # the worker process that held the job
    assert not Path(f"/proc/{holder}").exists()
    assert "timed out after 3 s" in Path(reffile.log_path).read_text()
    assert not list((tmp_path / "out" / "refsmith" / "reffiles" / "stuck").iterdir())
    # the other recipe: its individual file made, its combine timed out while writing
    assert jobs["reffile-stuck_combine-NRCA1-SUB64P-RAPID-001"].state == "done"
    late = jobs["combine-stuck_combine-NRCA1-SUB64P-RAPID"]
    assert late.state == "failed" and late.error.startswith("timed out after 3 s")
    assert "removed 1 temporary file left by interrupted or killed jobs, e.g. " in done.stderr
    assert ".plugin." in done.stderr.split("e.g. ", 1)[1]
    assert not [p for p in (tmp_path / "out").rglob(".*") if p.is_file()]


# ---------------------------------------------------------------- disk full


def superbias_job(root: Path, output_dir: Path, log_dir: Path) -> Node:
    darks = [write_raw_exposure(root / f"jw_d{i}_uncal.fits", shape=(1, 3, 64, 64),
                                subarray="SUB64P", seed=i, mjd=60100.0 + i)
             for i in (1, 2)]
    job = ReffileJob(
        id="reffile-bias-g1", recipe="bias", reftype="superbias", group="bias-g1",
        plugin="example_plugin:MedianBias",
        inputs=tuple(ReffileInput(f"D{i + 1}", str(p), str(p)) for i, p in enumerate(darks)),
        output=str(output_dir / "reffiles" / "bias" / "g1.fits"))
    return Node(job.id, "reffile", job.to_dict(), log_path=str(log_dir / f"{job.id}.log"))


def run_with_local_workers(tmp_path: Path, nodes: list[Node], **kwargs):
    from refsmith.execute.local import LocalExecutor
    from refsmith.execute.worker import WorkerSettings

    store = JobStore(tmp_path / "store.sqlite")
    store.sync_plan((n.id, n.kind, n.depends_on, n.log_path) for n in nodes)
    executor = LocalExecutor(1, WorkerSettings(eager_setup=False))
    with kwargs.pop("around", contextlib.nullcontext()):
        executor.start()
    try:
        outcome = execute_dag(nodes, store, executor, {"eager_setup": False}, retries=2,
                              poll=0.05)
    finally:
        executor.shutdown()
    return outcome, store


@pytest.mark.slow
def test_no_space_for_a_job_output_fails_it_with_the_reason_and_stops_the_run(tmp_path,
                                                                             capfd):
    """A reference-file job writing to a full tmpfs (its log too), in a real worker: failed
    with "no space left on device (<dir>)", not retried, nothing left in the output
    directory, the run stopped (a job not started stays pending), and nothing of it on the
    console (no traceback, no logging error)."""
    with tmpfs(tmp_path / "fs", "2m") as fs:
        node = superbias_job(tmp_path, fs, fs / "logs")
        later = Node("probe-later", "probe", {"seconds": 0.1})
        (fs / "reffiles" / "bias").mkdir(parents=True)
        (fs / "logs").mkdir()
        fill(fs)
        outcome, store = run_with_local_workers(tmp_path, [node, later])
        output_dir = fs / "reffiles" / "bias"
        left = sorted(p.name for p in output_dir.iterdir())
    assert outcome.states == {node.id: "failed", "probe-later": "pending"}, outcome.errors
    error = store.job(node.id).error
    assert f"no space left on device ({output_dir}" in error, error
    assert store.job(node.id).attempts == 1  # retries: 2, but retrying cannot help
    assert outcome.stopped.startswith(f"{node.id} could not write for lack of space; ")
    assert store.job("probe-later").state == "pending"  # for the next run
    assert left == []  # no partial file, no temporary
    console = capfd.readouterr()
    assert "Traceback" not in console.err + console.out
    assert "Logging error" not in console.err + console.out


@pytest.mark.slow
def test_a_file_size_limit_fails_a_job_output_with_the_reason(tmp_path):
    """RLIMIT_FSIZE (32 KiB) on the worker process (works without root and mounts): the
    superbias file (~60 KB) cannot be written; the job fails saying so, naming the
    directory, and leaves nothing behind."""
    node = superbias_job(tmp_path, tmp_path / "run", tmp_path / "logs")
    outcome, store = run_with_local_workers(tmp_path, [node],
                                            around=file_size_limit(32 * 1024))
    output_dir = tmp_path / "run" / "reffiles" / "bias"
    assert outcome.states == {node.id: "failed"}
    error = store.job(node.id).error
    assert f"file too large (the file system's or the process's file-size limit, ulimit -f) " \
           f"({output_dir}" in error, error
    assert store.job(node.id).attempts == 1
    assert list(output_dir.iterdir()) == []


def test_a_full_disk_leaves_the_job_store_consistent(tmp_path):
    """The store on a full tmpfs: a write fails with a StoreWriteError naming the store
    (not sqlite3.OperationalError), the reserve is given up, and putting the running job
    back to pending still works; the next store opened with room keeps a reserve again."""
    with tmpfs(tmp_path / "fs", "1m") as fs:
        path = fs / "run" / "store.sqlite"
        store = JobStore(path)
        assert store.reserve_path.stat().st_size == RESERVE_BYTES
        store.sync_plan((f"job-{i}", "calibration", (), "") for i in range(3))
        store.start_attempt("job-0")
        ballast = fill(fs)
        with pytest.raises(StoreWriteError) as raised:
            for index in range(10_000):  # until the WAL needs a page the disk has not
                store.set_meta(f"key-{index}", "x" * 3000)
        assert str(raised.value).startswith(f"cannot write the job store {path}: database "
                                            "or disk is full; free some space")
        assert raised.value.exit_code == 1
        assert not store.reserve_path.exists()
        assert store.recover() == ["job-0"]  # in the reserve's room
        assert store.counts()["running"] == 0
        store.close()
        ballast.unlink()
        with JobStore(path) as again:
            assert again.reserve_path.stat().st_size == RESERVE_BYTES
            assert again.job("job-0").state == "pending"


def test_the_dag_loop_stops_cleanly_when_the_store_fills_up(tmp_path):
    """The disk fills while jobs run: execute_dag raises StoreWriteError after stopping
    the executor, and no job is left running in the store."""
    from scripted_executor import DAG, ScriptedExecutor

    class FillsTheDisk(ScriptedExecutor):
        def wait(self, timeout):
            if len(self.order) >= 3 and not (fs / "ballast").exists():
                fill(fs)
            return super().wait(timeout)

    with tmpfs(tmp_path / "fs", "1m") as fs:
        store = JobStore(fs / "store.sqlite")
        store.sync_plan((n.id, n.kind, n.depends_on, "") for n in DAG)
        executor = FillsTheDisk({})
        with pytest.raises(StoreWriteError, match="database or disk is full"):
            for _ in range(50):  # each run writes more; one will not fit
                execute_dag(DAG, store, executor, {})
        assert executor.shut_down
        assert store.counts()["running"] == 0
        store.close()


DISK_CONFIG_ROOT = "output: {{root: {root}, run: auto}}"


@pytest.mark.slow
def test_a_run_on_a_full_disk_stops_cleanly_and_the_next_run_resumes(tmp_path):
    """`refsmith run` with its output root on a 1.2 MiB tmpfs (the products need ~1.6 MB):
    exit 1 with "no space left on device (<path>)" (or the store saying the disk is full),
    no traceback, no job left running, no partial product; with room again, the next run
    finishes every job."""
    config = make_dataset(tmp_path / "data", 3)
    root = tmp_path / "fs"
    with tmpfs(root, "1200k"):
        config.write_text(config.read_text().replace(
            "output: {root: out, run: auto}", DISK_CONFIG_ROOT.format(root=root)))
        first = refsmith("run", str(config), "--progress", "none", cwd=config.parent)
        output = first.stdout + first.stderr
        run_dir = root / "refsmith"
        jobs = records(run_dir)
        assert first.returncode == 1, output
        assert "Traceback" not in output and "Logging error" not in output, output
        assert ("no space left on device (" in output
                or "database or disk is full" in output), output
        assert not [r.id for r in jobs.values() if r.state == "running"]
        assert not [p for p in root.rglob("*") if p.name.startswith(".")
                    and (p.name.endswith(".part") or ".final." in p.name)]
        subprocess.run(["mount", "-o", "remount,size=32m", str(root)], check=True)
        second = refsmith("run", str(config), "--progress", "none", cwd=config.parent)
        assert second.returncode == 0, second.stdout + second.stderr
        jobs = records(run_dir)
        assert {r.state for r in jobs.values() if r.in_plan} <= {"done", "cached"}, jobs
        calibrated = list((root / "calibrated").rglob("*.fits"))
        assert len([p for p in calibrated if "_linearity_" in p.name]) == 3


# ---------------------------------------------------------------- stale temporaries


def test_stale_temporaries_are_only_refsmiths_and_only_of_dead_writers(tmp_path):
    host, dead, alive = host_token(), dead_pid(), os.getpid()
    names = {
        f".a.fits.{dead}@{host}.abcd_123.part": True,      # writer gone
        f".a.fits.provenance.json.{dead}@{host}.k2j4l5m6.tmp": True,
        f".a.fits.{alive}@{host}.abcd1234.part": False,    # writer alive
        f".a.fits.{dead}@otherhost.abcd1234.part": False,  # another host: cannot tell
        ".a.fits.abcd1234.part": False,                    # no writer's pid: shared dir
        f".b.fits.{dead}@{host}.abcd1234.part": False,     # not a target
        "a.fits.part": False, ".notes.txt": False, ".a.final.fits": False,
        ".a.final.0123abcd.fits": False,                   # scratch: run directory only
    }
    for name in names:
        (tmp_path / name).write_text("x")
    found = stale_temporaries(tmp_path, targets={"a.fits", "a.fits.provenance.json"})
    assert sorted(p.name for p in found) == sorted(n for n, stale in names.items() if stale)
    # in a directory of the run (exclusive): the writer-less ones too, any target
    found = {p.name for p in stale_temporaries(tmp_path, exclusive=True)}
    assert found == {f".a.fits.{dead}@{host}.abcd_123.part",
                     f".a.fits.provenance.json.{dead}@{host}.k2j4l5m6.tmp",
                     ".a.fits.abcd1234.part", f".b.fits.{dead}@{host}.abcd1234.part",
                     ".a.final.0123abcd.fits"}


@pytest.mark.slow
def test_kill_9_during_a_combine_leaves_temporaries_the_next_run_removes(tmp_path):
    """kill -9 of `refsmith run` while a combine job's plug-in is writing its output: its
    scratch file stays in final/; the next run removes it, and the temporaries a killed
    run leaves elsewhere (created here as it would), and nothing else; then it finishes."""
    config = make_dataset(tmp_path, 2)
    started, release = tmp_path / "started.txt", tmp_path / "release"
    config.write_text(config.read_text() + textwrap.indent(textwrap.dedent(f"""\
        held:
          imtypes: D+
          reftype: superbias
          plugin: "{HOLDS}"
          params: {{hold_in: combine, started: "{started}", release: "{release}"}}
        """), "  "))
    run_dir = tmp_path / "out" / "refsmith"
    process = start_run(config, "--workers", "2", env=ENV)
    try:
        wait_for(started.is_file, 240, "the combine job to hold", process)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        stop(process)
    holder = int(started.read_text().split()[1])
    wait_for(lambda: not Path(f"/proc/{holder}").exists(), 30, "the orphaned worker to exit")
    final_dir = run_dir / "final" / "held"
    scratch = [p for p in final_dir.iterdir() if ".plugin." in p.name]
    assert len(scratch) == 1 and scratch[0].name.startswith(".held_"), list(final_dir.iterdir())

    host, dead = host_token(), dead_pid()
    product = next(p for p in products(tmp_path).values() if "_linearity_" in p.name)
    sidecar = provenance_path(product)
    stale = [*scratch,
             final_dir / f".{scratch[0].name.split('.')[1]}.final.0123abcd.fits",
             run_dir / "reffiles" / "held" / ".held-x.plugin.89abcdef.fits",
             run_dir / f".plan.json.{dead}@{host}.q1w2e3r4.tmp",
             product.parent / f".{product.name}.{dead}@{host}.a1b2c3d4.part",
             sidecar.parent / f".{sidecar.name}.{dead}@{host}.z9y8x7w6.tmp"]
    kept = [final_dir / ".notes.txt", final_dir / "mine.part",
            product.parent / f".{product.name}.{os.getpid()}@{host}.a1b2c3d4.part",
            product.parent / f".{product.name}.{dead}@elsewhere.a1b2c3d4.part",
            tmp_path / "out" / "calibrated" / "not-of-this-plan" /
            f".x_uncal.fits.{dead}@{host}.a1b2c3d4.part",
            tmp_path / "out" / "another-run" / "final" / "held" / ".h.final.0123abcd.fits",
            run_dir / f".mine.json.{dead}@{host}.q1w2e3r4.tmp"]
    for path in [*stale[1:], *kept]:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"partial")
    release.touch()
    summary = run(load_config(config), options=RunOptions(progress="none", report=False))
    assert summary.exit_code == 0, summary.to_dict()
    # the planted ones, and any the other worker left when it died with the run (a
    # calibration product's .part, a plug-in's or the runner's scratch file, .plugin. or
    # .final.): temporaries, nothing else
    assert set(map(str, stale)) <= set(summary.cleaned)
    extra = [Path(p) for p in summary.cleaned if p not in set(map(str, stale))]
    scratch_form = re.compile(r"\..+\.(plugin|final)\.[0-9a-f]{8}\.fits")
    assert all(p.name.startswith(".") and (p.name.endswith((".part", ".tmp")) or
               scratch_form.fullmatch(p.name)) for p in extra), extra
    assert not any(p.exists() for p in stale)
    assert all(p.exists() for p in kept)
    final = run_dir / "final" / "held"
    assert [p.name for p in final.glob("*.fits")] == [scratch[0].name.split(".")[1] + ".fits"]
    assert not [p for p in final.iterdir() if ".plugin." in p.name or ".final." in p.name]


# ---------------------------------------------------------------- plan during a run


def hold_lock(run_dir: Path, command: str) -> subprocess.Popen:
    code = textwrap.dedent(f"""
        import sys
        from refsmith.execute.store import RunLock
        lock = RunLock({str(run_dir)!r}, command={command!r}); lock.acquire()
        print('locked', flush=True); sys.stdin.readline()
    """)
    holder = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "locked"
    return holder


def test_plan_refuses_a_run_directory_in_use_and_run_names_a_plan(tmp_path, capsys):
    """`refsmith plan` while a run of the same config holds the run directory: refused,
    naming the run's pid, and the running plan.json is left alone; a `refsmith run` while
    a `plan` holds it is refused naming the plan."""
    from refsmith.cli import main

    raw_darks(tmp_path, 2)
    config = tmp_path / "refsmith.yaml"
    config.write_text("inputs: {paths: [raw]}\noutput: {root: out}\n"
                      "recipes: {superbias: {imtypes: D+}}\n")
    run_dir = tmp_path / "out" / "refsmith"
    run_dir.mkdir(parents=True)
    (run_dir / "plan.json").write_text('{"the running plan": true}\n')
    holder = hold_lock(run_dir, "run")
    try:
        assert main(["plan", str(config), "--no-cache"]) == 2
    finally:
        holder.kill()
        holder.wait(timeout=10)
    error = capsys.readouterr().err
    assert f"in use by another refsmith run (pid {holder.pid} on {socket.gethostname()})" \
        in " ".join(error.split()), error
    assert json.loads((run_dir / "plan.json").read_text()) == {"the running plan": True}
    # the run gone, plan works (and releases the lock)
    assert main(["plan", str(config), "--no-cache"]) == 0
    assert "calibration_jobs" in json.loads((run_dir / "plan.json").read_text())
    holder = hold_lock(run_dir, "plan")
    try:
        assert main(["run", str(config), "--no-cache", "--dry-run"]) == 2
    finally:
        holder.kill()
        holder.wait(timeout=10)
    error = " ".join(capsys.readouterr().err.split())
    assert f"in use by another refsmith plan (pid {holder.pid} " in error, error
    with RunLock(run_dir).held():  # nothing left holding it
        pass


@pytest.mark.filterwarnings("ignore:header cache .* not used")  # full: planned without
def test_plan_on_a_full_disk_says_so_in_one_line(tmp_path, capsys):
    """`refsmith plan` with its output root on a full tmpfs: exit 1, one line naming the
    run directory and the lack of space, no traceback, no partial plan.json."""
    from refsmith.cli import main

    raw_darks(tmp_path, 2)
    with tmpfs(tmp_path / "fs", "256k") as fs:
        config = tmp_path / "refsmith.yaml"
        config.write_text(f"inputs: {{paths: [raw]}}\noutput: {{root: {fs}}}\n"
                          "recipes: {superbias: {imtypes: D+}}\n")
        fill(fs)
        code = main(["plan", str(config)])
        run_dir = fs / "refsmith"  # removed with its lock when the plan left nothing in it
        left = sorted(p.name for p in run_dir.iterdir()) if run_dir.exists() else []
    error = capsys.readouterr().err
    assert code == 1, error
    assert " ".join(error.split()).startswith(
        f"error: cannot write {fs / 'refsmith'}: no space left on device ("), error
    assert "Traceback" not in error
    assert "plan.json" not in left and not [n for n in left if n.endswith(".tmp")], left


# ------------------------------------------------------- status after a crash (item 7)


def test_status_of_a_killed_run_shows_its_running_jobs_as_interrupted(tmp_path, capsys):
    from refsmith.cli import main

    with JobStore(tmp_path / "store.sqlite") as store:  # what a kill -9 leaves
        store.sync_plan([("cal-a", "calibration", (), ""), ("cal-b", "calibration", (), "")])
        store.start_attempt("cal-a", "local-1:123")
    assert main(["status", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "1 interrupted" in out and "1 pending" in out and "running" not in out.split("\n")[0]
    assert "no run is active in this directory (interrupted jobs" in out
    assert "cal-a" in out and "interrupted" in out.split("cal-a", 1)[1].splitlines()[0]
    # while a process holds the run directory, running is running, and it is named
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom refsmith.execute.store import RunLock\n"
         f"RunLock({str(tmp_path)!r}).acquire()\nprint('locked', flush=True)\n"
         "time.sleep(60)"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        assert main(["status", str(tmp_path), "--format", "json"]) == 0
        report = json.loads(capsys.readouterr().out)
        assert report["counts"]["running"] == 1 and report["counts"].get("interrupted", 0) == 0
        assert f"pid {holder.pid} on " in report["active"]
    finally:
        holder.kill()
        holder.wait()


def test_status_of_a_corrupt_store_is_one_line(tmp_path, capsys):
    from refsmith.cli import main

    (tmp_path / "store.sqlite").write_bytes(b"not a database, " * 100)
    assert main(["status", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "store.sqlite: the job store cannot be read" in err and "Traceback" not in err


# ------------------------------------------- unwritable output root, run directory (item 6)


def chattr(flag: str, path: Path) -> bool:
    """Set or clear the immutable attribute; False where chattr cannot (not root, tmpfs)."""
    try:
        done = subprocess.run(["chattr", flag, str(path)], capture_output=True, check=False)
    except OSError:
        return False
    return done.returncode == 0


def test_a_run_directory_that_cannot_be_made_is_one_line_and_exit_2(tmp_path, capsys,
                                                                      monkeypatch):
    from refsmith.cli import main

    config = make_dataset(tmp_path, 1)
    monkeypatch.chdir(tmp_path)
    for command in ("plan", "run"):
        assert main([command, str(config), "--run-dir", "/proc/nope"]) == 2
        err = capsys.readouterr().err
        assert "cannot create /proc/nope" in err and "Traceback" not in err
        assert len(err.strip().splitlines()) == 1


def test_an_immutable_output_root_or_store_is_one_line_and_exit_2(tmp_path, capsys,
                                                                   monkeypatch):
    from refsmith.cli import main

    config = make_dataset(tmp_path, 1)
    monkeypatch.chdir(tmp_path)
    root = tmp_path / "out"
    root.mkdir()
    if not chattr("+i", root):
        pytest.skip("chattr +i is not possible here (needs root and a file system with "
                    "attributes)")
    try:
        for command in ("plan", "run"):
            assert main([command, str(config), "--offline"][: 3 if command == "run" else 2]
                        ) == 2
            err = capsys.readouterr().err
            assert f"cannot create {root / 'refsmith'}" in err and "Traceback" not in err
    finally:
        chattr("-i", root)
    store = root / "calibrated"
    store.mkdir()
    assert chattr("+i", store)
    try:
        assert main(["run", str(config), "--offline"]) == 2
        err = capsys.readouterr().err
        assert "cannot write the calibrated-products store" in err and str(store) in err
        assert "Traceback" not in err
    finally:
        chattr("-i", store)
