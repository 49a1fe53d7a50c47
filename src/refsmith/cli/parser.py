"""The ``refsmith`` command line's arguments: one sub-command each, with an example.

:mod:`refsmith.cli.commands` runs the command the parsed arguments name.
"""

from __future__ import annotations

import argparse

from refsmith import __version__

EXAMPLES = {
    "init": "refsmith init refsmith.yaml",
    "scan": "refsmith scan raw/ 'more/*_uncal.fits' @extra_files.txt --format json",
    "steps": "refsmith steps nircam",
    "plan": "refsmith plan refsmith.yaml raw/ --show-commands",
    "explain": "refsmith explain refsmith.yaml raw/jw01234001001_01101_00001_nrca1_uncal.fits",
    "demo": "refsmith demo refsmith_demo",
    "run": "refsmith run refsmith.yaml raw/ --workers 4 --offline",
    "status": "refsmith status refsmith_out/refsmith --format json",
    "report": "refsmith report refsmith_out/refsmith",
    "plugins": "refsmith plugins --format json",
}


def build_parser() -> argparse.ArgumentParser:
    """The ``refsmith`` parser; ``args.command`` names the command."""
    parser = argparse.ArgumentParser(
        prog="refsmith",
        description="Organise JWST exposures and build calibration reference files.",
    )
    parser.add_argument("--version", action="version", version=f"refsmith {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, help_: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=help_, description=help_,
                              epilog=f"example:\n  {EXAMPLES[name]}",
                              formatter_class=argparse.RawDescriptionHelpFormatter)

    p = add("init", "write a commented example config")
    p.add_argument("path", nargs="?", default="refsmith.yaml")
    p.add_argument("--force", action="store_true", help="overwrite an existing file")

    p = add("scan", "catalog exposures from their primary headers")
    p.add_argument("inputs", nargs="*", help="files, directories, globs or @list files")
    p.add_argument("-c", "--config", help="config file (default: built-in defaults)")
    p.add_argument("--format", choices=("table", "json", "ecsv"), default="table")
    p.add_argument("--no-cache", action="store_true", help="do not use the header cache")

    p = add("steps", "print the calwebb_detector1 step order of an instrument")
    p.add_argument("instrument", help="nircam, niriss, nirspec, miri or fgs")
    p.add_argument("--format", choices=("table", "json"), default="table")

    p = add("plan", "catalog, group and plan calibration; executes nothing")
    p.add_argument("config", help="refsmith YAML config or legacy jwst_reffiles mkrefs.cfg")
    p.add_argument("inputs", nargs="*", help="inputs added to the config's inputs.paths")
    p.add_argument("--run-dir", help="run directory (default: <output.root>/<output.run>)")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.add_argument("--show-commands", action="store_true",
                   help="print the equivalent strun command line of every calibration job")
    p.add_argument("--no-cache", action="store_true", help="do not use the header cache")

    p = add("explain", "say what happens to one exposure, and why")
    p.add_argument("config_or_run", help="config file or run directory")
    p.add_argument("file", help="the exposure (path or base name)")

    p = add("run", "plan, then execute the jobs (resumes the run directory)")
    p.add_argument("config", help="refsmith YAML config or legacy jwst_reffiles mkrefs.cfg")
    p.add_argument("inputs", nargs="*", help="inputs added to the config's inputs.paths")
    p.add_argument("--run-dir", help="run directory (default: <output.root>/<output.run>)")
    p.add_argument("--executor", choices=("local", "dask"), help="default: execution.executor")
    p.add_argument("--workers", type=int, help="worker processes (default: cores)")
    p.add_argument("--retries", type=int, help="extra attempts of a failing job (default: 1)")
    p.add_argument("--max-memory",
                   help="memory the jobs may use together, e.g. 20GiB (execution.max_memory; "
                        "default: the memory available at the start)")
    p.add_argument("--recycle-memory",
                   help="replace a local worker whose memory passes this after a job, e.g. "
                        "4GiB (execution.recycle_memory)")
    p.add_argument("--max-jobs", type=int, help="start at most N jobs in this run")
    p.add_argument("--force-redo", choices=("calibration", "reffiles", "all"),
                   help="redo jobs whose outputs already exist")
    p.add_argument("--dry-run", action="store_true", help="plan only (= refsmith plan)")
    p.add_argument("--offline", action="store_true",
                   help="never contact CRDS (pipeline.offline); every reference from the config")
    p.add_argument("--scheduler", help="Dask scheduler address, e.g. tcp://host:8786")
    p.add_argument("--progress", choices=("auto", "bar", "lines", "none"), default="auto",
                   help="progress display (auto: a bar on a terminal, lines otherwise)")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.add_argument("--no-cache", action="store_true", help="do not use the header cache")
    p.add_argument("--param", action="append", default=[], metavar="RECIPE.KEY=VALUE",
                   help="plug-in parameter, wins over the config (repeatable; YAML value)")
    p.add_argument("--no-report", action="store_true", help="do not write report.html")

    p = add("status", "jobs of a run directory by state, failures with their logs")
    p.add_argument("run_dir", help="the run directory")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.add_argument("--tail", type=int, default=15, help="log lines shown per failure")
    p.add_argument("--recent", type=int, default=10, metavar="N",
                   help="finished jobs listed: the N last (default 10)")
    p.add_argument("--all", action="store_true", help="list every job, pending ones too")

    p = add("report", "write report.html for a run directory")
    p.add_argument("run_dir", help="the run directory")

    p = add("plugins", "list installed reference-file plug-ins and their parameters")
    p.add_argument("--format", choices=("text", "json"), default="text")

    p = add("demo", "write a synthetic data set and run the whole chain on it, off-line")
    p.add_argument("directory", nargs="?", default="refsmith_demo")
    return parser
