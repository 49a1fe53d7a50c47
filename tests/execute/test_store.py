"""The run's SQLite job store and the run-directory lock (no pipeline)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from refsmith.execute.store import STATES, JobStore, RunLock, RunLockedError


@pytest.fixture
def store(tmp_path):
    with JobStore(tmp_path / "store.sqlite") as opened:
        opened.sync_plan([("a", "calibration", [], "/logs/a.log"),
                          ("b", "reffile", ["a"], "/logs/b.log")])
        yield opened


def test_new_jobs_are_pending_and_wal_is_on(store, tmp_path):
    assert store.counts() == dict.fromkeys(STATES, 0) | {"pending": 2}
    assert store.job("b").depends_on == ("a",)
    assert store.job("b").log_path == "/logs/b.log"
    mode = store._db.execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


def test_attempts_are_recorded_and_history_kept(store):
    assert store.start_attempt("a", "w1") == 1
    assert store.job("a").state == "running"
    store.finish_attempt("a", "pending", error="boom", worker="w1")
    assert store.start_attempt("a", "w2") == 2
    store.finish_attempt("a", "done", outputs=["/x.fits"], seconds=1.5)
    record = store.job("a")
    assert (record.state, record.attempts, record.outputs, record.seconds) == (
        "done", 2, ("/x.fits",), 1.5)
    assert record.worker == "w2"
    history = store.attempts("a")
    assert [(h["attempt"], h["outcome"], h["worker"]) for h in history] == [
        (1, "failed", "w1"), (2, "ok", "w2")]
    assert history[0]["error"] == "boom"


def test_attempts_record_the_peak_memory_and_status_shows_it(store, tmp_path):
    from refsmith.running import status

    store.start_attempt("a")
    store.finish_attempt("a", "pending", error="boom", peak_rss=3_000_000)
    store.start_attempt("a")
    store.finish_attempt("a", "done", peak_rss=2_000_000)
    store.start_attempt("b")
    store.finish_attempt("b", "done")  # not measured
    assert [h["peak_rss"] for h in store.attempts("a")] == [3_000_000, 2_000_000]
    jobs = {j["id"]: j for j in status(tmp_path)["jobs"]}
    assert (jobs["a"]["peak_rss"], jobs["b"]["peak_rss"]) == (2_000_000, None)


def test_a_store_made_before_peak_rss_gets_the_column(tmp_path):
    import sqlite3

    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as db:  # the attempts table as the first version made it
        db.execute("CREATE TABLE attempts (job TEXT NOT NULL, attempt INTEGER NOT NULL, "
                   "started REAL NOT NULL, ended REAL, worker TEXT NOT NULL DEFAULT '', "
                   "outcome TEXT NOT NULL DEFAULT 'running', error TEXT NOT NULL DEFAULT '', "
                   "PRIMARY KEY (job, attempt))")
        db.execute("INSERT INTO attempts (job, attempt, started, outcome) "
                   "VALUES ('a', 1, 1.0, 'ok')")
    db.close()
    with JobStore(path, readonly=True) as reader:  # read as it is
        assert reader.attempts() == [{"job": "a", "attempt": 1, "started": 1.0, "ended": None,
                                      "worker": "", "outcome": "ok", "error": "",
                                      "peak_rss": None}]
    with JobStore(path) as opened:
        opened.sync_plan([("b", "calibration", [], "")])
        opened.start_attempt("b")
        opened.finish_attempt("b", "done", peak_rss=5)
        assert [(h["job"], h["peak_rss"]) for h in opened.attempts()] == [("a", None),
                                                                            ("b", 5)]


def test_replanning_keeps_state_and_flags_jobs_no_longer_planned(store):
    store.start_attempt("a")
    store.finish_attempt("a", "done", outputs=["/x.fits"])
    store.sync_plan([("b", "reffile", [], "/logs/b.log"), ("c", "combine", ["b"], "")])
    assert store.job("a").state == "done"
    assert not store.job("a").in_plan
    assert store.counts() == dict.fromkeys(STATES, 0) | {"pending": 2}
    store.mark_in_plan(["a"])
    assert store.counts()["done"] == 1


def test_recover_puts_running_jobs_back_to_pending(store):
    store.start_attempt("a")
    assert store.recover() == ["a"]
    record = store.job("a")
    assert record.state == "pending"
    assert "interrupted" in record.error
    assert store.attempts("a")[0]["outcome"] == "interrupted"


def test_readonly_store_reads_while_open_for_writing(store, tmp_path):
    store.start_attempt("a")
    with JobStore(tmp_path / "store.sqlite", readonly=True) as reader:
        assert reader.job("a").state == "running"


def test_unknown_state_is_refused(store):
    with pytest.raises(ValueError, match="unknown job state"):
        store.set_state("a", "finished")


def test_second_lock_refused_with_holder_pid(tmp_path):
    first = RunLock(tmp_path / "run")
    with first.held(), pytest.raises(RunLockedError,
                                     match=r"in use by another refsmith run \(pid \d+"):
        RunLock(tmp_path / "run").acquire()
    # released: the next run may take it
    with RunLock(tmp_path / "run").held():
        pass


def test_lock_held_by_another_process_names_it(tmp_path):
    code = textwrap.dedent(f"""
        import sys, time
        from refsmith.execute.store import RunLock
        lock = RunLock({str(tmp_path / 'run')!r}); lock.acquire()
        print('locked', flush=True); sys.stdin.readline()
    """)
    holder = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(RunLockedError, match=f"pid {holder.pid} "):
            RunLock(tmp_path / "run").acquire()
    finally:
        holder.kill()
        holder.wait(timeout=10)
    # the lock dies with its holder (even on SIGKILL): no stale lock
    with RunLock(tmp_path / "run").held():
        pass


def test_a_lock_where_no_directory_can_be_made_is_a_clear_error(tmp_path):
    from refsmith.errors import RefsmithError

    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    with pytest.raises(RefsmithError, match=f"cannot create {blocker / 'run'}: "):
        RunLock(blocker / "run").acquire()


def test_a_run_directory_the_lock_made_goes_with_it_when_nothing_was_written(tmp_path):
    with RunLock(tmp_path / "failed-plan").held():  # e.g. a plan that found no input
        pass
    assert not (tmp_path / "failed-plan").exists()
    with RunLock(tmp_path / "planned").held():
        (tmp_path / "planned" / "plan.json").write_text("{}")
    assert sorted(p.name for p in (tmp_path / "planned").iterdir()) == ["plan.json", "run.lock"]
    (tmp_path / "existing").mkdir()
    with RunLock(tmp_path / "existing").held():
        pass
    assert [p.name for p in (tmp_path / "existing").iterdir()] == ["run.lock"]
