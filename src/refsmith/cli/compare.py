"""``refsmith compare NEW BASELINE``: one reference file against another.

Exit codes: 0 identical or consistent, 1 changed (as ``diff``: scripts can test it), 2 a
file cannot be read or the two cannot be compared (a mask against an image, shapes that
do not overlap).
"""

from __future__ import annotations

import argparse
import json
import sys

from refsmith.errors import RefsmithError

EXIT_SAME, EXIT_CHANGED = 0, 1


def cmd_compare(args: argparse.Namespace) -> int:
    """Compare ``args.new`` with ``args.baseline`` and print the verdict."""
    from refsmith.report.compare import compare_files

    if not args.sigma > 0:
        raise RefsmithError(f"--sigma {args.sigma}: must be > 0")
    result = compare_files(args.new, args.baseline, nsigma=args.sigma)
    if result.verdict == "incomparable":
        raise RefsmithError(f"cannot compare {args.new} with {args.baseline}: {result.line}")
    if args.format == "json":
        sys.stdout.write(json.dumps(result.to_dict(), indent=1) + "\n")
    else:
        rows = [("new", result.new), ("baseline", result.baseline),
                ("compared", f"{result.label} ({result.kind}), {result.pixels} pixels")]
        if result.kind == "mask":
            rows += [("newly flagged", str(result.newly_flagged)),
                     ("no longer flagged", str(result.unflagged))]
        else:
            rows += [("median ratio", f"{result.median_ratio:.6g}"),
                     ("median difference", f"{result.median_diff:.6g}"),
                     ("sigma of the difference", f"{result.sigma:.6g}"),
                     ("changed: |difference| >", f"{result.threshold:.6g}"),
                     (f"changed by > {result.nsigma:g} sigma",
                      f"{result.changed} ({result.fraction:.3%})")]
        width = max(len(k) for k, _ in rows)
        sys.stdout.write("".join(f"{k:<{width}}  {v}\n" for k, v in rows))
        sys.stdout.write(f"verdict: {result.line}\n")
    return EXIT_CHANGED if result.verdict == "changed" else EXIT_SAME


def add_parser(add, add_format) -> None:
    """Declare the sub-command on the ``refsmith`` parser."""
    p = add("compare", "compare a reference file with a baseline (difference, changed "
            "pixels, verdict)")
    p.add_argument("new", help="the new reference file")
    p.add_argument("baseline", help="the file to compare it with (a full-frame baseline is "
                   "cut to a subarray file's pixels)")
    p.add_argument("--sigma", type=float, default=5.0,
                   help="a pixel has changed when its difference exceeds this many times "
                        "the robust scatter of the differences (default 5)")
    add_format(p)
