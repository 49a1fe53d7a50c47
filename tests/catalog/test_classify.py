"""Image-type rules: the default EXP_TYPE table and the rule semantics."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import yaml

from refsmith.catalog.classify import (
    DARK_EXP_TYPES,
    DEFAULT_RULES,
    FLAT_EXP_TYPES,
    Classifier,
    TypeRule,
    classify,
    letters,
)
from refsmith.errors import ConfigError
from refsmith.synthetic.headers import INSTRUMENT_PROFILES

# Found without importing stdatamodels (slow); the schemas ship with the installed package.
_PACKAGE = importlib.util.find_spec("stdatamodels")
assert _PACKAGE is not None and _PACKAGE.submodule_search_locations
SCHEMAS = Path(_PACKAGE.submodule_search_locations[0]) / "jwst" / "datamodels" / "schemas"


def exp_type_enum() -> set[str]:
    schema = yaml.safe_load((SCHEMAS / "keyword_exptype.schema.yaml").read_text())
    node = schema["properties"]["meta"]["properties"]["exposure"]["properties"]["type"]
    assert node["fits_keyword"] == "EXP_TYPE"
    return set(node["enum"])


def test_every_default_exp_type_exists_in_the_stdatamodels_enum():
    enum = exp_type_enum()
    defaults = {v for rule in DEFAULT_RULES for v in rule.match["EXP_TYPE"]}
    assert defaults == set(DARK_EXP_TYPES) | set(FLAT_EXP_TYPES)
    assert defaults <= enum, sorted(defaults - enum)


def test_every_dark_exp_type_of_the_enum_is_a_default_dark():
    """No DARK type in the schema was forgotten (this fails when a new one appears)."""
    darks = {t for t in exp_type_enum() if "DARK" in t}
    assert darks == set(DARK_EXP_TYPES)


def test_defaults_cover_all_five_instruments():
    prefixes = {t.split("_")[0] for t in DARK_EXP_TYPES} & {t.split("_")[0] for t in FLAT_EXP_TYPES}
    assert prefixes == {"NRC", "NIS", "NRS", "MIR", "FGS"}
    assert letters(DEFAULT_RULES) == {"D": "dark", "F": "flat"}


@pytest.mark.parametrize("instrument", sorted(INSTRUMENT_PROFILES))
def test_default_classification_of_each_instrument(instrument):
    profile = INSTRUMENT_PROFILES[instrument]
    assert classify({"EXP_TYPE": profile["dark"]}, "x_uncal.fits", DEFAULT_RULES) == "dark"
    assert classify({"EXP_TYPE": profile["flat"]}, "x_uncal.fits", DEFAULT_RULES) == "flat"
    science = {"NIRCAM": "NRC_IMAGE", "NIRISS": "NIS_IMAGE", "NIRSPEC": "NRS_MSASPEC",
               "MIRI": "MIR_IMAGE", "FGS": "FGS_IMAGE"}[instrument]
    assert classify({"EXP_TYPE": science}, "x_uncal.fits", DEFAULT_RULES) is None


@pytest.mark.parametrize("exp_type", [*DARK_EXP_TYPES, *FLAT_EXP_TYPES])
def test_each_default_exp_type(exp_type):
    expected = "dark" if exp_type in DARK_EXP_TYPES else "flat"
    assert classify({"EXP_TYPE": exp_type}, "f.fits", DEFAULT_RULES) == expected


@pytest.mark.parametrize("left_out", ["NRC_FOCUS", "NRS_AUTOFLAT", "MIR_FLATIMAGE-EXT",
                                      "FGS_SKYFLAT", "NIS_EXTCAL"])
def test_documented_exclusions_are_unclassified(left_out):
    assert classify({"EXP_TYPE": left_out}, "f.fits", DEFAULT_RULES) is None


def test_values_are_stripped_and_case_insensitive():
    assert classify({"EXP_TYPE": "  nrc_dark "}, "f", DEFAULT_RULES) == "dark"
    rules = (TypeRule("bias", "B", {"exp_type": (" Nrc_Bias ",)}),)
    assert classify({"EXP_TYPE": "NRC_BIAS"}, "f", rules) == "bias"


def test_wildcards_first_match_and_several_keywords():
    rules = (
        TypeRule("mrsdark", "M", {"EXP_TYPE": ("MIR_DARKMRS",), "DETECTOR": ("MIRIFU*",)}),
        TypeRule("dark", "D", {"EXP_TYPE": ("MIR_DARK*", "*_DARK")}),
    )
    mrs = {"EXP_TYPE": "MIR_DARKMRS", "DETECTOR": "MIRIFULONG"}
    assert classify(mrs, "f", rules) == "mrsdark"
    assert classify({**mrs, "DETECTOR": "MIRIMAGE"}, "f", rules) == "dark"
    assert classify({"EXP_TYPE": "NRC_DARK"}, "f", rules) == "dark"
    assert classify({"EXP_TYPE": "NRC_DARKISH"}, "f", rules) is None
    assert classify({"DETECTOR": "MIRIFULONG"}, "f", rules) is None  # keyword absent


def test_filename_pattern_searches_the_base_name_only():
    rules = (
        TypeRule("dark", "D", pattern=r"_dark_"),
        TypeRule("flat", "F", {"EXP_TYPE": ("NRC_FLAT",)}, pattern=r"^flat"),
    )
    assert classify({}, "/data/x_dark_/a_dark_1.fits", rules) == "dark"
    assert classify({}, "/data/x_dark_/a_1.fits", rules) is None
    assert classify({"EXP_TYPE": "NRC_FLAT"}, "/d/flat_1.fits", rules) == "flat"
    assert classify({"EXP_TYPE": "NRC_DARK"}, "/d/flat_1.fits", rules) is None


def test_a_rule_without_match_or_pattern_matches_nothing():
    rules = (TypeRule("anything", "A"), TypeRule("dark", "D", {"EXP_TYPE": ("NRC_DARK",)}))
    assert classify({"EXP_TYPE": "NRC_DARK"}, "f", rules) == "dark"
    assert classify({}, "f", rules[:1]) is None


def test_logical_and_numeric_values_compare_as_header_text():
    rules = (TypeRule("lamp", "L", {"LAMPON": ("T",), "NGROUPS": ("1?",)}),)
    assert classify({"LAMPON": True, "NGROUPS": 10}, "f", rules) == "lamp"
    assert classify({"LAMPON": False, "NGROUPS": 10}, "f", rules) is None
    # the memo of a Classifier keeps True and 1 apart
    numeric = Classifier((TypeRule("one", "O", {"X": ("1",)}),))
    assert numeric({"X": True}, "f") is None
    assert numeric({"X": 1}, "f") == "one"
    assert numeric({"X": True}, "f") is None


def test_letters_rejects_conflicts_and_bad_letters():
    assert letters([TypeRule("dark", "D"), TypeRule("dark", "D")]) == {"D": "dark"}
    with pytest.raises(ConfigError, match="two image types"):
        letters([TypeRule("dark", "D"), TypeRule("dusk", "D")])
    with pytest.raises(ConfigError, match="one upper-case letter"):
        letters([TypeRule("dark", "dd")])
