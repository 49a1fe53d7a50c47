"""The ``refsmith`` command line: parse, call, print. Errors are caught once, here.

argparse is used because it is what jwst/stpipe/astropy command-line tools use and it
needs no extra dependency; rich only formats the output.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import shlex
import sys
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

from refsmith.cli.columns import table_text
from refsmith.cli.compare import cmd_compare
from refsmith.cli.parser import build_parser, json_error, wants_json
from refsmith.errors import RefsmithError

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2

# Piped output (not a terminal) is not cut to 80 columns: tables keep whole file names.
out = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 250)
err = Console(stderr=True, highlight=False, soft_wrap=True)


# ---------------------------------------------------------------- helpers


@contextmanager
def progress_bar(description: str) -> Iterator[Callable[[int, int], None] | None]:
    """A rich progress bar on a terminal; nothing when stderr is not a TTY."""
    if not err.is_terminal:
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    with Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                  TimeRemainingColumn(), console=err, transient=True) as bar:
        task = bar.add_task(description, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update


def load(path: str | None):  # -> Config
    from refsmith.config.loading import default_config, load_config

    config = load_config(path) if path else default_config(Path.cwd())
    for notice in config.notices:
        err.print(f"[yellow]notice:[/] {escape(notice)}")
    return config


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=1) + "\n")


def user_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/refsmith`` (default ``~/.cache/refsmith``): where ``refsmith scan``
    without a config keeps its header cache."""
    base = os.environ.get("XDG_CACHE_HOME", "").strip()
    return (Path(base) if base else Path.home() / ".cache") / "refsmith"


# ---------------------------------------------------------------- commands


def cmd_init(args: argparse.Namespace) -> int:
    from refsmith.config.example import write_example

    path = Path(args.path)
    write_example(path, overwrite=args.force)
    if args.format == "json":
        print_json({"config": str(path.resolve())})
    else:
        out.print(f"wrote {path} (a commented example config; edit inputs and recipes)")
    return EXIT_OK


def cmd_scan(args: argparse.Namespace) -> int:
    from refsmith.catalog.catalog import scan
    from refsmith.plan import catalog_options, input_paths, output_root

    config = load(args.config)
    inputs = input_paths(config, args.inputs)
    if not inputs:
        raise RefsmithError("nothing to scan: give files, directories, globs or @list files")
    cache = None
    if not args.no_cache:  # no config: the user's cache directory, not ./refsmith_out
        cache = (output_root(config) if args.config else user_cache_dir()) / "catalog.sqlite"
        cache.parent.mkdir(parents=True, exist_ok=True)
    with progress_bar("reading headers") as update:
        catalog = scan(inputs, catalog_options(config, cache), base_dir=config.base_dir,
                       progress=update)
    for missing in catalog.discovery.missing:
        err.print(f"[yellow]warning:[/] {escape(missing)}: no such file, or nothing matched")
    if not catalog.discovery.paths:
        raise RefsmithError("no input files found (see the warnings above; directories and "
                            "globs keep only names matching inputs.pattern)")
    if args.format == "json":
        print_json({"exposures": catalog.to_records(), "summary": catalog.summary_line()})
    elif args.format == "ecsv":
        catalog.to_table().write(sys.stdout, format="ascii.ecsv")
    else:
        rows = [(e.name, e.imtype or ("-" if e.usable else "unusable"), e.detector or "",
                 e.exp_type or "", e.readpatt or "", e.subarray or "",
                 "" if e.ngroups is None else str(e.ngroups),
                 "" if e.mjd is None else f"{e.mjd:.5f}",
                 ",".join(e.completed_steps) if e.usable else e.reason)
                for e in catalog.exposures]
        out.print(table_text(("file", "type", "detector", "exp_type", "readpatt", "subarray",
                              "ngr", "mjd", "done steps / reason"), rows, right={6, 7},
                             styles=[None if e.usable else "red" for e in catalog.exposures]))
    err.print(catalog.summary_line())
    err.print(f"header cache: {cache}" if cache else "header cache: none (--no-cache)",
              markup=False)
    return EXIT_OK


def cmd_steps(args: argparse.Namespace) -> int:
    from refsmith.detector1.steps import describe_steps

    rows = describe_steps(args.instrument)
    if args.format == "json":
        print_json(rows)
        return EXIT_OK
    out.print(table_text(("#", "step", "keyword", "reference types", "default"), [
        (str(i), row["step"], row["keyword"], ", ".join(row["reftypes"]) or "-",
         "skipped" if row["skipped_by_default"] else "runs")
        for i, row in enumerate(rows, 1)], right={0}))
    return EXIT_OK


def cmd_plan(args: argparse.Namespace) -> int:
    from refsmith.execute.store import RunLock
    from refsmith.plan import run_dir_for

    # A short-lived process that builds ~10^6 acyclic objects: the cyclic collector
    # would scan them all several times and free nothing (0.15 s of 10,000 files).
    gc.disable()
    config = load(args.config)
    if args.new_run:  # the next numbered run, for the lock and the plan alike
        args.run_dir = str(run_dir_for(config, args.run_dir, new_run=True))
    # the run directory's lock: never rewrite the plan.json of a run in progress
    with RunLock(run_dir_for(config, args.run_dir), command="plan").held():
        return _plan_locked(args, config)


def _plan_locked(args: argparse.Namespace, config: Any) -> int:
    from refsmith.plan import build_plan, summary_rows
    from refsmith.plan_files import write_run_dir
    from refsmith.util.files import disk_full_stops

    if args.show_commands and args.format == "json":
        raise RefsmithError("--show-commands writes the commands to stdout, --format json the "
                            "plan: choose one (plan.json holds every job's argv)")
    with progress_bar("reading headers") as update:
        plan = build_plan(config, args.inputs, run_dir=args.run_dir,
                          use_cache=not args.no_cache, progress=update)
    if not plan.catalog.discovery.paths:
        raise RefsmithError(
            "no input files found: check inputs.paths in the config and the inputs given on "
            "the command line (directories and globs keep only names matching inputs.pattern)"
        )
    with disk_full_stops(plan.run_dir):
        paths = write_run_dir(plan)
    for warning in plan.warnings:
        err.print(f"[yellow]warning:[/] {escape(warning)}")
    nothing = nothing_to_make(plan)
    if args.format == "json":  # exactly the plan.json just written
        sys.stdout.flush()
        sys.stdout.buffer.write(paths["plan.json"].read_bytes())
        sys.stdout.buffer.flush()
        return warn_nothing_to_make(nothing)
    for missing in plan.catalog.discovery.missing:
        err.print(f"[yellow]warning:[/] {escape(missing)}: no such file, or nothing matched")
    # with --show-commands stdout is a script (the commands only): the summary goes to stderr
    summary = err if args.show_commands else out
    summary.print(f"catalog: {plan.catalog.summary_line()}")
    print_unusable_reasons(plan.catalog.exposures, summary)
    summary.print(table_text(("recipe", "partition", "groups", "left out"), [
        (row["recipe"], row["partition"], str(row["groups"]), str(row["left_out"]))
        for row in summary_rows(plan)], right={2, 3}))
    print_calibration_summary(plan, summary)
    if args.show_commands and plan.calibration.calibration_jobs:  # shell-quoted; one print
        out.print("\n".join(shlex.join(job.argv) for job in plan.calibration.calibration_jobs),
                  markup=False)
    elif args.show_commands:
        err.print("no calibration job: no command to show")
    summary.print(f"plan written to {plan.run_dir / 'plan.json'} (nothing was executed)")
    return warn_nothing_to_make(nothing)


def nothing_to_make(plan: Any) -> str:
    """Why ``plan`` makes nothing (no recipe formed a group), or '' when it makes something."""
    if plan.groups:
        return ""
    exposures = plan.catalog.exposures
    usable = sum(1 for e in exposures if e.usable)
    if not usable:
        return (f"none of the {len(exposures)} input files is usable (the reasons: refsmith "
                "scan): nothing to make")
    return (f"no recipe formed a group from the {usable} usable input files: nothing to make "
            f"(each candidate's reason: {plan.run_dir / 'leftovers.ecsv'}; refsmith explain "
            "CONFIG FILE for one file)")


def warn_nothing_to_make(reason: str) -> int:
    """Print the warning of :func:`nothing_to_make` if any; the exit code (1 if so)."""
    if not reason:
        return EXIT_OK
    err.print(f"[yellow]warning:[/] {escape(reason)}")
    return EXIT_FAILED


def print_unusable_reasons(exposures, console: Console = out, most: int = 5) -> None:
    """The commonest reasons files are unusable, with counts (details: scan, explain)."""
    reasons = Counter(e.reason for e in exposures if not e.usable)
    for reason, count in reasons.most_common(most):
        console.print(f"  {count} unusable: {reason}", markup=False)
    if len(reasons) > most:
        console.print(f"  ... and {len(reasons) - most} other reasons (see refsmith scan)")


def print_calibration_summary(plan, console: Console = out) -> None:
    stats = dict(plan.calibration.stats)
    if not stats:
        return
    console.print(table_text(
        ("recipe", "at required state", "calibration jobs", "step runs saved"), [
            (recipe, str(row.get("already_at_required_state", 0)), str(row.get("jobs", 0)),
             str(row.get("step_executions_saved", 0)))
            for recipe, row in stats.items()], right={1, 2, 3}))
    console.print(f"{len(plan.calibration.calibration_jobs)} calibration jobs, "
                  f"{len(plan.calibration.reffile_jobs)} reference-file jobs, "
                  f"{len(plan.calibration.combine_jobs)} combine jobs")


def cmd_explain(args: argparse.Namespace) -> int:
    from refsmith.cli.explain import account

    target = Path(args.config_or_run)
    config_path, inputs = str(target), list(args.inputs)
    if target.is_dir():
        plan_json = target / "plan.json"
        if not plan_json.is_file():
            raise RefsmithError(f"{target}: no plan.json here; give a config or a run directory")
        import orjson  # 0.1 s for the 40 MB of 10,000 files; json takes 0.6 s

        recorded = orjson.loads(plan_json.read_bytes())
        config_path = recorded["config"]
        # the run's inputs: the files its plan catalogued (a legacy config names none)
        inputs = [e["path"] for e in recorded["exposures"]] + inputs
    config = load(config_path)
    if target.is_dir():  # those files only, not what inputs.paths would find today
        config = config.model_copy(update={
            "inputs": config.inputs.model_copy(update={"paths": []})})
    text, record = account(config, args.file, inputs,
                           run_dir=str(target) if target.is_dir() else None)
    if args.format == "json":
        print_json(record)
    else:
        out.print(text, markup=False)
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    from refsmith.cli.demo import run_demo

    if args.format == "json":  # the account on stderr, the results as JSON on stdout
        return run_demo(Path(args.directory), err, workers=args.workers, as_json=True)
    return run_demo(Path(args.directory), out, workers=args.workers)


def cmd_run(args: argparse.Namespace) -> int:
    from refsmith.plan import run_dir_for
    from refsmith.running import RunOptions, run

    params = parse_params(args.param)
    config = load(args.config)
    if args.new_run:  # the next numbered run, planned then run
        args.run_dir = str(run_dir_for(config, args.run_dir, new_run=True))
    options = RunOptions(
        run_dir=args.run_dir, executor=args.executor, workers=args.workers,
        retries=args.retries, max_memory=args.max_memory,
        recycle_memory=args.recycle_memory, max_jobs=args.max_jobs,
        force_redo=args.force_redo, dry_run=args.dry_run,
        offline=True if args.offline else None, scheduler=args.scheduler,
        use_cache=not args.no_cache, progress=args.progress,
        params=params, report=not args.no_report,
    )
    summary = run(config, args.inputs, options, stream=sys.stderr)
    # no job at all: no recipe formed a group; exit 1 with a warning, as refsmith plan
    nothing = "" if summary.jobs else (
        "no recipe formed a group: nothing to make (each candidate's reason: "
        f"{summary.run_dir / 'leftovers.ecsv'}; refsmith explain CONFIG FILE for one file)")
    if args.format == "json":
        code = summary.exit_code or (EXIT_FAILED if nothing else EXIT_OK)
        print_json({**summary.to_dict(), "exit_code": code})
        return summary.exit_code or warn_nothing_to_make(nothing)
    if summary.dry_run:
        out.print(f"dry run: {summary.jobs} jobs planned in {summary.run_dir / 'plan.json'} "
                  "(nothing was executed)")
        return summary.exit_code or warn_nothing_to_make(nothing)
    for product in summary.superseded:
        err.print(f"[yellow]superseded[/] {escape(product['path'])}: "
                  f"{escape(product['reason'])}")
    counts = ", ".join(f"{n} {state}" for state, n in summary.counts.items() if n)
    out.print(f"{summary.run_dir}: {counts or 'no jobs'}; {summary.executed} executions "
              f"({summary.retried} retried, {summary.lost_workers} lost workers) "
              f"in {summary.seconds:.1f} s")
    for failure in summary.failures:
        out.print(f"[red]failed[/] {escape(failure['id'])}: {escape(failure['error'])}\n"
                  f"  log: {escape(failure['log'])}")
    if summary.blocked:
        out.print(f"[yellow]blocked[/]: {len(summary.blocked)} jobs, e.g. "
                  f"{escape(summary.blocked[0]['id'])}: {escape(summary.blocked[0]['reason'])}")
    if summary.stopped_early:
        out.print(f"stopped after --max-jobs {args.max_jobs}: run again to continue")
    if summary.stopped:
        err.print(f"[red]error:[/] the run stopped: {escape(summary.stopped)}")
    if summary.cleaned:
        count = len(summary.cleaned)
        err.print(f"removed {count} temporary file{'s' if count > 1 else ''} left by "
                  f"interrupted or killed jobs, e.g. {escape(summary.cleaned[0])}")
    if summary.report:
        out.print(f"report: {summary.report}", markup=False)
    elif summary.report_error:
        err.print(f"[yellow]no report:[/] {escape(summary.report_error)}")
    out.print(f"details: refsmith status {summary.run_dir}", markup=False)
    return summary.exit_code or warn_nothing_to_make(nothing)


def parse_params(items: Sequence[str]) -> dict[str, Any]:
    """``recipe.key=value`` strings -> mapping; values are read as YAML (``3``, ``true``)."""
    import yaml

    params: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise RefsmithError(f"--param {item!r}: expected RECIPE.KEY=VALUE (or KEY=VALUE)")
        try:
            params[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError as error:
            raise RefsmithError(f"--param {item!r}: value is not valid YAML ({error})") from None
    return params


def cmd_report(args: argparse.Namespace) -> int:
    from refsmith.report.build import build_report

    path = build_report(run_dir_of(args.run_dir))
    if args.format == "json":
        print_json({"report": str(path)})
    else:
        out.print(f"report: {path}", markup=False)
    return EXIT_OK


def run_dir_of(target: str) -> Path:
    """The run directory ``target`` names: itself if a directory, else the run directory of
    the config file ``target`` (``<output.root>/<output.run>``, as ``refsmith run`` uses)."""
    from refsmith.config.loading import load_config
    from refsmith.plan import run_dir_for

    path = Path(target).expanduser()
    if path.is_dir():
        return path
    if not path.is_file():
        raise RefsmithError(f"{target}: no such run directory or config file")
    run_dir = run_dir_for(load_config(path))  # its notices were shown by plan and run
    if not run_dir.is_dir():
        raise RefsmithError(f"{target}: its run directory {run_dir} does not exist yet "
                            f"(refsmith plan or run {target} makes it)")
    return run_dir


def cmd_plugins(args: argparse.Namespace) -> int:
    from refsmith.plugins.registry import describe_plugins

    plugins = describe_plugins()
    if args.format == "json":
        print_json(plugins)
        return EXIT_OK
    for plugin in plugins:
        if plugin.get("error"):
            out.print(f"[bold]{escape(plugin['name'])}[/] ({escape(plugin['source'])}): "
                      f"cannot be loaded: {escape(plugin['error'])}")
            continue
        out.print(f"[bold]{escape(plugin['name'])}[/] ({escape(plugin['source'])}): reftype "
                  f"{plugin['reftype']}, imtypes {plugin['imtypes']}, "
                  f"steps {', '.join(plugin['steps']) or 'raw'}")
        if plugin.get("description"):
            out.print(f"  {plugin['description']}", markup=False)
        if plugin.get("needs"):
            out.print(f"  needs: {needs_text(plugin['needs'])}", markup=False)
        out.print(table_text(("parameter", "type", "default", "meaning"), [
            (param["name"], str(param["type"]), repr(param["default"]),
             param.get("description") or "")
            for param in plugin["parameters"]]))
    return EXIT_OK


def needs_text(needs: dict[str, Any]) -> str:
    """What a plug-in's ``needs`` asks of its recipes, in words."""
    parts = [*([f"groups holding {needs['all_of']}"] if needs.get("all_of") else []),
             *([f"at least one of {needs['any_of']}"] if needs.get("any_of") else []),
             *(["ramps (steps stopping before ramp_fit)"] if needs.get("ramps") else [])]
    return "; ".join(parts) or "nothing declared"


def status_rows(jobs: Sequence[dict[str, Any]], recent: int) -> list[dict[str, Any]]:
    """The jobs worth a line: every one neither pending nor finished (running, failed,
    blocked), and the ``recent`` last finished ones; in the store's order."""
    from refsmith.execute.store import FINISHED

    finished = [j for j in jobs if j["state"] in FINISHED]
    latest = {id(j) for j in sorted(finished, key=lambda j: j["ended"] or 0)[-recent:]
              } if recent > 0 else set()
    unlisted = {"pending", *FINISHED}
    return [j for j in jobs if j["state"] not in unlisted or id(j) in latest]


def cmd_status(args: argparse.Namespace) -> int:
    from refsmith.running import status

    report = status(run_dir_of(args.run_dir), tail=args.tail)
    # 1 when a job failed or is blocked by one, as for refsmith run
    code = EXIT_FAILED if any(job["state"] in ("failed", "blocked")
                              for job in report["jobs"]) else EXIT_OK
    if args.format == "json":
        print_json(report)
        return code
    counts = ", ".join(f"{n} {state}" for state, n in report["counts"].items() if n)
    out.print(f"{report['run_dir']}: {counts or 'no jobs'}")
    if report["active"]:
        out.print(f"active: {report['active']}", markup=False)
    else:
        stopped = (" (interrupted jobs: left running by a run that was stopped; the next run "
                   "starts them again)" if report["counts"].get("interrupted") else "")
        out.print(f"no run is active in this directory{stopped}", markup=False)
    jobs = report["jobs"] if args.all else status_rows(report["jobs"], args.recent)
    if jobs:
        out.print(table_text(("job", "kind", "state", "attempts", "seconds", "worker"), [
            (job["id"], job["kind"], job["state"], str(job["attempts"]),
             "" if job["seconds"] is None else f"{job['seconds']:.1f}", job["worker"])
            for job in jobs], right={3, 4},
            styles=["red" if job["state"] in ("failed", "blocked", "interrupted") else None
                    for job in jobs]))
    if len(jobs) < len(report["jobs"]):
        unlisted = Counter(j["state"] for j in report["jobs"]) - Counter(j["state"] for j in jobs)
        out.print(f"not listed: {', '.join(f'{n} {state}' for state, n in unlisted.items())} "
                  "(--all lists every job; --format json too)", markup=False)
    for product in (report["last_run"] or {}).get("superseded", []):
        if isinstance(product, dict):  # set aside before the last run, and why
            out.print(f"superseded {product['path']}: {product['reason']}", markup=False)
    for failure in report["failures"]:
        out.print(f"[red]failed[/] {escape(failure['id'])}: {escape(failure['error'])}")
        out.print(f"  log: {failure['log']}", markup=False)
        for line in failure["log_tail"]:
            out.print(f"  | {line}", markup=False)
    return code


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "init": cmd_init,
    "scan": cmd_scan,
    "steps": cmd_steps,
    "plan": cmd_plan,
    "explain": cmd_explain,
    "run": cmd_run,
    "status": cmd_status,
    "report": cmd_report,
    "plugins": cmd_plugins,
    "demo": cmd_demo,
    "compare": cmd_compare,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``refsmith`` console script; returns the exit code.

    Under ``--format json`` an error (a usage error too) is one JSON object on stderr,
    ``{"error": "...", "exit_code": n}``; otherwise a line ``error: ...``.
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    as_json = wants_json(argv)
    args = build_parser(json_errors=as_json).parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except RefsmithError as error:
        code = getattr(error, "exit_code", EXIT_USAGE)  # 1: the run stopped (disk full)
        if as_json:
            json_error(str(error), code)
        else:
            err.print(f"[red]error:[/] {escape(str(error))}")
        return code
    except KeyboardInterrupt:
        if as_json:
            json_error("interrupted", 130)
        else:
            err.print("interrupted")
        return 130

