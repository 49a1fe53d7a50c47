"""Step order, shorthand, reference types and the not-applicable (SKIPPED) table."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from refsmith.detector1 import source as jwst_source
from refsmith.detector1 import steps
from refsmith.detector1.reftypes import STEP_REFTYPES, reftype_steps
from refsmith.errors import ConfigError

JWST_VERSION = "3.0.0"


def _jwst_version() -> str | None:
    try:
        from importlib.metadata import version

        return version("jwst")
    except Exception:
        return None


@pytest.mark.skipif(_jwst_version() != JWST_VERSION, reason="fallback table is for jwst 3.0.0")
@pytest.mark.parametrize("branch, instrument", [("NIR", "NIRCAM"), ("NIR", "NIRSPEC"),
                                                ("NIR", "FGS"), ("MIRI", "MIRI")])
def test_derived_order_equals_fallback_for_jwst_3_0(branch: str, instrument: str) -> None:
    source = jwst_source.detector1_source()
    assert source is not None
    derived = jwst_source.derive_step_orders(source)
    assert derived == steps.FALLBACK_ORDER
    assert steps.step_order(instrument) == steps.FALLBACK_ORDER[branch]


def test_step_order_does_not_import_jwst() -> None:
    code = ("import sys; from refsmith.detector1 import steps; steps.step_order('MIRI'); "
            "print('jwst' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("text", ["this is not python (", "class Detector1Pipeline:\n  pass\n",
                                  "class Detector1Pipeline:\n  def process(self, x):\n"
                                  "    x = self.dq_init.run(x)\n",
                                  "class Detector1Pipeline:\n  def process(self, x):\n"
                                  "    if i == 'MIRI':\n      x = self.new_step.run(x)\n"])
def test_unparsable_source_gives_none(tmp_path: Path, text: str) -> None:
    path = tmp_path / "calwebb_detector1.py"
    path.write_text(text)
    assert jwst_source.derive_step_orders(path) is None
    assert jwst_source.derive_step_orders(tmp_path / "missing.py") is None


def test_fallback_used_when_parsing_fails(monkeypatch: pytest.MonkeyPatch,
                                          tmp_path: Path) -> None:
    broken = tmp_path / "calwebb_detector1.py"
    broken.write_text("def (")
    monkeypatch.setattr(jwst_source, "detector1_source", lambda: broken)
    _clear_caches()
    try:
        assert steps.step_order("NIRCAM") == steps.FALLBACK_ORDER["NIR"]
        assert steps.step_order("MIRI") == steps.FALLBACK_ORDER["MIRI"]
    finally:
        _clear_caches()


def _clear_caches() -> None:
    for cached in (steps.installed_step_orders, steps.step_order, steps._rank):
        cached.cache_clear()


def test_derivation_follows_a_changed_order(tmp_path: Path) -> None:
    path = tmp_path / "calwebb_detector1.py"
    path.write_text(
        "class Detector1Pipeline:\n"
        "  def process(self, x):\n"
        "    x = self.group_scale.run(x)\n"
        "    if instrument == 'MIRI':\n"
        "      x = self.rscd.run(x)\n"
        "    else:\n"
        "      x = self.superbias.run(x)\n"
        "    if self.ramp_fit.skip:\n"
        "      x = self.ramp_fit.run(x)\n"
        "    else:\n"
        "      x, y = self.ramp_fit.run(x)\n"
        "    x = self.gain_scale.run(x)\n"
        "    y = self.gain_scale.run(y)\n"
    )
    assert jwst_source.derive_step_orders(path) == {
        "NIR": ("group_scale", "superbias", "ramp_fit", "gain_scale"),
        "MIRI": ("group_scale", "rscd", "ramp_fit", "gain_scale"),
    }


@pytest.mark.parametrize("spec, instrument, expected", [
    ("dq_init-", "NIRCAM", ("group_scale", "dq_init")),
    ("rate", "NIRCAM", ("ramp_fit",)),
    (["dq_init", "rate"], "NIRISS", ("dq_init", "ramp_fit")),
    ("jump-", "NIRCAM", ("group_scale", "dq_init", "saturation", "ipc", "superbias", "refpix",
                         "linearity", "dark_current", "jump")),
    ("dark_current-", "MIRI", ("group_scale", "dq_init", "saturation", "ipc", "lastframe",
                               "reset", "linearity", "rscd", "dark_current")),
    ("persistence-", "NIRCAM", ("group_scale", "dq_init", "saturation", "ipc", "superbias",
                                "refpix", "linearity", "dark_current", "jump",
                                "persistence")),
    ("dq_init-, charge_migration", "NIRCAM", ("group_scale", "dq_init", "charge_migration")),
])
def test_expand_steps(spec, instrument, expected) -> None:
    assert steps.expand_steps(spec, instrument) == expected


@pytest.mark.parametrize("spec, instrument, message", [
    ("warp_drive", "NIRCAM", "unknown calwebb_detector1 step"),
    ("rscd-", "NIRCAM", "does not exist for NIRCAM"),
    ("superbias", "MIRI", "does not exist for MIRI"),
])
def test_expand_steps_errors(spec, instrument, message) -> None:
    with pytest.raises(ConfigError, match=message):
        steps.expand_steps(spec, instrument)


def test_reftypes_match_the_installed_steps() -> None:
    source = jwst_source.detector1_source()
    if source is None:
        pytest.skip("jwst not installed")
    root = source.parent.parent
    folder = {"ramp_fit": "ramp_fitting"}
    for step, reftypes in STEP_REFTYPES.items():
        text = (root / folder.get(step, step) / f"{step}_step.py").read_text()
        found = re.search(r"reference_file_types\s*=\s*\[([^\]]*)\]", text)
        declared = tuple(re.findall(r"\"(\w+)\"", found.group(1))) if found else ()
        assert set(declared) == set(reftypes), step
        skipped = re.search(r"skip\s*=\s*boolean\(default=True\)", text) is not None
        assert skipped == (step in steps.SKIPPED_BY_DEFAULT), step


@pytest.mark.parametrize("step, header, applies", [
    ("group_scale", {"NFRAMES": 1}, True),
    ("group_scale", {"NFRAMES": 4}, True),
    ("group_scale", {"NFRAMES": 5}, False),
    ("group_scale", {"NFRAMES": 5, "FRMDIVSR": 5}, True),
    ("group_scale", {"NFRAMES": 4, "FRMDIVSR": 2}, False),
    ("group_scale", {}, False),
    ("jump", {"NGROUPS": 2}, True),
    ("jump", {"NGROUPS": 3}, False),
    ("charge_migration", {"NGROUPS": 1}, True),
    ("refpix", {"INSTRUME": "MIRI", "SUBARRAY": "SUB64"}, True),
    ("refpix", {"INSTRUME": "MIRI", "SUBARRAY": "FULL"}, False),
    ("refpix", {"INSTRUME": "NIRCAM", "SUBARRAY": "SUB64P"}, False),
    ("refpix", {"INSTRUME": "miri", "SUBARRAY": "brightsky"}, True),
    # a blank or absent SUBARRAY is not known to be a subarray: SKIPPED is not done
    ("refpix", {"INSTRUME": "MIRI", "SUBARRAY": ""}, False),
    ("refpix", {"INSTRUME": "MIRI"}, False),
    ("gain_scale", {"INSTRUME": "NIRCAM"}, True),
    ("gain_scale", {"INSTRUME": "NIRCAM", "GAINFACT": 1.5}, False),
    ("gain_scale", {"INSTRUME": "NIRSPEC"}, False),
    ("emicorr", {"READPATT": "FASTR100"}, True),
    ("emicorr", {"READPATT": "FAST"}, False),
    # emicorr corrects exactly these four read patterns (any case); unknown: not skipped
    ("emicorr", {"READPATT": "FASTR1"}, False),
    ("emicorr", {"READPATT": "SLOW"}, False),
    ("emicorr", {"READPATT": "SLOWR1"}, False),
    ("emicorr", {"READPATT": "slowr1"}, False),
    ("emicorr", {"READPATT": "SLOWR100"}, True),
    ("emicorr", {}, False),
    ("picture_frame", {"EXP_TYPE": "NRC_DARK"}, False),
    ("dark_current", {}, False),
])
def test_not_applicable_table(step, header, applies) -> None:
    assert steps.skip_applies(step, header) is applies
    assert steps.step_done(step, "SKIPPED", header) is applies
    assert steps.step_done(step, "COMPLETE", header)
    assert not steps.step_done(step, "FAILED", header)
    assert not steps.step_done(step, None, header)
    expected = {"COMPLETE", "SKIPPED"} if applies else {"COMPLETE"}
    assert steps.expected_statuses(step, header) == expected


def test_describe_steps() -> None:
    rows = steps.describe_steps("nircam")
    assert [r["step"] for r in rows] == list(steps.step_order("NIRCAM"))
    jump = next(r for r in rows if r["step"] == "jump")
    assert jump["keyword"] == "S_JUMP"
    assert set(jump["reftypes"]) == {"gain", "readnoise"}
    assert jump["required_reftypes"] == ["gain", "readnoise"]
    assert next(r for r in rows if r["step"] == "persistence")["skipped_by_default"]
    assert next(r for r in rows if r["step"] == "group_scale")["skipped_when"]
    assert reftype_steps("gain", steps.step_order("NIRCAM")) == (
        "jump", "ramp_fit", "gain_scale")
    assert reftype_steps("superbias", steps.step_order("NIRCAM")) == (
        "saturation", "superbias")


def test_state_problems_follows_the_not_applicable_table():
    from refsmith.detector1.steps import state_problems, step_order

    order = step_order("NIRCAM")
    done = ("group_scale", "dq_init")
    header = {"S_GRPSCL": "SKIPPED", "S_DQINIT": "COMPLETE", "S_SATURA": "SKIPPED",
              "NFRAMES": 1, "FRMDIVSR": 1}
    assert state_problems(header, done, order) == []
    # group_scale SKIPPED counts as done only where it does not apply (NFRAMES 3, no divisor)
    assert state_problems(header | {"NFRAMES": 3, "FRMDIVSR": None}, done, order) == [
        "S_GRPSCL (group_scale) is SKIPPED, expected COMPLETE"]
    assert state_problems(header | {"NFRAMES": 3, "FRMDIVSR": None}, done, order,
                          not_applicable=("group_scale",)) == []
    # a step outside the state must not be COMPLETE; an exact value is the only one accepted
    assert state_problems(header | {"S_SATURA": "COMPLETE"}, done, order) == [
        "S_SATURA (saturation) is COMPLETE, expected SKIPPED or absent"]
    assert state_problems(header, done, order, exact={"dq_init": "SKIPPED"}) == [
        "S_DQINIT (dq_init) is COMPLETE, expected SKIPPED"]
