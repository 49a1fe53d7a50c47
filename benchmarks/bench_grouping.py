"""Micro-benchmark of ``build_groups`` (no I/O): one recipe over many exposures.

Usage: ``python benchmarks/bench_grouping.py [N_PER_TYPE_PER_DETECTOR]``. Prints the time
of each recipe shape over 10 detectors x (N darks + N flats); the time grows as
n log n, so doubling N should a little more than double the time.
"""

from __future__ import annotations

import random
import sys
import time

from refsmith.grouping import GroupingRule, build_groups
from refsmith.model import Exposure

RECIPES = {
    "DD": {"DD": 2.0},
    "D+": {"D+": 5.0},
    "DDFF": {"DD": 2.0, "FF": 2.0, "DDFF": 10.0},
    "DDFF-nolimit": {},
    "DF+": {},
}


def exposures(per_type: int, detectors: int = 10, seed: int = 1) -> list[Exposure]:
    """Darks and flats over ~per_type/4 days on each detector, in random order."""
    rng = random.Random(seed)
    result = [
        Exposure(path=f"/data/{det}_{imtype}_{i:06d}.fits", usable=True, imtype=imtype,
                 instrument="NIRCAM", detector=f"NRCA{det}", readpatt="RAPID",
                 subarray="FULL", mjd=60000.0 + rng.uniform(0, per_type / 4))
        for det in range(1, detectors + 1)
        for imtype in ("dark", "flat")
        for i in range(per_type)
    ]
    rng.shuffle(result)
    return result


def main(per_type: int = 500) -> None:
    data = exposures(per_type)
    for name, max_days in RECIPES.items():
        rule = GroupingRule(recipe="bench", reftype="x", imtypes=name.split("-")[0],
                            max_days=max_days)
        start = time.perf_counter()
        result = build_groups(data, rule)
        elapsed = time.perf_counter() - start
        print(f"{name:13s} {len(data):7d} exposures: {elapsed * 1000:7.1f} ms, "
              f"{len(result.groups)} groups, {len(result.leftovers)} leftovers")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 500)
