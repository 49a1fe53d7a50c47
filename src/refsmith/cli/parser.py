"""The ``refsmith`` command line's arguments: one sub-command each, with an example.

:mod:`refsmith.cli.commands` runs the command the parsed arguments name.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from functools import partial
from typing import NoReturn

from refsmith import __version__

EXAMPLES = {
    "init": "refsmith init refsmith.yaml",
    "scan": "refsmith scan raw/ 'more/*_uncal.fits' @extra_files.txt --format json",
    "steps": "refsmith steps nircam",
    "plan": "refsmith plan refsmith.yaml raw/ --show-commands",
    "explain": "refsmith explain refsmith.yaml raw/jw01234001001_01101_00001_nrca1_uncal.fits",
    "demo": "refsmith demo refsmith_demo",
    "run": "refsmith run refsmith.yaml raw/ --workers 4 --offline",
    "status": "refsmith status refsmith.yaml --format json",
    "report": "refsmith report refsmith_out/refsmith",
    "plugins": "refsmith plugins --format json",
    "compare": "refsmith compare final/dark/dark_NRCA1-FULL-RAPID.fits crds/jwst_nircam_dark.fits",
}


FORMATS = ("text", "json")
"""Every command's ``--format``: ``text`` for people (the default), ``json`` for scripts
(``scan`` has ``ecsv`` too)."""

FORMAT_ALIASES = {"table": "text"}
"""Old names still accepted, so that scripts do not break (scan's and steps' ``table``)."""


def add_run_target(p: argparse.ArgumentParser) -> None:
    """The arguments ``plan`` and ``run`` share: the config, extra inputs, the run directory."""
    p.add_argument("config", help="refsmith YAML config or legacy jwst_reffiles mkrefs.cfg")
    p.add_argument("inputs", nargs="*", help="inputs added to the config's inputs.paths")
    p.add_argument("--run-dir", help="run directory (default: <output.root>/<output.run>)")
    p.add_argument("--new-run", action="store_true",
                   help="numbered runs (output.run: run###, legacy runID: AUTO): start the "
                        "next run instead of the latest")


def output_format(value: str) -> str:
    """A ``--format`` value, with its old name (``table``) read as the new one."""
    text = value.strip().lower()
    return FORMAT_ALIASES.get(text, text)


def wants_json(argv: Sequence[str]) -> bool:
    """Whether ``argv`` asks for ``--format json`` (looked at before parsing, so that even
    a usage error is reported as JSON)."""
    args = list(argv)
    values = [arg.partition("=")[2] if arg.startswith("--format=") else
              args[i + 1] if arg == "--format" and i + 1 < len(args) else None
              for i, arg in enumerate(args)]
    return any(value is not None and output_format(value) == "json" for value in values)


def json_error(message: str, exit_code: int) -> None:
    """An error as one JSON object on stderr: ``{"error": message, "exit_code": n}``."""
    sys.stderr.write(json.dumps({"error": message, "exit_code": exit_code}) + "\n")


class Parser(argparse.ArgumentParser):
    """argparse's parser; with ``json_errors``, a usage error is one JSON object on stderr
    (:func:`json_error`, exit code 2) instead of the usage text."""

    def __init__(self, *args, json_errors: bool = False, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.json_errors = json_errors

    def error(self, message: str) -> NoReturn:
        if not self.json_errors:
            super().error(message)
        json_error(f"{self.prog}: {message}", 2)
        sys.exit(2)


def build_parser(json_errors: bool = False) -> argparse.ArgumentParser:
    """The ``refsmith`` parser; ``args.command`` names the command. ``json_errors``: usage
    errors as JSON on stderr (the command line asks for ``--format json``)."""
    parser = Parser(
        prog="refsmith",
        description="Organise JWST exposures and build calibration reference files.",
        json_errors=json_errors,
    )
    parser.add_argument("--version", action="version", version=f"refsmith {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                parser_class=partial(Parser, json_errors=json_errors))

    def add_format(p: argparse.ArgumentParser, *more: str) -> None:
        p.add_argument("--format", type=output_format, choices=(*FORMATS, *more),
                       default="text", help="text (default; 'table' is accepted too) or "
                       f"{', '.join(('json', *more))}; errors as JSON on stderr with json")

    def add(name: str, help_: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=help_, description=help_,
                              epilog=f"example:\n  {EXAMPLES[name]}",
                              formatter_class=argparse.RawDescriptionHelpFormatter)

    p = add("init", "write a commented example config")
    p.add_argument("path", nargs="?", default="refsmith.yaml")
    p.add_argument("--force", action="store_true", help="overwrite an existing file")
    add_format(p)

    p = add("scan", "catalog exposures from their primary headers")
    p.add_argument("inputs", nargs="*", help="files, directories, globs or @list files")
    p.add_argument("-c", "--config", help="config file (default: built-in defaults)")
    add_format(p, "ecsv")
    p.add_argument("--no-cache", action="store_true", help="do not use the header cache")

    p = add("steps", "print the calwebb_detector1 step order of an instrument")
    p.add_argument("instrument", help="nircam, niriss, nirspec, miri or fgs")
    add_format(p)

    p = add("plan", "catalog, group and plan calibration; executes nothing")
    add_run_target(p)
    add_format(p)
    p.add_argument("--show-commands", action="store_true",
                   help="print the equivalent strun command line of every calibration job")
    p.add_argument("--no-cache", action="store_true", help="do not use the header cache")

    p = add("explain", "say what happens to one exposure, and why")
    p.add_argument("config_or_run", help="config file or run directory")
    p.add_argument("file", help="the exposure (path or base name); a path that is not "
                   "among the inputs is explained as one more input")
    p.add_argument("inputs", nargs="*", help="inputs added to the config's inputs.paths "
                   "(a jwst_reffiles config's inputs come from the command line)")
    add_format(p)

    p = add("run", "plan, then execute the jobs (resumes the run directory)")
    add_run_target(p)
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
    add_format(p)
    p.add_argument("--no-cache", action="store_true", help="do not use the header cache")
    p.add_argument("--param", action="append", default=[], metavar="RECIPE.KEY=VALUE",
                   help="plug-in parameter, wins over the config (repeatable; YAML value)")
    p.add_argument("--no-report", action="store_true", help="do not write report.html")

    p = add("status", "jobs of a run directory by state, failures with their logs")
    p.add_argument("run_dir", metavar="CONFIG_OR_RUN_DIR",
                   help="a run directory, or the config whose run directory to show")
    add_format(p)
    p.add_argument("--tail", type=int, default=15, help="log lines shown per failure")
    p.add_argument("--recent", type=int, default=10, metavar="N",
                   help="finished jobs listed: the N last (default 10)")
    p.add_argument("--all", action="store_true", help="list every job, pending ones too")

    p = add("report", "write report.html for a run directory")
    p.add_argument("run_dir", metavar="CONFIG_OR_RUN_DIR",
                   help="a run directory, or the config whose run directory to report on")
    add_format(p)

    from refsmith.cli.compare import add_parser as add_compare

    add_compare(add, add_format)

    p = add("plugins", "list installed reference-file plug-ins and their parameters")
    add_format(p)

    p = add("demo", "write a synthetic data set and run the whole chain on it, off-line")
    p.add_argument("directory", nargs="?", default="refsmith_demo")
    p.add_argument("--workers", type=int,
                   help="worker processes (default: the demo config's execution.workers, 2)")
    add_format(p)
    return parser
