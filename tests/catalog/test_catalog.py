"""The catalog: discovery, Exposures from headers, bad files, time forms, the cache."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from astropy.table import Table
from astropy.time import Time

from refsmith.catalog import catalog as catalog_module
from refsmith.catalog import headers
from refsmith.catalog import pool as headerpool
from refsmith.catalog.catalog import read_exposure, scan
from refsmith.catalog.classify import TypeRule
from refsmith.catalog.discovery import discover
from refsmith.catalog.options import CatalogOptions, TimeSpec
from refsmith.config import parse_config
from refsmith.errors import ConfigError
from refsmith.model import Exposure
from refsmith.synthetic.headers import INSTRUMENT_PROFILES, write_bad_file, write_exposure

OPTIONS = CatalogOptions()


def raw(tmp_path: Path, name: str = "a", **kwargs) -> Path:
    return write_exposure(tmp_path / "raw" / f"{name}_uncal.fits", **kwargs)


def one(path: Path, options: CatalogOptions = OPTIONS) -> Exposure:
    catalog = scan([str(path)], options)
    assert len(catalog.exposures) == 1
    return catalog.exposures[0]


# ------------------------------------------------------------------ exposures


@pytest.mark.parametrize("instrument", sorted(INSTRUMENT_PROFILES))
def test_every_instruments_darks_and_flats_are_classified(tmp_path, instrument):
    profile = INSTRUMENT_PROFILES[instrument]
    raw(tmp_path, "dark", instrument=instrument)
    raw(tmp_path, "flat", instrument=instrument, exp_type=profile["flat"])
    dark, flat = scan([str(tmp_path / "raw")], OPTIONS).exposures
    assert (dark.imtype, flat.imtype) == ("dark", "flat")
    assert dark.usable and dark.reason == ""
    assert (dark.instrument, dark.detector, dark.subarray, dark.readpatt) == (
        instrument, profile["detector"], profile["subarray"], profile["readpatt"])
    assert (dark.exp_type, flat.exp_type) == (profile["dark"], profile["flat"])


def test_exposure_fields(tmp_path):
    path = raw(tmp_path, ngroups=7, nints=3, mjd=60100.25, extra={"FILTER": "F200W"},
               steps={"saturation": "COMPLETE", "dq_init": "COMPLETE", "ipc": "SKIPPED"})
    options = CatalogOptions(optional_keywords=("filter", "PUPIL", "NOSUCH"))
    exposure = one(path, options)
    stat = path.stat()
    assert exposure == Exposure(
        path=str(path.resolve()), usable=True, imtype="dark", instrument="NIRCAM",
        detector="NRCA1", exp_type="NRC_DARK", readpatt="RAPID", subarray="SUB64P",
        ngroups=7, nints=3, mjd=60100.25, completed_steps=("dq_init", "saturation"),
        size=stat.st_size, mtime_ns=stat.st_mtime_ns, ctime_ns=stat.st_ctime_ns,
        inode=stat.st_ino,
    )
    assert exposure.step_status == {
        "dq_init": "COMPLETE", "saturation": "COMPLETE", "ipc": "SKIPPED"}
    assert exposure.keywords["FILTER"] == "F200W" and exposure.keywords["PUPIL"] == "CLEAR"
    assert "NOSUCH" not in exposure.keywords and exposure.keywords["S_IPC"] == "SKIPPED"
    assert exposure.keywords["EXPSTART"] == 60100.25
    assert exposure.value("filter") == "F200W" and exposure.value("DETECTOR") == "NRCA1"


def test_completed_steps_follow_the_instrument_order(tmp_path):
    steps = {"dark_current": "COMPLETE", "refpix": "COMPLETE", "rscd": "COMPLETE",
             "dq_init": "COMPLETE", "jump": "FAILED"}
    miri = one(raw(tmp_path, instrument="MIRI", steps=steps))
    assert miri.completed_steps == ("dq_init", "rscd", "dark_current", "refpix")
    assert miri.step_status["jump"] == "FAILED"
    nircam = one(raw(tmp_path, "b", steps={k: v for k, v in steps.items() if k != "rscd"}))
    assert nircam.completed_steps == ("dq_init", "refpix", "dark_current")


def test_setup_values_are_upper_case_and_counts_are_integers(tmp_path):
    path = raw(tmp_path, extra={"DETECTOR": "nrca1 ", "NGROUPS": 5.0, "NINTS": "2"})
    exposure = one(path)
    assert (exposure.detector, exposure.ngroups, exposure.nints) == ("NRCA1", 5, 2)


def test_unclassified_files_are_usable(tmp_path):
    exposure = one(raw(tmp_path, exp_type="NRC_IMAGE"))
    assert exposure.usable and exposure.imtype is None


def test_configured_rules_and_filename_patterns(tmp_path):
    raw(tmp_path, "x_bias", exp_type="NRC_DARK", extra={"NGROUPS": 1})
    raw(tmp_path, "y_dark")
    rules = (
        TypeRule("bias", "B", {"EXP_TYPE": ("nrc_dark",), "NGROUPS": ("1",)}),
        TypeRule("dark", "D", pattern=r"_dark_uncal"),
    )
    catalog = scan([str(tmp_path / "raw")], CatalogOptions(type_rules=rules))
    assert [e.imtype for e in catalog.exposures] == ["bias", "dark"]


# ------------------------------------------------------------------ time


def iso(mjd: float) -> str:
    return Time(mjd, format="mjd", scale="utc").isot


@pytest.mark.parametrize(
    ("spec", "extra"),
    [
        (TimeSpec(), {}),
        (TimeSpec(mjd="EXPMID"), {}),
        (TimeSpec(date="DATE-OBS", time="TIME-OBS"), {}),
        (TimeSpec(date="DATE-BEG"), {}),
        (TimeSpec(mjd="EXPSTART", date="DATE-END"), {}),  # date wins over the default mjd
        (TimeSpec(date="DATE-END", time="TIME-END"),  # ground-test form
         {"DATE-END": "2022-06-01", "TIME-END": "12:34:56.789"}),
        (TimeSpec(date="DATE-END"), {"DATE-END": "2022-06-01T12:34:56.789"}),
    ],
)
def test_every_time_form_matches_astropy(tmp_path, spec, extra):
    path = raw(tmp_path, mjd=59731.5, extra=extra)
    exposure = one(path, CatalogOptions(time=spec))
    header = headers.read_keywords(str(path), spec.keywords())
    if spec.date:
        text = header[spec.keywords()[0]]
        if spec.time:
            text += "T" + header[spec.keywords()[1]]
        expected = Time(text, format="isot", scale="utc").mjd
    else:
        expected = header[spec.keywords()[0]]
    assert exposure.usable, exposure.reason
    assert abs(exposure.mjd - expected) < 1e-8
    assert set(spec.keywords()) <= set(exposure.keywords)


@pytest.mark.parametrize(
    ("spec", "extra", "reason"),
    [
        (TimeSpec(), {"EXPSTART": "abc"}, "EXPSTART = 'abc' is not a number"),
        (TimeSpec(), {"EXPSTART": True}, "EXPSTART = True is not a number"),
        (TimeSpec(), {"EXPSTART": None}, "missing EXPSTART"),
        (TimeSpec(date="DATE-END"), {"DATE-END": "yesterday"},
         "DATE-END = 'yesterday' is not an ISO date/time"),
        (TimeSpec(date="DATE-OBS", time="TIME-OBS"), {"TIME-OBS": "25:00:00"},
         "TIME-OBS = '25:00:00' is not an ISO date/time"),
        (TimeSpec(date="DATE-OBS", time="TIME-OBS"), {"TIME-OBS": None}, "missing TIME-OBS"),
    ],
)
def test_unparsable_time_makes_a_file_unusable(tmp_path, spec, extra, reason):
    exposure = one(raw(tmp_path, extra=extra), CatalogOptions(time=spec))
    assert not exposure.usable and reason in exposure.reason and exposure.mjd is None
    assert exposure.imtype is None


def set_card(path: Path, keyword: str, field: str) -> None:
    """Replace the value of ``keyword``'s card by ``field`` as written (not quoted)."""
    data = bytearray(path.read_bytes())
    start = data.index(f"{keyword:8s}= ".encode())
    data[start:start + 80] = f"{keyword:8s}= {field:>20s}".ljust(80).encode()
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    ("extra", "reason"),
    [
        ({"NGROUPS": 0}, "NGROUPS = 0 is not a positive integer"),
        ({"NGROUPS": -3}, "NGROUPS = -3 is not a positive integer"),
        ({"NGROUPS": "0"}, "NGROUPS = 0 is not a positive integer"),
        ({"NINTS": 0}, "NINTS = 0 is not a positive integer"),
        ({"NGROUPS": 0, "NINTS": -1},
         "NGROUPS = 0 is not a positive integer; NINTS = -1 is not a positive integer"),
        ({"EXPSTART": "inf"}, "EXPSTART = 'inf' is not a finite number"),
        ({"EXPSTART": "nan"}, "EXPSTART = 'nan' is not a finite number"),
        ({"EXPSTART": "-Infinity"}, "EXPSTART = '-Infinity' is not a finite number"),
    ],
)
def test_impossible_counts_and_times_make_a_file_unusable(tmp_path, extra, reason):
    raw(tmp_path, "good")
    path = raw(tmp_path, extra=extra)
    catalog = scan([str(tmp_path / "raw")], OPTIONS)
    bad = catalog.by_path()[str(path)]
    assert (bad.usable, bad.reason, bad.imtype) == (False, reason, None)
    assert catalog.counts() == {"dark": 1, "unclassified": 0, "unusable": 1}


def test_an_infinite_float_time_is_unusable(tmp_path):
    # 1.0E+999 is a float to the header reader: the path that skips parsing a string
    path = raw(tmp_path)
    set_card(path, "EXPSTART", "1.0E+999")
    exposure = one(path)
    assert (exposure.usable, exposure.reason, exposure.mjd) == (
        False, "EXPSTART = inf is not a finite number", None)


def test_time_spec_validation():
    assert TimeSpec(mjd=None).keywords() == ()
    with pytest.raises(ConfigError, match="needs a date"):
        TimeSpec(mjd=None, time="TIME-OBS")


def test_time_spec_none_gives_no_mjd(tmp_path):
    exposure = one(raw(tmp_path, extra={"EXPSTART": "60000.5"}), CatalogOptions())
    assert exposure.mjd == 60000.5
    exposure = one(raw(tmp_path, "b"), CatalogOptions(time=TimeSpec(mjd=None)))
    assert exposure.usable and exposure.mjd is None


# ------------------------------------------------------------------ bad files


@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        ("not_fits", "not a FITS file (first card is not SIMPLE"),
        ("truncated", "truncated: no END card"),
        ("empty", "empty file (0 bytes)"),
        ("missing_keyword", "missing DETECTOR"),
        ("bad_time", "EXPSTART = 'abc' is not a number"),
    ],
)
def test_each_bad_file_kind_is_unusable_with_a_specific_reason(tmp_path, kind, reason):
    path = write_bad_file(tmp_path / "raw" / f"{kind}_uncal.fits", kind)
    raw(tmp_path, "good")
    catalog = scan([str(tmp_path / "raw")], OPTIONS)
    bad = catalog.by_path()[str(path)]
    assert not bad.usable and bad.reason.startswith(reason), bad.reason
    assert catalog.counts() == {"dark": 1, "unclassified": 0, "unusable": 1}


def test_several_missing_keywords_and_bad_integers(tmp_path):
    path = raw(tmp_path, extra={"DETECTOR": None, "READPATT": None, "NINTS": "many"})
    exposure = one(path, CatalogOptions(required_keywords=("DETECTOR", "READPATT", "FILTER")))
    assert exposure.reason == "missing DETECTOR; missing READPATT; NINTS = 'many' is not an integer"
    assert exposure.instrument == "NIRCAM"  # what could be read is kept


def test_unreadable_file_is_unusable_and_not_cached(tmp_path, monkeypatch):
    path = raw(tmp_path)
    real_open = os.open

    def refuse(name, *args, **kwargs):
        if str(name) == str(path):
            raise PermissionError(13, "Permission denied")
        return real_open(name, *args, **kwargs)

    monkeypatch.setattr(headers.os, "open", refuse)
    cache = tmp_path / "cache.sqlite"
    exposure = one(path, CatalogOptions(cache=cache))
    assert not exposure.usable and exposure.reason == "cannot read: Permission denied"
    monkeypatch.undo()
    assert one(path, CatalogOptions(cache=cache)).usable


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_file_without_read_permission(tmp_path):
    path = raw(tmp_path)
    path.chmod(0)
    assert one(path).reason.startswith("cannot read")


def test_special_files_are_not_opened(tmp_path):
    fifo = tmp_path / "pipe_uncal.fits"
    os.mkfifo(fifo)
    assert one(fifo).reason == "not a regular file"  # a FIFO would block a reader
    assert read_exposure(str(fifo), OPTIONS).reason == "not a regular file"
    assert read_exposure(str(tmp_path), OPTIONS).reason == "is a directory"
    assert read_exposure(str(tmp_path / "gone.fits"), OPTIONS).reason.startswith("cannot read")


def test_inputs_are_opened_read_only_and_left_unchanged(tmp_path):
    good = raw(tmp_path, steps={"dq_init": "COMPLETE"})
    bad = write_bad_file(tmp_path / "raw" / "t_uncal.fits", "truncated")
    os.utime(good, ns=(1_000_000_000, 1_000_000_000))
    before = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in (good, bad)}
    good.chmod(0o444)
    bad.chmod(0o444)
    scan([str(tmp_path / "raw")], CatalogOptions(cache=tmp_path / "c.sqlite"))
    read_exposure(str(good), OPTIONS)
    assert {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in (good, bad)} == before


def test_read_exposure_of_one_file(tmp_path):
    path = raw(tmp_path, exp_type="NRC_FLAT")
    link = tmp_path / "link.fits"
    link.symlink_to(path)
    exposure = read_exposure(str(link), OPTIONS)
    assert exposure.path == str(path) and exposure.imtype == "flat"


# ------------------------------------------------------------------ discovery


def tree(tmp_path: Path) -> dict[str, Path]:
    """raw/a, raw/sub/b, raw/sub/deep/c uncal files, plus a rate file and a README."""
    files = {
        "a": raw(tmp_path, "a"),
        "b": write_exposure(tmp_path / "raw" / "sub" / "b_uncal.fits"),
        "c": write_exposure(tmp_path / "raw" / "sub" / "deep" / "c_uncal.fits"),
        "rate": write_exposure(tmp_path / "raw" / "sub" / "a_rate.fits"),
    }
    (tmp_path / "raw" / "README.txt").write_text("notes")
    return files


def test_directories_are_searched_recursively_with_the_pattern(tmp_path):
    files = tree(tmp_path)
    found = discover([str(tmp_path / "raw")], OPTIONS.pattern)
    assert found.paths == sorted(str(files[k]) for k in "abc")
    assert (found.filtered, found.duplicates, found.missing) == (1, 0, [])
    everything = discover([str(tmp_path / "raw")], None)
    assert len(everything.paths) == 4  # README.txt is not a FITS file name


def test_explicit_files_bypass_the_pattern_and_globs_do_not(tmp_path):
    files = tree(tmp_path)
    explicit = discover([str(files["rate"])], OPTIONS.pattern)
    assert explicit.paths == [str(files["rate"])]
    globbed = discover([str(tmp_path / "raw" / "**" / "*.fits")], OPTIONS.pattern)
    assert globbed.paths == sorted(str(files[k]) for k in "abc") and globbed.filtered == 1
    one_level = discover(["raw/*/*_uncal.fits"], None, base_dir=tmp_path)
    assert one_level.paths == [str(files["b"])]


def test_list_files_with_comments_relative_paths_and_nesting(tmp_path):
    files = tree(tmp_path)
    lists = tmp_path / "lists"
    lists.mkdir()
    (lists / "inner.txt").write_text("../raw/sub/deep/c_uncal.fits\n")
    (lists / "files.txt").write_text(
        "# darks\n\n../raw/a_uncal.fits\n  ../raw/sub/a_rate.fits  \n@inner.txt\n"
        "../raw/nothing_uncal.fits\n@files.txt\n"
    )
    found = discover(["@lists/files.txt", "@lists/none.txt"], OPTIONS.pattern, tmp_path)
    assert found.paths == sorted(str(files[k]) for k in ("a", "rate", "c"))
    assert found.missing == ["../raw/nothing_uncal.fits", "@lists/none.txt"]


def test_config_list_files_are_read_relative_to_the_config(tmp_path, monkeypatch):
    from refsmith.plan import input_paths

    files = tree(tmp_path)
    (tmp_path / "lists").mkdir()
    (tmp_path / "lists" / "darks.txt").write_text("../raw/a_uncal.fits\n")
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "more.txt").write_text(f"{files['b']}\n")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path / "raw")  # not the config's directory
    (tmp_path / "raw" / "cli.txt").write_text("sub/deep/c_uncal.fits\n")
    config = parse_config(
        "inputs:\n  paths: ['@lists/darks.txt', '@~/more.txt', '@lists/none.txt']\n"
        "recipes: {dark: {imtypes: D}}\n", base_dir=tmp_path)
    # as `refsmith plan` and `refsmith scan` pass them: the config's relative to the config,
    # the command line's (here @cli.txt) relative to the current directory
    inputs = input_paths(config, ["@cli.txt"])
    assert inputs[0] == f"@{tmp_path / 'lists' / 'darks.txt'}" and inputs[-1].startswith("@/")
    found = discover(inputs, OPTIONS.pattern, config.base_dir)
    assert found.paths == [str(files["a"]), str(files["b"]), str(files["c"])]
    assert found.missing == [f"@{tmp_path / 'lists' / 'none.txt'}"]


def test_duplicates_via_repeats_symlinks_and_hard_links(tmp_path):
    files = tree(tmp_path)
    links = tmp_path / "links"
    links.mkdir()
    (links / "sym_uncal.fits").symlink_to(files["a"])
    os.link(files["b"], links / "hard_uncal.fits")
    (links / "broken_uncal.fits").symlink_to(tmp_path / "nowhere.fits")
    found = discover(
        [str(tmp_path / "raw"), str(files["a"]), str(links), "raw/./a_uncal.fits"],
        OPTIONS.pattern, tmp_path,
    )
    hard = str(links / "hard_uncal.fits")
    # the hard link and raw/sub/b are one file: the first path in sorted order is kept
    assert found.paths == sorted({str(files["a"]), min(hard, str(files["b"])), str(files["c"])})
    assert found.duplicates == 4
    assert found.missing == [str(links / "broken_uncal.fits")]


def test_missing_inputs(tmp_path):
    tree(tmp_path)
    (tmp_path / "empty").mkdir()
    found = discover(["nope.fits", "raw/*.nothing", "empty", "raw"], OPTIONS.pattern, tmp_path)
    assert found.missing == ["nope.fits", "raw/*.nothing", "empty"]
    assert len(found.paths) == 3


def test_scan_of_gzip_files(tmp_path):
    import gzip

    plain = raw(tmp_path, exp_type="NRC_FLAT")
    packed = tmp_path / "raw" / "z_uncal.fits.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    catalog = scan([str(tmp_path / "raw")], CatalogOptions(pattern=r"_uncal\.fits(\.gz)?$"))
    assert [e.imtype for e in catalog.exposures] == ["flat", "flat"]


# ------------------------------------------------------------------ the cache


def test_cache_hit_when_unchanged_and_reread_when_changed(tmp_path):
    a, b = raw(tmp_path, "a"), raw(tmp_path, "b", exp_type="NRC_FLAT")
    write_bad_file(tmp_path / "raw" / "c_uncal.fits", "not_fits")
    options = CatalogOptions(cache=tmp_path / "cache" / "catalog.sqlite")
    first = scan([str(tmp_path / "raw")], options)
    assert (first.cache_hits, first.read) == (0, 3)
    second = scan([str(tmp_path / "raw")], options)
    assert (second.cache_hits, second.read) == (3, 0)  # bad files are cached too
    assert second.to_records() == first.to_records()

    write_exposure(b, exp_type="NRC_DARK")  # rewritten: new mtime
    os.utime(a, ns=(a.stat().st_atime_ns, a.stat().st_mtime_ns + 1))  # touched only
    third = scan([str(tmp_path / "raw")], options)
    assert (third.cache_hits, third.read) == (1, 2)
    assert [e.imtype for e in third.exposures[:2]] == ["dark", "dark"]


def test_cache_sees_a_header_edited_in_place_with_size_and_mtime_kept(tmp_path):
    a = raw(tmp_path, "a", exp_type="NRC_DARK")
    options = CatalogOptions(cache=tmp_path / "cache" / "catalog.sqlite")
    assert [e.imtype for e in scan([str(a)], options).exposures] == ["dark"]
    before = a.stat()
    data = a.read_bytes()
    edited = data.replace(b"'NRC_DARK'", b"'NRC_FLAT'", 1)
    assert len(edited) == len(data) and edited != data
    with open(a, "r+b") as stream:  # same file, same size
        stream.write(edited)
    os.utime(a, ns=(before.st_atime_ns, before.st_mtime_ns))  # mtime put back
    assert (a.stat().st_size, a.stat().st_mtime_ns) == (before.st_size, before.st_mtime_ns)
    again = scan([str(a)], options)
    assert again.read == 1 and [e.imtype for e in again.exposures] == ["flat"]


def cached_paths(cache: Path) -> set[str]:
    import sqlite3

    with sqlite3.connect(cache) as db:
        return {path for (path,) in db.execute("SELECT path FROM headers")}


def test_cache_forgets_files_gone_from_a_scanned_directory_only(tmp_path):
    cache = tmp_path / "cache" / "catalog.sqlite"
    options = CatalogOptions(cache=cache)
    a, b = raw(tmp_path, "a"), raw(tmp_path, "b")
    other = write_exposure(tmp_path / "raw-2" / "d_uncal.fits")  # '-' sorts before '/'
    kept = write_exposure(tmp_path / "raw" / "k_uncal.fits")
    scan([str(tmp_path / "raw"), str(other)], options)
    assert cached_paths(cache) == {str(p.resolve()) for p in (a, b, other, kept)}
    b.unlink()
    other.unlink()  # named as a file: not below a scanned directory, so kept
    scan([str(tmp_path / "raw")], replace(options, pattern=r"^a_"))  # k: not looked for
    assert cached_paths(cache) == {str(p.resolve()) for p in (a, other, kept)}


def test_cache_rereads_when_a_new_keyword_is_needed(tmp_path):
    raw(tmp_path, extra={"FILTER": "F150W"})
    cache = tmp_path / "catalog.sqlite"
    scan([str(tmp_path / "raw")], CatalogOptions(cache=cache))
    wider = CatalogOptions(cache=cache, optional_keywords=("FILTER",))
    again = scan([str(tmp_path / "raw")], wider)
    assert (again.cache_hits, again.read) == (0, 1)
    assert again.exposures[0].keywords["FILTER"] == "F150W"
    # the row now covers both configurations; the narrower one drops FILTER
    narrow = scan([str(tmp_path / "raw")], CatalogOptions(cache=cache))
    assert (narrow.cache_hits, "FILTER" in narrow.exposures[0].keywords) == (1, False)
    assert scan([str(tmp_path / "raw")], wider).cache_hits == 1


def test_cached_values_are_reclassified_with_new_rules(tmp_path):
    raw(tmp_path)
    cache = tmp_path / "catalog.sqlite"
    assert scan([str(tmp_path / "raw")], CatalogOptions(cache=cache)).exposures[0].imtype == "dark"
    rules = (TypeRule("bias", "B", {"EXP_TYPE": ("NRC_DARK",)}),)
    again = scan([str(tmp_path / "raw")], CatalogOptions(cache=cache, type_rules=rules))
    assert again.cache_hits == 1 and again.exposures[0].imtype == "bias"
    required = CatalogOptions(cache=cache, required_keywords=("DETECTOR", "NOSUCH"))
    strict = scan([str(tmp_path / "raw")], required)
    assert strict.read == 1 and strict.exposures[0].reason == "missing NOSUCH"
    assert scan([str(tmp_path / "raw")], required).cache_hits == 1  # absence is remembered


def test_parallel_reading_gives_the_serial_result(tmp_path, monkeypatch):
    for i in range(40):
        raw(tmp_path, f"f{i:02d}", mjd=60000 + i, exp_type="NRC_FLAT" if i % 2 else None)
    write_bad_file(tmp_path / "raw" / "x_uncal.fits", "truncated")
    serial = scan([str(tmp_path / "raw")], CatalogOptions(workers=1))
    monkeypatch.setattr(catalog_module, "PARALLEL_MIN_FILES", 10)
    monkeypatch.setattr(headerpool, "CHUNK_FILES", 3)
    calls = []
    parallel = scan([str(tmp_path / "raw")], CatalogOptions(workers=2),
                    progress=lambda done, total: calls.append((done, total)))
    assert parallel.to_records() == serial.to_records()
    assert calls[-1] == (41, 41)
    # every chunk read by the spawned readers (none here): the same results, in order
    paths = serial.discovery.paths
    keywords = ("DETECTOR", "EXP_TYPE", "NGROUPS")
    pooled = headerpool._read_parallel(paths, keywords, 3, local=False)
    assert pooled == headers.read_many(paths, keywords)


# ------------------------------------------------------------------ outputs


def test_counts_summary_records_and_table(tmp_path):
    for i in range(3):
        raw(tmp_path, f"d{i}", steps={"dq_init": "COMPLETE"} if i == 0 else None)
    raw(tmp_path, "f", exp_type="NRC_LED", extra={"FILTER": None})
    raw(tmp_path, "s", exp_type="NRC_IMAGE")
    write_bad_file(tmp_path / "raw" / "x_uncal.fits", "empty")
    options = CatalogOptions(optional_keywords=("FILTER",))
    catalog = scan([str(tmp_path / "raw")], options)
    assert catalog.counts() == {"dark": 3, "flat": 1, "unclassified": 1, "unusable": 1}
    assert catalog.summary_line() == "5 usable: 3 darks, 1 flats, 1 unclassified; 1 unusable"
    assert len(catalog.usable()) == 5
    records = json.loads(json.dumps(catalog.to_records()))
    assert records[0]["completed_steps"] == ["dq_init"] and records[0]["imtype"] == "dark"
    assert {"path", "usable", "reason", "imtype", "instrument", "detector", "exp_type",
            "readpatt", "subarray", "mjd", "completed_steps"} <= set(records[0])
    table = catalog.to_table()
    buffer = io.StringIO()
    table.write(buffer, format="ascii.ecsv")
    back = Table.read(buffer.getvalue(), format="ascii.ecsv")
    assert list(table["completed_steps"]) == ["dq_init", "", "", "", "", ""]
    assert list(table["FILTER"]) == ["F210M"] * 3 + ["", "F210M", ""]
    assert list(back["path"]) == [e.path for e in catalog.exposures]
    assert back["ngroups"].mask[-1] and back["ngroups"][0] == 5
    assert back["reason"][-1] == "empty file (0 bytes)" and back["completed_steps"][0] == "dq_init"


def test_empty_catalog():
    catalog = scan([], OPTIONS)
    assert catalog.summary_line() == "0 usable: 0 unclassified; 0 unusable"
    assert len(catalog.to_table()) == 0


def test_options_are_frozen_and_keywords_case_insensitive(tmp_path):
    path = raw(tmp_path)
    options = replace(OPTIONS, required_keywords=("detector", " instrume "))
    assert one(path, options).usable
    with pytest.raises(AttributeError):
        OPTIONS.pattern = None  # type: ignore[misc]


def test_catalog_and_synth_import_no_astropy():
    """Spawned readers import the main module: these must stay light (no astropy)."""
    code = (
        "import sys, refsmith.catalog.catalog, refsmith.synthetic.headers; "
        "heavy = {'astropy', 'numpy', 'jwst', 'stdatamodels'} & set(sys.modules); "
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
