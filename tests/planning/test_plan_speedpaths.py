"""The fast paths of ``refsmith plan`` agree with the slow, obvious ones.

- ``refsmith.util.ecsv`` writes what astropy writes for the same table (byte for byte) and
  reads back to the same values;
- plan.json (one record per line) holds exactly :func:`plan_to_dict`;
- the run directory's ECSV tables equal the astropy tables they replaced;
- grouping's attribute getters give what ``Exposure.value`` gives.

No timing here: speed is measured by ``benchmarks/bench_plan.py``.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
from pathlib import Path

import orjson
import pytest
from astropy.table import MaskedColumn, Table
from hypothesis import given
from hypothesis import strategies as st

from refsmith.catalog.catalog import scan
from refsmith.catalog.options import CatalogOptions
from refsmith.cli.demo import write_dataset
from refsmith.config import load_config
from refsmith.grouping import GroupingRule
from refsmith.grouping.build import _screen, _values_of
from refsmith.model import Exposure
from refsmith.plan import build_plan
from refsmith.plan_files import RECORD_LISTS, plan_json, plan_to_dict, write_run_dir
from refsmith.synthetic.headers import write_bad_file, write_exposure
from refsmith.util.ecsv import _quoted, ecsv_text

STRINGS = ["plain", "a b", "", 'say "hi"', "é ü", "n,m", "tab\tx", "1.5", "True", "x" * 300,
           "'q'", "line # not a comment", "[1, 2]"]


def astropy_text(table: Table) -> str:
    buffer = io.StringIO()
    table.write(buffer, format="ascii.ecsv")
    return buffer.getvalue()


def test_ecsv_text_is_what_astropy_writes_and_reads_back() -> None:
    n = len(STRINGS)
    ints = [None if i % 4 == 1 else i * 1000 - 3 for i in range(n)]
    floats = [None if i % 5 == 2 else v for i, v in enumerate(
        [60412.456697468, 0.0, 1e-7, 1e20, -2.5, math.nan, 1 / 3, 60000.0, 5e-324, 1.0,
         123456789.123, -0.0, 2.0])]
    bools = [i % 3 == 0 for i in range(n)]
    columns = [("s", "string", STRINGS), ("b", "bool", bools), ("i", "int64", ints),
               ("f", "float64", floats), ("empty", "string", [""] * n),
               ("none", "string", [None] * n)]
    table = Table()
    table["s"] = STRINGS
    table["b"] = bools
    table["i"] = MaskedColumn([v or 0 for v in ints], mask=[v is None for v in ints],
                              dtype=int)
    table["f"] = MaskedColumn([0.0 if v is None else v for v in floats],
                              mask=[v is None for v in floats], dtype=float)
    table["empty"] = [""] * n
    table["none"] = [""] * n
    text = ecsv_text(columns)
    assert text == astropy_text(table)
    back = Table.read(text, format="ascii.ecsv")
    assert list(back["s"].filled("")) == STRINGS  # astropy reads "" as masked
    assert list(back["b"]) == bools
    assert [None if m else int(v) for v, m in zip(back["i"], back["i"].mask, strict=True)] == ints
    assert list(back["f"].mask) == [v is None for v in floats]


@given(st.lists(st.text(st.sampled_from('ab "\'\r\n\t,#é\\'), min_size=1), min_size=1,
                max_size=5))
def test_ecsv_rows_are_what_the_csv_module_writes(row: list[str]) -> None:
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=" ", quotechar='"', lineterminator="\n").writerow(row)
    assert " ".join(cell for [cell] in (_quoted([c]) for c in row)) + "\n" == (
        buffer.getvalue())
    assert " ".join(_quoted(row)) + "\n" == buffer.getvalue()


@pytest.mark.parametrize("name", ["DATE-OBS", "S_DQINIT", "a b", "x:y", "yes", "null", "é",
                                  "1x", "-a", "it's", "x" * 100])
def test_ecsv_header_names_are_written_as_astropy_does(name: str) -> None:
    table = Table()
    table["path"] = ["/a", "/b"]
    table[name] = ["1", ""]
    assert ecsv_text([("path", "string", ["/a", "/b"]), (name, "string", ["1", None])]) == (
        astropy_text(table))


def test_ecsv_text_of_no_rows_and_bad_columns() -> None:
    text = ecsv_text([("recipe", "string", []), ("path", "string", [])])
    assert text == astropy_text(Table(names=["recipe", "path"], dtype=[str, str]))
    with pytest.raises(ValueError, match="datatype"):
        ecsv_text([("x", "complex128", [1j])])
    with pytest.raises(ValueError, match="duplicate"):
        ecsv_text([("x", "string", []), ("x", "string", [])])


def test_catalog_columns_give_the_astropy_table(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    write_exposure(raw / "jw01_nrca1_uncal.fits", steps={"dq_init": "COMPLETE",
                                                         "group_scale": "SKIPPED"})
    write_exposure(raw / "jw02_nrca1_uncal.fits", exp_type="NRC_FLAT", extra={"FILTER": None})
    write_exposure(raw / "jw03 odd name_nrca1_uncal.fits", exp_type="NRC_IMAGE")
    write_bad_file(raw / "jw04_nrca1_uncal.fits", "empty")
    write_bad_file(raw / "jw05_nrca1_uncal.fits", "bad_time")
    catalog = scan([str(raw)], CatalogOptions(optional_keywords=("FILTER", "PUPIL")))
    assert ecsv_text(catalog.table_columns()) == astropy_text(catalog.to_table())


@pytest.fixture(scope="module")
def demo_plan(tmp_path_factory):
    directory = tmp_path_factory.mktemp("demo")
    write_dataset(directory)  # raw files, reference files and refsmith.yaml
    return build_plan(load_config(directory / "refsmith.yaml"))


def test_plan_json_is_plan_to_dict_one_record_per_line(demo_plan) -> None:
    data = plan_to_dict(demo_plan)  # the obvious path: every record through to_dict
    first, second = data["groups"][:2]  # records are trees of their own (safe to edit)
    assert first["rule"] == second["rule"] and first["rule"] is not second["rule"]
    assert data["exposures"][0]["partition"] is not data["exposures"][1]["partition"]
    text = plan_json(demo_plan).decode()
    assert json.loads(text) == data
    lines = text.splitlines()
    for key in RECORD_LISTS:
        records = data[key]
        assert records, key
        start = lines.index(f' "{key}": [')
        assert [json.loads(line.strip().rstrip(",")) for line in
                lines[start + 1: start + 1 + len(records)]] == records
        assert lines[start + 1 + len(records)] == " ],"
    odd = dataclasses.replace(demo_plan, notices=("a\nb",), calibration=dataclasses.replace(
        demo_plan.calibration, groups=()))
    back = json.loads(plan_json(odd))
    assert back["notices"] == ["a\nb"]
    assert back["groups"] == []


def test_job_dataclass_fields_are_their_records(demo_plan) -> None:
    """plan_json encodes jobs from their fields: they must be what to_dict gives."""
    jobs = [*demo_plan.calibration.calibration_jobs, *demo_plan.calibration.reffile_jobs]
    assert jobs
    for job in jobs:
        assert orjson.loads(orjson.dumps(job)) == json.loads(json.dumps(job.to_dict()))


def test_run_directory_tables_are_the_astropy_tables(demo_plan) -> None:
    paths = write_run_dir(demo_plan)
    assert json.loads(paths["plan.json"].read_text()) == plan_to_dict(demo_plan)
    assert paths["catalog.ecsv"].read_text() == astropy_text(demo_plan.catalog.to_table())
    rows = [{"group": g.id, "recipe": g.recipe, "reftype": g.reftype, "role": m.role,
             "path": m.path, "partition": "/".join(str(v) for _, v in g.partition)}
            for g in demo_plan.groups for m in g.members]
    assert rows
    assert paths["groups.ecsv"].read_text() == astropy_text(
        Table(rows=rows, names=["group", "recipe", "reftype", "role", "path", "partition"]))
    rows = [{"recipe": x.recipe, "path": x.path, "reason": x.reason}
            for x in demo_plan.leftovers]
    assert rows
    assert paths["leftovers.ecsv"].read_text() == astropy_text(
        Table(rows=rows, names=["recipe", "path", "reason"]))


@pytest.mark.parametrize("group_by", [("DETECTOR", "SUBARRAY", "READPATT"), ("DETECTOR",),
                                      ("DETECTOR", "FILTER"), ()])
def test_group_values_are_exposure_values(group_by) -> None:
    exposures = [
        Exposure("/a.fits", True, imtype="dark", detector="NRCA1", subarray="FULL",
                 readpatt="RAPID", mjd=60000.0, keywords={"FILTER": "F200W"}),
        Exposure("/b.fits", True, imtype="dark", detector=" ", subarray="FULL", mjd=60000.0),
        Exposure("/c.fits", True, imtype="dark", detector="NRCA1", readpatt=None,
                 mjd=60000.0, keywords={"FILTER": 5}),
    ]
    rule = GroupingRule(recipe="r", reftype="r", imtypes="DD", group_by=group_by)
    values = _values_of(rule.group_by)
    for exposure in exposures:
        assert values(exposure) == tuple(exposure.value(k) for k in group_by)
        assert _screen(exposure, rule, values) == _screen(exposure, rule)


@given(st.text(st.sampled_from("aZ09._-_ /é:"), max_size=12))
def test_safe_label_fast_path_is_the_substitution(text: str) -> None:
    import re

    from refsmith.detector1.naming import safe_label

    assert safe_label(text) == (re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "x")


@given(st.text(st.sampled_from("ab_1.-"), max_size=8),
       st.sampled_from(["_uncal.fits", "_uncal.FITS", "uncal.fits", "_dq_init.fits", ".fits"]))
def test_exposure_base_fast_path_is_the_product_rule(stem: str, suffix: str) -> None:
    from refsmith.detector1.naming import _FITS, _product_base, exposure_base

    name = stem + suffix
    assert exposure_base(f"/d/{name}") == (_product_base(name) or _FITS.sub("", name))
