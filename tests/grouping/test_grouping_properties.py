"""Property tests of ``build_groups`` over random time series and partitions."""

from __future__ import annotations

import random
from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from refsmith.grouping import DEFAULT_LETTERS, GroupingRule, build_groups, parse_imtypes
from refsmith.model import Exposure

IMTYPES = ["D", "F", "DD", "DDD", "FF", "D+", "F+", "DDFF", "FFDD", "DF", "DDDFF", "DF+"]
LIMIT_KEYS = ["DD", "DDD", "FF", "D+", "F+", "DDFF", "DF", "DDDFF", "DF+"]
GROUP_BYS = [("DETECTOR", "SUBARRAY", "READPATT"), ("DETECTOR",), ()]
NAME_OF = {name: letter for letter, name in DEFAULT_LETTERS.items()}


@st.composite
def catalogs(draw) -> list[Exposure]:
    """Up to 60 exposures: darks and flats on 2 detectors x 2 subarrays, MJDs on a
    quarter-day grid over 10 days (many ties), a few unusable or without a time.

    Each exposure is drawn as one integer (fast to generate; shrinks towards a usable
    dark of NRCA1/FULL at the earliest time)."""
    size = draw(st.integers(0, 60))
    codes = draw(st.lists(st.integers(0, 2 * 2 * 2 * 43 * 16 - 1),
                          min_size=size, max_size=size))
    exposures = []
    for i, code in enumerate(codes):
        code, imtype = divmod(code, 2)
        code, detector = divmod(code, 2)
        code, subarray = divmod(code, 2)
        usable, quarter = divmod(code, 43)
        exposures.append(Exposure(
            path=f"/d/x{i:03d}.fits", usable=usable < 15, reason="" if usable < 15 else "bad",
            imtype=("dark", "flat")[imtype], detector=("NRCA1", "NRCB2")[detector],
            subarray=("FULL", "SUB640")[subarray], readpatt="RAPID",
            mjd=60000 + quarter / 4 if quarter <= 40 else None))
    return exposures


rules = st.builds(
    GroupingRule,
    recipe=st.just("r"),
    reftype=st.just("x"),
    imtypes=st.sampled_from(IMTYPES),
    group_by=st.sampled_from(GROUP_BYS),
    max_days=st.fixed_dictionaries(
        {k: st.sampled_from([None, 0.0, 0.25, 0.5, 1.0, 2.5, 10.0]) for k in LIMIT_KEYS}),
    min_size=st.integers(1, 3),
    reuse=st.booleans(),
)


def shape(rule: GroupingRule) -> tuple[list[tuple[str, str, int | None]], str]:
    """[(letter, type name, count)] in canonical order, and the canonical imtypes key."""
    counts = parse_imtypes(rule.imtypes)
    order = [(letter, name, counts[name]) for letter, name in DEFAULT_LETTERS.items()
             if name in counts]
    if order[0][2] is None:
        return order, "".join(letter for letter, _, _ in order) + "+"
    return order, "".join(letter * (count or 1) for letter, _, count in order)


def candidates(exposures: list[Exposure], rule: GroupingRule) -> list[Exposure]:
    names = {name for _, name, _ in shape(rule)[0]}
    return [e for e in exposures if e.imtype in names and e.usable and e.mjd is not None]


# ------------------------------------------------------------------ a plain restatement


def reference(exposures: list[Exposure], rule: GroupingRule) -> list[tuple[str, ...]]:
    """The groups (member paths) by a direct, quadratic reading of docs/grouping.md."""
    order, key = shape(rule)
    limit = rule.max_days.get
    partitions: dict[tuple[str, ...], list[Exposure]] = {}
    for e in sorted(candidates(exposures, rule), key=lambda e: (e.mjd, e.path)):
        partitions.setdefault(tuple(str(e.value(k)) for k in rule.group_by), []).append(e)
    result = []
    for part in sorted(partitions):
        items = partitions[part]
        if order[0][2] is None:
            formed = [[e for _, name, _ in order for e in c if e.imtype == name]
                      for c in clusters(items, limit(key))
                      if all(any(e.imtype == name for e in c) for _, name, _ in order)]
        else:
            subs = [walk([e for e in items if e.imtype == name], count,
                         limit(letter * count) if count > 1 else None)
                    for letter, name, count in order]
            formed = subs[0] if len(subs) == 1 else pair(subs[0], subs[1], limit(key), rule.reuse)
        result += [tuple(e.path for e in f) for f in formed if len(f) >= rule.min_size]
    return result


def clusters(items, limit):
    out: list[list[Exposure]] = []
    for e in items:
        if out and (limit is None or e.mjd - out[-1][0].mjd <= limit):
            out[-1].append(e)
        else:
            out.append([e])
    return out


def walk(items, k, limit):
    out, i = [], 0
    while i + k <= len(items):
        if limit is None or items[i + k - 1].mjd - items[i].mjd <= limit:
            out.append(items[i : i + k])
            i += k
        else:
            i += 1
    return out


def pair(partners, anchors, limit, reuse):
    """jwst_reffiles getDDFFlist: least used partner in reach, first on ties."""
    uses, out = [0] * len(partners), []
    for anchor in anchors:
        best = None
        for j, partner in enumerate(partners):
            far = max(abs(a.mjd - b.mjd) for a in anchor for b in partner)
            if (reuse or not uses[j]) and (limit is None or far <= limit) and (
                    best is None or uses[j] < uses[best]):
                best = j
        if best is not None:
            uses[best] += 1
            out.append(partners[best] + anchor)
    return out


@settings(max_examples=200, deadline=None)
@given(catalogs(), rules)
def test_groups_match_the_plain_restatement(exposures, rule):
    assert [g.paths for g in build_groups(exposures, rule).groups] == reference(exposures, rule)


# ------------------------------------------------------------------ invariants


@settings(max_examples=200, deadline=None)
@given(catalogs(), rules, st.randoms(use_true_random=False))
def test_invariants(exposures, rule, rng: random.Random):
    result = build_groups(exposures, rule)
    by_path = {e.path: e for e in exposures}
    order, key = shape(rule)
    limits = {k: v for k, v in rule.max_days.items() if v is not None}
    grouped: Counter[str] = Counter()
    for group in result.groups:
        members = [by_path[p] for p in group.paths]
        assert len(set(group.paths)) == len(members), "an exposure twice in one group"
        grouped.update(set(group.paths))
        for keyword, value in group.partition:
            assert {str(m.value(keyword)) for m in members} == {str(value)}, "mixed partitions"
        assert [k for k, _ in group.partition] == list(rule.group_by)
        assert group.mjd_span == (min(m.mjd for m in members), max(m.mjd for m in members))
        by_type = {name: [m for m in members if m.imtype == name] for _, name, _ in order}
        roles = [f"{letter}{i}" for letter, name, _ in order
                 for i in range(1, len(by_type[name]) + 1)]
        assert [m.role for m in group.members] == roles
        for _, name, _ in order:
            assert by_type[name] == sorted(by_type[name], key=lambda e: (e.mjd, e.path))
        check_limits(by_type, order, key, limits)
        assert len(members) >= rule.min_size
        assert group.rule["max_days"] == {
            k: v for k, v in limits.items()
            if k == key or (k in {letter * (n or 1) for letter, _, n in order} and len(k) > 1)}
    if not rule.reuse:
        assert all(n == 1 for n in grouped.values()), "an exposure in two groups (reuse: false)"
    ids = [g.id for g in result.groups]
    assert len(ids) == len(set(ids)), "duplicate ids"
    left = [lo.path for lo in result.leftovers]
    assert len(left) == len(set(left)), "two leftovers for one exposure"
    assert all(lo.reason and lo.recipe == "r" for lo in result.leftovers)
    names = {name for _, name, _ in order}
    relevant = {e.path for e in exposures if e.imtype in names}
    assert set(left) | set(grouped) == relevant, "a candidate neither grouped nor explained"
    assert not set(left) & set(grouped), "a grouped exposure also has a leftover"
    shuffled = exposures[:]
    rng.shuffle(shuffled)
    assert build_groups(shuffled, rule) == result, "depends on input order"


def check_limits(by_type, order, key, limits):
    """No group breaks the time limits of its own subgroups or of the whole."""
    mjds = {name: [e.mjd for e in exps] for name, exps in by_type.items()}
    if order[0][2] is None:
        assert all(mjds[name] for _, name, _ in order), "a + group without every type"
        every = [t for ts in mjds.values() for t in ts]
        assert max(every) - min(every) <= limits.get(key, float("inf"))
        return
    for letter, name, count in order:
        assert len(mjds[name]) == count
        if count > 1:
            assert max(mjds[name]) - min(mjds[name]) <= limits.get(letter * count, float("inf"))
    *partners, (_, anchor, _) = order
    for _, partner, _ in partners:
        far = max(abs(a - b) for a in mjds[anchor] for b in mjds[partner])
        assert far <= limits.get(key, float("inf"))
