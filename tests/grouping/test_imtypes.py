"""The imtypes grammar (``parse_imtypes``) and the validation of ``GroupingRule``."""

from __future__ import annotations

import pytest

from refsmith.errors import ConfigError
from refsmith.grouping import DEFAULT_LETTERS, GroupingRule, parse_imtypes

LETTERS_WITH_BIAS = {**DEFAULT_LETTERS, "B": "bias"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("D", {"dark": 1}),
        ("F", {"flat": 1}),
        ("DD", {"dark": 2}),
        ("FFF", {"flat": 3}),
        ("D+", {"dark": None}),
        ("F+", {"flat": None}),
        ("DDFF", {"dark": 2, "flat": 2}),
        ("FFDD", {"flat": 2, "dark": 2}),
        ("DDDF", {"dark": 3, "flat": 1}),
        ("DF+", {"dark": None, "flat": None}),
        ("D+F+", {"dark": None, "flat": None}),
        ("F+D+", {"flat": None, "dark": None}),
        ("FD+", {"flat": None, "dark": None}),
        ("  DD ", {"dark": 2}),
    ],
)
def test_parse_imtypes_accepts(text, expected):
    assert parse_imtypes(text) == expected


def test_parse_imtypes_user_letter():
    assert parse_imtypes("BBDD", LETTERS_WITH_BIAS) == {"bias": 2, "dark": 2}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("dd", "unexpected 'dd'"),
        ("D-", "unexpected '-'"),
        ("X", "unknown letter 'X'"),
        ("B", "unknown letter 'B'"),
        ("DD+", "mixes a count and '+'"),
        ("DFD", "appears in two places"),
        ("DDF+", "mixes counted types and '+' types"),
        ("D+FF", "mixes counted types and '+' types"),
        ("+", "unexpected '+'"),
        ("DD FF", "unexpected ' FF'"),
    ],
)
def test_parse_imtypes_rejects_with_a_clear_message(text, message):
    with pytest.raises(ConfigError, match=message.replace("+", r"\+")):
        parse_imtypes(text)


def rule(**changes):
    fields = {"recipe": "readnoise", "reftype": "readnoise", "imtypes": "DD"} | changes
    return GroupingRule(**fields)


def test_rule_defaults():
    r = rule()
    assert r.group_by == ("DETECTOR", "SUBARRAY", "READPATT")
    assert dict(r.max_days) == {}
    assert (r.min_size, r.reuse) == (1, True)
    assert dict(r.select) == {}
    assert dict(r.letters) == DEFAULT_LETTERS


def test_rule_normalises_its_inputs():
    r = rule(group_by=["detector", " subarray"], max_days={"dd": 2, "DDFF": None},
             select={"filter": "F150W", "PUPIL": ["clear", "F*"]})
    assert r.group_by == ("DETECTOR", "SUBARRAY")
    assert dict(r.max_days) == {"DD": 2.0, "DDFF": None}
    assert dict(r.select) == {"FILTER": ("F150W",), "PUPIL": ("clear", "F*")}


def test_rule_group_by_as_a_single_string():
    assert rule(group_by="detector").group_by == ("DETECTOR",)


def test_rule_is_immutable_and_hashable():
    r = rule(max_days={"DD": 2.0})
    with pytest.raises(AttributeError):
        r.min_size = 3
    with pytest.raises(TypeError):
        r.max_days["DD"] = 5.0
    assert hash(r) == hash(rule(max_days={"DD": 3.0}))
    assert r == rule(max_days={"DD": 2.0})
    assert r != rule(max_days={"DD": 3.0})


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"imtypes": "DX"}, "recipe 'readnoise': imtypes 'DX': unknown letter 'X'"),
        ({"imtypes": "DFD"}, "recipe 'readnoise': .*two places"),
        ({"max_days": {"DD": -1}}, r"max_days\['DD'\] must be a number of days >= 0"),
        ({"max_days": {"DD": "two"}}, r"max_days\['DD'\] must be a number"),
        ({"max_days": {"DD": float("nan")}}, r"max_days\['DD'\] must be a number"),
        ({"max_days": {"DD": True}}, r"max_days\['DD'\] must be a number"),
        ({"min_size": 0}, "min_size must be a whole number >= 1, got 0"),
        ({"min_size": 1.5}, "min_size must be a whole number >= 1"),
        ({"reuse": "no"}, "reuse must be true or false"),
        ({"select": {"FILTER": []}}, "select 'FILTER' lists no values"),
        ({"imtypes": "DDFF", "max_days": {"DDFF": 10, "FFDD": 5}},
         r"max_days 'DDFF' and 'FFDD' mean the same \(DDFF\) but differ"),
    ],
)
def test_rule_rejects_with_a_clear_message(changes, message):
    with pytest.raises(ConfigError, match=message):
        rule(**changes)


def test_rule_equivalent_max_days_spellings_may_agree():
    r = rule(imtypes="FFDD", max_days={"DDFF": 10, "FFDD": 10.0, "D+F+": 3, "XYZ": 1})
    assert r.max_days["FFDD"] == 10.0


def test_rule_with_user_letters():
    r = rule(imtypes="BB", letters=LETTERS_WITH_BIAS)
    assert r.letters["B"] == "bias"
    with pytest.raises(ConfigError, match="unknown letter 'B'"):
        rule(imtypes="BB")
