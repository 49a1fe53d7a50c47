"""Catalog scan speed: files per second, cold (no cache database) and warm (cached).

Writes N header-only synthetic exposures (~150 primary-header cards each) into a
temporary directory, then times :func:`refsmith.catalog.catalog.scan`:

- cold: no cache database yet (every header is read and the cache is written);
- warm: the cache database exists and no file changed (stat + one query + Exposures).

The files stay in the OS page cache in both cases (as right after copying or writing
them). Each figure is the median of ``--repeats`` runs.

Usage: ``python benchmarks/bench_scan.py [--n 1000 10000] [--repeats 3] [--workers N]``
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from refsmith.catalog.catalog import scan
from refsmith.catalog.options import CatalogOptions
from refsmith.synthetic.headers import INSTRUMENT_PROFILES, write_exposure


def write_files(directory: Path, count: int) -> None:
    """``count`` darks and flats of the five instruments, spread over 100 days."""
    instruments = list(INSTRUMENT_PROFILES)
    for i in range(count):
        instrument = instruments[i % len(instruments)]
        profile = INSTRUMENT_PROFILES[instrument]
        exp_type = profile["dark"] if i % 3 else profile["flat"]
        name = f"jw01234{i // 1000:03d}{i % 1000:03d}_01101_00001_{profile['detector'].lower()}"
        write_exposure(
            directory / f"{name}_uncal.fits", instrument=instrument, exp_type=exp_type,
            mjd=60000.0 + i * 0.01, ngroups=5 + i % 7, ncards=150,
        )


def time_scan(directory: Path, cache: Path, workers: int | None, *, cold: bool) -> float:
    """Seconds for one scan of ``directory`` (cache deleted first when ``cold``)."""
    if cold:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{cache}{suffix}").unlink(missing_ok=True)
    options = CatalogOptions(cache=cache, workers=workers)
    start = time.perf_counter()
    catalog = scan([str(directory)], options)
    elapsed = time.perf_counter() - start
    expected = (0, len(catalog.exposures)) if cold else (len(catalog.exposures), 0)
    if (catalog.cache_hits, catalog.read) != expected:
        raise RuntimeError(f"unexpected cache use: {catalog.cache_hits} hits, {catalog.read} read")
    return elapsed


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark and print a table of files/s."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, nargs="+", default=[1000, 10000],
                        help="numbers of files (default: 1000 10000)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per figure (median)")
    parser.add_argument("--workers", type=int, default=None, help="reader processes (auto)")
    args = parser.parse_args(argv)
    rows = []
    for count in args.n:
        with tempfile.TemporaryDirectory(prefix="refsmith_bench_") as tmp:
            directory = Path(tmp) / "raw"
            directory.mkdir()
            start = time.perf_counter()
            write_files(directory, count)
            written = time.perf_counter() - start
            os.sync()  # do not time the write-back of the files just written
            cache = Path(tmp) / "catalog.sqlite"
            cold = [time_scan(directory, cache, args.workers, cold=True)
                    for _ in range(args.repeats)]
            warm = [time_scan(directory, cache, args.workers, cold=False)
                    for _ in range(args.repeats)]
            rows.append((count, count / written, count / statistics.median(cold),
                         count / statistics.median(warm)))
    print(f"{'files':>8} {'write/s':>10} {'cold/s':>10} {'warm/s':>10}")
    for count, write_rate, cold_rate, warm_rate in rows:
        print(f"{count:>8} {write_rate:>10,.0f} {cold_rate:>10,.0f} {warm_rate:>10,.0f}")


if __name__ == "__main__":
    main()
