"""Group construction: every rule of docs/grouping.md and every leftover reason."""

from __future__ import annotations

import random

import pytest

from refsmith.grouping import DEFAULT_LETTERS, GroupingResult, GroupingRule, build_groups
from refsmith.model import Exposure

PART = "partition NRCA1/FULL/RAPID"
JWST_REFFILES_MAX_DAYS = {"DD": 2.0, "FF": 2.0, "DDFF": 10.0}  # its mkrefs.cfg defaults


def exp(name: str, mjd: float | None, imtype: str | None = "dark", *, detector="NRCA1",
        subarray="FULL", readpatt="RAPID", usable=True, reason="", **keywords) -> Exposure:
    return Exposure(path=f"/d/{name}.fits", usable=usable, reason=reason, imtype=imtype,
                    instrument="NIRCAM", detector=detector, readpatt=readpatt,
                    subarray=subarray, mjd=mjd, keywords=keywords)


def darks(*times: float, prefix: str = "d", **kw) -> list[Exposure]:
    return [exp(f"{prefix}{i}", t, "dark", **kw) for i, t in enumerate(times, 1)]


def flats(*times: float, prefix: str = "f", **kw) -> list[Exposure]:
    return [exp(f"{prefix}{i}", t, "flat", **kw) for i, t in enumerate(times, 1)]


def run(exposures, imtypes: str, **rule) -> GroupingResult:
    return build_groups(exposures, GroupingRule("rn", "readnoise", imtypes, **rule))


def names(result: GroupingResult) -> list[tuple[str, ...]]:
    """Each group's members by base name without '.fits', in member order."""
    return [tuple(p.rsplit("/", 1)[-1][:-5] for p in g.paths) for g in result.groups]


def reasons(result: GroupingResult) -> dict[str, str]:
    return {lo.path.rsplit("/", 1)[-1][:-5]: lo.reason for lo in result.leftovers}


# ------------------------------------------------------------------ the rules, as a table
# (id, exposures, imtypes, rule fields, expected groups, expected leftover reasons)
CASES = [
    ("D-each-alone", darks(5, 0, 5), "D", {},
     [("d2",), ("d1",), ("d3",)], {}),
    ("F-each-alone", flats(1, 0), "F", {}, [("f2",), ("f1",)], {}),
    ("DD-no-limit", darks(0, 10, 20), "DD", {},
     [("d1", "d2")],
     {"d3": f"only 1 dark remains at the end of {PART}, DD needs 2"}),
    ("DD-limit-is-inclusive", darks(0, 2.0), "DD", {"max_days": {"DD": 2.0}},
     [("d1", "d2")], {}),
    ("DD-next-too-late", darks(0, 1, 1.5, 4.9, 5.0), "DD", {"max_days": {"DD": 2.0}},
     [("d1", "d2"), ("d4", "d5")],
     {"d3": "next dark 3.40 d later exceeds DD max 2.0 d (d4.fits)"}),
    ("DD-isolated", darks(0, 3.4, 3.5), "DD", {"max_days": {"DD": 2.0}},
     [("d2", "d3")],
     {"d1": "no dark within 2.0 d (nearest 3.40 d: d2.fits)"}),
    ("DD-small-partition", darks(0, subarray="SUB640"), "DD", {},
     [], {"d1": "partition NRCA1/SUB640/RAPID has 1 dark, DD needs 2"}),
    ("DD-walk-is-greedy", darks(0, 1.5, 3.0, 4.5), "DD", {"max_days": {"DD": 1.5}},
     [("d1", "d2"), ("d3", "d4")], {}),
    ("DDD-span-and-tail", darks(0, 1, 5, 5.2, 5.4, 9, 9.1), "DDD", {"max_days": {"DDD": 1.0}},
     [("d3", "d4", "d5")],
     {"d1": "this and the next 2 darks span 5.00 d, exceeding DDD max 1.0 d (last: d3.fits)",
      "d2": "this and the next 2 darks span 4.20 d, exceeding DDD max 1.0 d (last: d4.fits)",
      "d6": f"only 2 darks remain at the end of {PART}, DDD needs 3",
      "d7": f"only 1 dark remains at the end of {PART}, DDD needs 3"}),
    ("FF-uses-FF-limit", flats(0, 1, 7) + darks(0, 0.1), "FF",
     {"max_days": {"FF": 2.0, "DD": 0.01}},
     [("f1", "f2")], {"f3": "no flat within 2.0 d (nearest 6.00 d: f2.fits)"}),
    ("D+-all-in-one", darks(0, 50, 100) + flats(1), "D+", {"max_days": {"DD": 2.0}},
     [("d1", "d2", "d3")], {}),
    ("D+-clusters-greedy-from-earliest", darks(0, 1, 2, 2.5, 10, 10.5), "D+",
     {"max_days": {"D+": 2.0}},
     [("d1", "d2", "d3"), ("d4",), ("d5", "d6")], {}),
    ("D+-min-size", darks(0, 1, 2, 2.5, 10), "D+", {"max_days": {"D+": 2.0}, "min_size": 2},
     [("d1", "d2", "d3")],
     {"d4": "group of 1 < min_size 2", "d5": "group of 1 < min_size 2"}),
    ("F+-all-in-one", flats(3, 1), "F+", {}, [("f2", "f1")], {}),
    ("DD-min-size", darks(0, 1), "DD", {"min_size": 3}, [],
     {"d1": "group of 2 < min_size 3", "d2": "group of 2 < min_size 3"}),
    ("DDFF-no-dark-in-reach",
     darks(0, 0.5) + flats(1, 1.2, 14, 14.2, 30, 30.5), "DDFF",
     {"max_days": JWST_REFFILES_MAX_DAYS},
     [("d1", "d2", "f1", "f2")],
     {f: f"flat pair has no dark pair within DDFF max 10.0 d (nearest {d} d: d1.fits, d2.fits)"
      for f, d in [("f3", "14.20"), ("f4", "14.20"), ("f5", "30.50"), ("f6", "30.50")]}),
    ("DDFF-unused-dark-pair-out-of-reach",
     darks(0, 0.5, 40, 40.5) + flats(1, 1.2), "DDFF", {"max_days": JWST_REFFILES_MAX_DAYS},
     [("d1", "d2", "f1", "f2")],
     {"d3": "dark pair unused: no flat pair within DDFF max 10.0 d "
            "(nearest 39.50 d: f1.fits, f2.fits)",
      "d4": "dark pair unused: no flat pair within DDFF max 10.0 d "
            "(nearest 39.50 d: f1.fits, f2.fits)"}),
    ("DDFF-unused-dark-pair-not-chosen",
     darks(0, 0.5, 1, 1.5) + flats(2, 2.2), "DDFF", {"max_days": JWST_REFFILES_MAX_DAYS},
     [("d1", "d2", "f1", "f2")],
     {"d3": "dark pair unused: the flat pairs within DDFF max 10.0 d took less used or "
            "earlier dark pairs",
      "d4": "dark pair unused: the flat pairs within DDFF max 10.0 d took less used or "
            "earlier dark pairs"}),
    ("DDFF-too-few-darks", darks(0) + flats(1, 1.2), "DDFF", {},
     [],
     {"d1": f"{PART} has 1 dark, DD needs 2",
      "f1": f"flat pair has no dark pair: {PART} has 1 dark, DD needs 2",
      "f2": f"flat pair has no dark pair: {PART} has 1 dark, DD needs 2"}),
    ("DDFF-no-dark-pair-within-DD", darks(0, 5) + flats(1, 1.2), "DDFF",
     {"max_days": {"DD": 2.0}},
     [],
     {"d1": "no dark within 2.0 d (nearest 5.00 d: d2.fits)",
      "d2": "no dark within 2.0 d (nearest 5.00 d: d1.fits)",
      "f1": f"flat pair has no dark pair: no 2 darks of {PART} lie within DD max 2.0 d",
      "f2": f"flat pair has no dark pair: no 2 darks of {PART} lie within DD max 2.0 d"}),
    ("DDFF-no-flats", darks(0, 1) + flats(5), "DDFF", {},
     [],
     {"d1": f"dark pair unused: {PART} has 1 flat, FF needs 2",
      "d2": f"dark pair unused: {PART} has 1 flat, FF needs 2",
      "f1": f"{PART} has 1 flat, FF needs 2"}),
    ("DDFF-no-flat-pair-within-FF", darks(0, 1) + flats(0, 5), "DDFF",
     {"max_days": {"FF": 2.0}},
     [],
     {"d1": f"dark pair unused: no 2 flats of {PART} lie within FF max 2.0 d",
      "d2": f"dark pair unused: no 2 flats of {PART} lie within FF max 2.0 d",
      "f1": "no flat within 2.0 d (nearest 5.00 d: f2.fits)",
      "f2": "no flat within 2.0 d (nearest 5.00 d: f1.fits)"}),
    ("DDFF-unused-dark-pair-no-limit", darks(0, 1, 2, 3) + flats(4, 5), "DDFF", {},
     [("d1", "d2", "f1", "f2")],
     {"d3": "dark pair unused: the flat pairs took less used or earlier dark pairs",
      "d4": "dark pair unused: the flat pairs took less used or earlier dark pairs"}),
    ("DDFF-reuse-least-used-then-earliest",
     darks(0, 0.5, 1, 1.5) + flats(2, 2.2, 3, 3.2, 4, 4.2), "DDFF", {},
     [("d1", "d2", "f1", "f2"), ("d3", "d4", "f3", "f4"), ("d1", "d2", "f5", "f6")], {}),
    ("DDFF-no-reuse",
     darks(0, 0.5, 1, 1.5) + flats(2, 2.2, 3, 3.2, 4, 4.2), "DDFF",
     {"max_days": {"DDFF": 10.0}, "reuse": False},
     [("d1", "d2", "f1", "f2"), ("d3", "d4", "f3", "f4")],
     {"f5": "flat pair has no unused dark pair within DDFF max 10.0 d (reuse: false)",
      "f6": "flat pair has no unused dark pair within DDFF max 10.0 d (reuse: false)"}),
    ("DDFF-no-reuse-no-limit", darks(0, 1) + flats(2, 3, 4, 5), "DDFF", {"reuse": False},
     [("d1", "d2", "f1", "f2")],
     {"f3": "flat pair has no unused dark pair (reuse: false)",
      "f4": "flat pair has no unused dark pair (reuse: false)"}),
    ("DDFF-limit-over-every-member",  # |f2 - d1| = 10.5 > 10 although |f1 - d2| = 9
     darks(0, 1) + flats(10, 10.5), "DDFF", {"max_days": {"DDFF": 10.0}},
     [],
     {"d1": "dark pair unused: no flat pair within DDFF max 10.0 d "
            "(nearest 10.50 d: f1.fits, f2.fits)",
      "d2": "dark pair unused: no flat pair within DDFF max 10.0 d "
            "(nearest 10.50 d: f1.fits, f2.fits)",
      "f1": "flat pair has no dark pair within DDFF max 10.0 d "
            "(nearest 10.50 d: d1.fits, d2.fits)",
      "f2": "flat pair has no dark pair within DDFF max 10.0 d "
            "(nearest 10.50 d: d1.fits, d2.fits)"}),
    ("DDFF-dark-after-flats", darks(9, 10) + flats(0, 0.5), "DDFF",
     {"max_days": {"DDFF": 10.0}},
     [("d1", "d2", "f1", "f2")], {}),
    ("FFDD-same-as-DDFF-key-as-written", darks(0, 1) + flats(12, 12.5), "FFDD",
     {"max_days": {"FFDD": 13.0}},
     [("d1", "d2", "f1", "f2")], {}),
    ("DF-one-of-each", darks(0) + flats(0.5, 5), "DF", {"max_days": {"DF": 1.0}},
     [("d1", "f1")],
     {"f2": "flat has no dark within DF max 1.0 d (nearest 5.00 d: d1.fits)"}),
    ("DDDFF-three-dark-set", darks(0, 0.1, 0.2, 0.3) + flats(1, 2), "DDDFF", {},
     [("d1", "d2", "d3", "f1", "f2")],
     {"d4": f"only 1 dark remains at the end of {PART}, DDD needs 3"}),
    ("DF+-all-darks-and-flats", darks(0, 9) + flats(4, 30) + darks(1, prefix="x",
                                                                    detector="NRCA2"),
     "DF+", {},
     [("d1", "d2", "f1", "f2")],
     {"x1": "DF+ needs darks and flats; partition NRCA2/FULL/RAPID has no flats"}),
    ("DF+-clusters", darks(0, 1, 20) + flats(0.5, 40), "DF+", {"max_days": {"DF+": 2.0}},
     [("d1", "d2", "f1")],
     {"d3": "DF+ needs darks and flats; the DF+ max 2.0 d cluster from d3.fits "
            "(MJD 20.000) in partition NRCA1/FULL/RAPID has no flats",
      "f2": "DF+ needs darks and flats; the DF+ max 2.0 d cluster from f2.fits "
            "(MJD 40.000) in partition NRCA1/FULL/RAPID has no darks"}),
    ("D+F+-is-DF+", darks(0) + flats(1), "F+D+", {"max_days": {"D+F+": 0.5}},
     [],
     {"d1": "DF+ needs darks and flats; the DF+ max 0.5 d cluster from d1.fits "
            "(MJD 0.000) in partition NRCA1/FULL/RAPID has no flats",
      "f1": "DF+ needs darks and flats; the DF+ max 0.5 d cluster from f1.fits "
            "(MJD 1.000) in partition NRCA1/FULL/RAPID has no darks"}),
]


@pytest.mark.parametrize(("exposures", "imtypes", "rule", "groups", "left"),
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_rule(exposures, imtypes, rule, groups, left):
    result = run(exposures, imtypes, **rule)
    assert names(result) == groups
    assert reasons(result) == left


# ------------------------------------------------------------------ who is a candidate

EXCLUSIONS = [
    ("unusable", exp("a", 0, usable=False, reason="missing DETECTOR"), {},
     "unusable: missing DETECTOR"),
    ("unusable-no-reason", exp("a", 0, usable=False), {}, "unusable: no reason given"),
    ("select-fails", exp("a", 0, FILTER="F200W"), {"select": {"FILTER": ["F150W"]}},
     "FILTER=F200W not in select [F150W]"),
    ("select-missing", exp("a", 0), {"select": {"FILTER": ["F150W", "F2*"]}},
     "FILTER missing, select needs one of [F150W, F2*]"),
    ("select-on-standard-keyword", exp("a", 0, readpatt="BRIGHT1"),
     {"select": {"READPATT": "RAPID"}}, "READPATT=BRIGHT1 not in select [RAPID]"),
    ("no-time", exp("a", None), {}, "no observation time (MJD), so it cannot be placed in time"),
    ("nan-time", exp("a", float("nan")), {},
     "no observation time (MJD), so it cannot be placed in time"),
    ("missing-group-by", exp("a", 0, subarray=None), {},
     "missing SUBARRAY, needed to group by DETECTOR/SUBARRAY/READPATT"),
    ("blank-group-by", exp("a", 0, FILTER="  "), {"group_by": ("DETECTOR", "FILTER")},
     "missing FILTER, needed to group by DETECTOR/FILTER"),
]


@pytest.mark.parametrize(("exposure", "rule", "reason"), [c[1:] for c in EXCLUSIONS],
                         ids=[c[0] for c in EXCLUSIONS])
def test_non_candidates_get_one_reason(exposure, rule, reason):
    result = run([exposure], "D", **rule)
    assert result.groups == ()
    assert reasons(result) == {"a": reason}


def test_select_is_case_insensitive_with_wildcards():
    exposures = [exp("a", 0, FILTER="f150w"), exp("b", 1, FILTER="F200W"),
                 exp("c", 2, FILTER="F070W")]
    result = run(exposures, "D", select={"FILTER": ("F1*", "f200W")})
    assert names(result) == [("a",), ("b",)]
    assert reasons(result) == {"c": "FILTER=F070W not in select [F1*, f200W]"}


def test_other_image_types_are_ignored():
    exposures = [*flats(0, 1), exp("x", 2, None), exp("u", 3, "flat", usable=False)]
    result = run(exposures, "DD")
    assert result == GroupingResult((), ())


def test_duplicate_paths_are_refused():
    with pytest.raises(ValueError, match="listed twice"):
        run(darks(0) + darks(1), "D")


# ------------------------------------------------------------------ partitions, ids, records


def test_partitions_never_mix_and_are_ordered():
    exposures = (darks(0, 1, detector="NRCB1", prefix="b") + darks(0, 1, prefix="a")
                 + darks(0, 1, readpatt="BRIGHT2", prefix="c"))
    result = run(exposures, "DD")
    assert [g.id for g in result.groups] == [
        "rn-NRCA1-FULL-BRIGHT2-001", "rn-NRCA1-FULL-RAPID-001", "rn-NRCB1-FULL-RAPID-001"]
    assert names(result) == [("c1", "c2"), ("a1", "a2"), ("b1", "b2")]


def test_legacy_detector_only_grouping_mixes_readout_patterns():
    exposures = darks(0, prefix="a") + darks(1, readpatt="BRIGHT2", prefix="b")
    result = run(exposures, "DD", group_by=("DETECTOR",))
    assert [g.id for g in result.groups] == ["rn-NRCA1-001"]
    assert result.groups[0].partition == (("DETECTOR", "NRCA1"),)


def test_group_record():
    result = run(darks(0.5, 0) + flats(1, 1.5), "FFDD",
                 max_days={"DD": 2, "DDFF": 10, "FF": None, "D+": 1},
                 select={"READPATT": "RAP*"})
    (group,) = result.groups
    assert group.id == "rn-NRCA1-FULL-RAPID-001"
    assert (group.recipe, group.reftype, group.imtypes) == ("rn", "readnoise", "FFDD")
    assert group.partition == (("DETECTOR", "NRCA1"), ("SUBARRAY", "FULL"),
                               ("READPATT", "RAPID"))
    assert [(m.role, m.path) for m in group.members] == [
        ("D1", "/d/d2.fits"), ("D2", "/d/d1.fits"), ("F1", "/d/f1.fits"), ("F2", "/d/f2.fits")]
    assert group.mjd_span == (0.0, 1.5)
    assert group.rule == {"imtypes": "FFDD", "group_by": ["DETECTOR", "SUBARRAY", "READPATT"],
                          "max_days": {"DD": 2.0, "DDFF": 10.0}, "min_size": 1,
                          "reuse": True, "select": {"READPATT": ["RAP*"]}}


def test_ids_are_numbered_per_partition_after_min_size():
    exposures = darks(0, 1, 2, 3) + darks(0, 1, detector="NRCA2", prefix="b")
    result = run(exposures, "D+", max_days={"D+": 1.5}, min_size=2)
    assert [g.id for g in result.groups] == [
        "rn-NRCA1-FULL-RAPID-001", "rn-NRCA1-FULL-RAPID-002", "rn-NRCA2-FULL-RAPID-001"]


def test_ids_are_sanitised_and_unique():
    exposures = darks(0, detector="A/B", prefix="x") + darks(0, detector="A_B", prefix="y")
    result = run(exposures, "D", group_by=("DETECTOR",))
    assert [g.id for g in result.groups] == ["rn-A_B-001", "rn-A_B_2-001"]
    assert [g.partition for g in result.groups] == [(("DETECTOR", "A/B"),),
                                                    (("DETECTOR", "A_B"),)]


def test_ids_without_group_by():
    result = run(darks(0, 1) + darks(2, detector="NRCB1", prefix="b"), "D+", group_by=())
    assert [g.id for g in result.groups] == ["rn-001"]
    assert result.groups[0].partition == ()


def test_partition_keeps_header_value_types():
    exposures = [Exposure(path=f"/d/{i}.fits", usable=True, imtype="dark", mjd=float(i),
                          ngroups=10, detector="NRCA1") for i in range(2)]
    result = run(exposures, "DD", group_by=("NGROUPS",))
    assert result.groups[0].partition == (("NGROUPS", 10),)
    assert result.groups[0].id == "rn-10-001"


def test_user_letters_anchor_is_last_in_letter_order():
    letters = {**DEFAULT_LETTERS, "B": "bias"}
    exposures = [*darks(0, 1), *(exp(f"b{i}", 1.0 + i, "bias") for i in range(1, 5))]
    result = run(exposures, "BBDD", letters=letters)
    assert [[m.role for m in g.members] for g in result.groups] == [["D1", "D2", "B1", "B2"]] * 2
    assert names(result) == [("d1", "d2", "b1", "b2"), ("d1", "d2", "b3", "b4")]


def test_ties_in_time_are_broken_by_path_and_input_order_does_not_matter():
    exposures = darks(1, 1, 1, 0, 0) + flats(1, 1, 0, 0, 0)
    rule = GroupingRule("rn", "readnoise", "DDFF", max_days={"DD": 0})
    first = build_groups(exposures, rule)
    # darks by (time, path): d4 d5 | d1 d2 d3; flats: f3 f4 f5 | f1 f2 (FF: no limit)
    assert names(first) == [("d4", "d5", "f3", "f4"), ("d1", "d2", "f5", "f1")]
    for seed in range(5):
        shuffled = exposures[:]
        random.Random(seed).shuffle(shuffled)
        assert build_groups(shuffled, rule) == first


def test_many_exposures_with_no_ddff_limit_all_pair_up():
    # Scale check of correctness only; speed is measured in benchmarks/bench_grouping.py.
    rng = random.Random(3)
    exposures = [exp(f"{kind}{det}_{i}", rng.uniform(0, 500), kind, detector=f"NRCA{det}")
                 for det in range(5) for kind in ("dark", "flat") for i in range(1000)]
    result = run(exposures, "DDFF")  # no DDFF limit: every dark pair is a candidate partner
    assert len(result.groups) == 2500
    assert not result.leftovers


# ------------------------------------------------------------------ jwst_reffiles parity
# Expected groups are derived by hand from jwst_reffiles/mkrefs.py, class mkrefsclass:
# getDDlist / getFFlist (walk over the MJD-sorted exposures of one DETECTOR: pair i and
# i+1 when MJD[i+1] - MJD[i] <= max_Delta_MJD, then i += 2, else i += 1), getDpluslist /
# getFpluslist (every exposure of the detector in one set), getDDFFlist (for each FF pair
# in order, the DD pair with the lowest use count ddcount among those whose largest
# |dMJD| to the FF pair is <= DDFF max_Delta_MJD, first one on ties; reuse always on) and
# get_inputimage_sets (one call per detector). max_Delta_MJD defaults from its mkrefs.cfg.

LEGACY = {"group_by": ("DETECTOR",), "max_days": JWST_REFFILES_MAX_DAYS}


def test_jwst_reffiles_parity_dd():
    # getDDlist: i=0 (0, 1): 1 <= 2 -> pair; i=2 (4, 4.5) -> pair; i=4 (4.6, 10): 5.4 > 2
    # -> skip 4.6; i=5: loop ends (i < len-1 fails) -> 10 unused.
    exposures = darks(4.5, 0, 10, 1, 4.6, 4, readpatt="RAPID")
    result = run(exposures, "DD", **LEGACY)
    assert names(result) == [("d2", "d4"), ("d6", "d1")]
    assert set(reasons(result)) == {"d3", "d5"}
    assert [m.role for m in result.groups[0].members] == ["D1", "D2"]


def test_jwst_reffiles_parity_ff_one_detector_any_readout():
    # getFFlist on one detector ignores READPATT/SUBARRAY: (0, 1.9) pair; (3, 5.5): 2.5 > 2
    # -> skip 3; i=3 (5.5, 6) pair.
    exposures = (flats(0, prefix="a") + flats(1.9, readpatt="BRIGHT1", prefix="b")
                 + flats(3, 5.5, 6, subarray="SUB640", prefix="c"))
    result = run(exposures, "FF", **LEGACY)
    assert names(result) == [("a1", "b1"), ("c2", "c3")]
    assert set(reasons(result)) == {"c1"}


def test_jwst_reffiles_parity_ddff_with_reuse():
    # DD pairs A=(0, 0.5), B=(20, 20.5); FF pairs (1, 1.2), (2, 2.1), (3, 3.3), (21, 21.1).
    # getDDFFlist: FF1 -> A (ddcount 0, valid); FF2 -> A (B has count 0 < 1 but |20.5 - 2|
    # > 10); FF3 -> A; FF4 -> A invalid (21.1 > 10), B valid -> B.
    exposures = darks(0, 0.5, 20, 20.5) + flats(1, 1.2, 2, 2.1, 3, 3.3, 21, 21.1)
    result = run(exposures, "DDFF", **LEGACY)
    assert names(result) == [("d1", "d2", "f1", "f2"), ("d1", "d2", "f3", "f4"),
                             ("d1", "d2", "f5", "f6"), ("d3", "d4", "f7", "f8")]
    assert reasons(result) == {}


def test_jwst_reffiles_parity_ddff_least_used_first():
    # DD pairs A=(0, 0.5), B=(1, 1.5) both valid for every FF pair: FF1 -> A (tie, first),
    # FF2 -> B (count 0 < 1), FF3 -> A (tie 1 = 1, first).
    exposures = darks(0, 0.5, 1, 1.5) + flats(2, 2.2, 3, 3.2, 4, 4.2)
    result = run(exposures, "FFDD", **LEGACY)
    assert names(result) == [("d1", "d2", "f1", "f2"), ("d3", "d4", "f3", "f4"),
                             ("d1", "d2", "f5", "f6")]


def test_jwst_reffiles_parity_d_plus():
    # getDpluslist: all darks of the detector (max_Delta_MJD is not used), per detector.
    exposures = darks(0, 30, 90) + darks(5, detector="NRCB1", prefix="b") + flats(1)
    result = run(exposures, "D+", **LEGACY)
    assert names(result) == [("d1", "d2", "d3"), ("b1",)]
    assert [m.role for m in result.groups[0].members] == ["D1", "D2", "D3"]


def test_jwst_reffiles_parity_df_plus():
    # jwst_reffiles has no DF+ (get_inputimage_sets raises "not yet implemented"); the
    # expected set is getDpluslist + getFpluslist of the detector, as the issue specifies.
    exposures = darks(0, 30) + flats(10, 50) + darks(5, detector="NRCB1", prefix="b")
    result = run(exposures, "DF+", **LEGACY)
    assert names(result) == [("d1", "d2", "f1", "f2")]
    assert reasons(result) == {
        "b1": "DF+ needs darks and flats; partition NRCB1 has no flats"}
