"""The recipe shapes of grouping: the walks, clusters and partner search that form groups
per shape (:mod:`refsmith.grouping.imtypes` parses the shape), and the wording of leftover
reasons: :func:`counted` (``DD``, ``DDFF``...) and :func:`all_of` (``D+``, ``DF+``) form one
partition's groups.

Used by :func:`refsmith.grouping.build.build_groups`; see docs/grouping.md.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from refsmith.grouping.imtypes import Part, canonical_imtypes
from refsmith.model import Exposure

if TYPE_CHECKING:
    from refsmith.grouping.rule import GroupingRule


def time_order(exposure: Exposure) -> tuple[float, str]:
    return (exposure.mjd or 0.0, exposure.path)


# --------------------------------------------------------------------------- wording


def _plural(name: str, n: int = 2) -> str:
    if n == 1:
        return name
    return name + ("es" if name.endswith(("s", "x", "ch", "sh")) else "s")


def _count(n: int, name: str) -> str:
    return f"{n} {_plural(name, n)}"


def _noun(part: Part, many: bool = False) -> str:
    """'dark', 'dark pair', 'set of 3 darks' (``many``: the plural)."""
    k = part.count or 1
    if k == 1:
        return _plural(part.name, 2 if many else 1)
    if k == 2:
        return f"{part.name} pair" + ("s" if many else "")
    return f"set{'s' if many else ''} of {k} {_plural(part.name)}"


def _days(x: float) -> str:
    return f"{x:.2f}" if x == 0 or abs(x) >= 0.01 else f"{x:.2g}"


def _names(exposures: Sequence[Exposure]) -> str:
    return ", ".join(e.name for e in exposures)



# --------------------------------------------------------------------------- building blocks


Formed = tuple[tuple[Exposure, ...], ...]  # one would-be group: members per part
Reasons = dict[str, str]  # path -> why it is in no group


@dataclass(frozen=True)
class Partition:
    """One partition's candidates of each part, sorted by (time, path)."""

    label: str  # 'NRCA1/FULL/RAPID'
    by_type: Mapping[str, Sequence[Exposure]]


def _walk(items: Sequence[Exposure], part: Part, limit: float | None, label: str
          ) -> tuple[list[tuple[Exposure, ...]], Reasons]:
    """k of one type: take the next k when they span <= limit, else leave the first out."""
    k, n = part.count or 1, len(items)
    groups: list[tuple[Exposure, ...]] = []
    reasons: Reasons = {}
    if n < k:
        why = f"partition {label} has {_count(n, part.name)}, {part.key} needs {k}"
        return groups, {e.path: why for e in items}
    i = 0
    while i < n:
        if i + k <= n and (limit is None or items[i + k - 1].mjd - items[i].mjd <= limit):
            groups.append(tuple(items[i : i + k]))
            i += k
        else:
            reasons[items[i].path] = _walk_reason(items, i, part, limit, label)
            i += 1
    return groups, reasons


def _walk_reason(items: Sequence[Exposure], i: int, part: Part, limit: float | None,
                 label: str) -> str:
    k, here = part.count or 1, items[i]
    if limit is not None:
        gaps = [(here.mjd - items[i - 1].mjd, items[i - 1])] if i > 0 else []
        gaps += [(items[i + 1].mjd - here.mjd, items[i + 1])] if i + 1 < len(items) else []
        gap, other = min(gaps, key=lambda g: g[0])
        if gap > limit:
            return f"no {part.name} within {limit} d (nearest {_days(gap)} d: {other.name})"
    if i + k > len(items):
        left = len(items) - i
        verb = "remains" if left == 1 else "remain"
        return (f"only {_count(left, part.name)} {verb} at the end of partition {label}, "
                f"{part.key} needs {k}")
    last = items[i + k - 1]
    span = _days(last.mjd - here.mjd)
    if k == 2:
        return f"next {part.name} {span} d later exceeds {part.key} max {limit} d ({last.name})"
    return (f"this and the next {_count(k - 1, part.name)} span {span} d, exceeding "
            f"{part.key} max {limit} d (last: {last.name})")


def _clusters(items: Sequence[Exposure], limit: float) -> list[list[Exposure]]:
    """Greedy chronological clusters: each starts at the earliest exposure not yet in
    one and takes every later exposure within ``limit`` days of that start."""
    clusters: list[list[Exposure]] = []
    for exposure in items:
        if clusters and exposure.mjd - clusters[-1][0].mjd <= limit:
            clusters[-1].append(exposure)
        else:
            clusters.append([exposure])
    return clusters


class _LeastUsed:
    """Segment tree: the (uses, index) minimum over an index range, with point updates."""

    def __init__(self, n: int) -> None:
        self.size = 1 << max(n - 1, 0).bit_length()
        self.tree: list[tuple[float, int]] = [(math.inf, -1)] * (2 * self.size)
        for j in range(n):
            self.tree[self.size + j] = (0, j)
        for node in range(self.size - 1, 0, -1):
            self.tree[node] = min(self.tree[2 * node], self.tree[2 * node + 1])

    def set(self, j: int, uses: float) -> None:
        node = self.size + j
        self.tree[node] = (uses, j)
        while node > 1:
            node //= 2
            self.tree[node] = min(self.tree[2 * node], self.tree[2 * node + 1])

    def best(self, lo: int, hi: int) -> tuple[float, int]:
        """Least used index in [lo, hi), the earliest on ties ((inf, -1) if none)."""
        result: tuple[float, int] = (math.inf, -1)
        lo += self.size
        hi += self.size
        while lo < hi:
            if lo & 1:
                result = min(result, self.tree[lo])
                lo += 1
            if hi & 1:
                hi -= 1
                result = min(result, self.tree[hi])
            lo //= 2
            hi //= 2
        return result


class _Spans:
    """First and last MJD of chronological, non-overlapping subgroups (both sorted)."""

    def __init__(self, subgroups: Sequence[tuple[Exposure, ...]]) -> None:
        self.subgroups = subgroups
        self.firsts = [g[0].mjd for g in subgroups]
        self.lasts = [g[-1].mjd for g in subgroups]

    def _first_true(self, predicate: Callable[[int], bool]) -> int:
        return bisect_left(range(len(self.subgroups)), True, key=predicate)

    def reach(self, first: float, last: float, limit: float | None) -> tuple[int, int]:
        """Index range of subgroups whose every member is within ``limit`` of every
        time in [first, last]: max(own last - first, last - own first) <= limit."""
        if limit is None:
            return 0, len(self.subgroups)
        lo = self._first_true(lambda j: last - self.firsts[j] <= limit)
        hi = self._first_true(lambda j: self.lasts[j] - first > limit)
        return lo, hi

    def nearest(self, first: float, last: float) -> tuple[float, int]:
        """Smallest largest-|dt| to [first, last] over the subgroups, and its index."""
        cross = self._first_true(lambda j: self.lasts[j] - first >= last - self.firsts[j])
        near = [j for j in (cross - 1, cross) if 0 <= j < len(self.subgroups)]
        return min((max(self.lasts[j] - first, last - self.firsts[j]), j) for j in near)


# --------------------------------------------------------------------------- the shapes


def counted(rule: GroupingRule, parts: Sequence[Part], partition: Partition
             ) -> tuple[list[Formed], Reasons]:
    """``D``, ``DD``, ``DDFF``, ``BBDDFF``...: walk every type; then, if there are
    several, give each subgroup of the last type (the anchor) one subgroup of each other
    type (its partners) within max_days[<canonical imtypes>], least used first."""
    reasons: Reasons = {}
    subgroups: dict[str, list[tuple[Exposure, ...]]] = {}
    for part in parts:
        limit = rule.max_days_limit(part.key) if (part.count or 1) > 1 else None
        subgroups[part.name], why = _walk(partition.by_type[part.name], part, limit,
                                          partition.label)
        reasons.update(why)
    *partners, anchor = parts
    if not partners:
        return [(g,) for g in subgroups[anchor.name]], reasons
    key = canonical_imtypes(parts)
    limit = rule.max_days_limit(key)
    spans = {p.name: _Spans(subgroups[p.name]) for p in partners}
    trees = {p.name: _LeastUsed(len(subgroups[p.name])) for p in partners}
    uses = {p.name: [0] * len(subgroups[p.name]) for p in partners}
    formed: list[Formed] = []
    for group in subgroups[anchor.name]:
        first, last = group[0].mjd, group[-1].mjd
        chosen: list[tuple[Part, int]] = []
        for partner in partners:
            lo, hi = spans[partner.name].reach(first, last, limit)
            used, j = trees[partner.name].best(lo, hi) if lo < hi else (math.inf, -1)
            if j < 0 or used == math.inf:
                why = _no_partner(rule, partition, anchor, partner, spans[partner.name],
                                  group, key, limit, lo < hi)
                reasons.update({e.path: why for e in group})
                break
            chosen.append((partner, j))
        else:
            for partner, j in chosen:
                uses[partner.name][j] += 1
                trees[partner.name].set(j, uses[partner.name][j] if rule.reuse else math.inf)
            formed.append((*(subgroups[p.name][j] for p, j in chosen), group))
    anchors = _Spans(subgroups[anchor.name])
    for partner in partners:
        for j, group in enumerate(subgroups[partner.name]):
            if not uses[partner.name][j]:
                why = _unused(rule, partition, (anchor, partner), anchors, group, key, limit)
                reasons.update({e.path: why for e in group})
    return formed, reasons


def _too_few(rule: GroupingRule, partition: Partition, part: Part) -> str:
    """Why a partition has no subgroup of ``part`` (a counted type) at all."""
    n, k = len(partition.by_type[part.name]), part.count or 1
    if n < k:
        return f"partition {partition.label} has {_count(n, part.name)}, {part.key} needs {k}"
    return (f"no {_count(k, part.name)} of partition {partition.label} lie within "
            f"{part.key} max {rule.max_days_limit(part.key)} d")


def _no_partner(rule: GroupingRule, partition: Partition, anchor: Part, partner: Part,
                spans: _Spans, group: Sequence[Exposure], key: str, limit: float | None,
                in_reach: bool) -> str:
    """Why an anchor subgroup (a flat pair) found no partner (dark pair)."""
    this, other = _noun(anchor), _noun(partner)
    if not spans.subgroups:
        return f"{this} has no {other}: {_too_few(rule, partition, partner)}"
    within = f" within {key} max {limit} d" if limit is not None else ""
    if in_reach:
        return f"{this} has no unused {other}{within} (reuse: false)"
    gap, j = spans.nearest(group[0].mjd, group[-1].mjd)
    return (f"{this} has no {other}{within} "
            f"(nearest {_days(gap)} d: {_names(spans.subgroups[j])})")


def _unused(rule: GroupingRule, partition: Partition, roles: tuple[Part, Part],
            anchors: _Spans, group: Sequence[Exposure], key: str, limit: float | None) -> str:
    """Why a partner subgroup (a dark pair) serves no group."""
    anchor, partner = roles
    this = f"{_noun(partner)} unused"
    if not anchors.subgroups:
        return f"{this}: {_too_few(rule, partition, anchor)}"
    within = f" within {key} max {limit} d" if limit is not None else ""
    lo, hi = anchors.reach(group[0].mjd, group[-1].mjd, limit)
    if lo >= hi:
        gap, j = anchors.nearest(group[0].mjd, group[-1].mjd)
        return (f"{this}: no {_noun(anchor)}{within} "
                f"(nearest {_days(gap)} d: {_names(anchors.subgroups[j])})")
    return (f"{this}: the {_noun(anchor, many=True)}{within} took less used or earlier "
            f"{_noun(partner, many=True)}")


def all_of(rule: GroupingRule, parts: Sequence[Part], partition: Partition
            ) -> tuple[list[Formed], Reasons]:
    """``D+``, ``DF+``: everything of the partition in one group, or in chronological
    clusters of at most max_days[<canonical imtypes>]; every type must be present."""
    key = canonical_imtypes(parts)
    limit = rule.max_days_limit(key)
    items = sorted((e for p in parts for e in partition.by_type[p.name]), key=time_order)
    clusters = _clusters(items, limit) if limit is not None else [items] if items else []
    formed: list[Formed] = []
    reasons: Reasons = {}
    for cluster in clusters:
        present = {e.imtype for e in cluster}
        missing = [_plural(p.name) for p in parts if p.name not in present]
        if not missing:
            formed.append(tuple(tuple(e for e in cluster if e.imtype == p.name) for p in parts))
            continue
        where = f"partition {partition.label}"
        if limit is not None:
            where = (f"the {key} max {limit} d cluster from {cluster[0].name} "
                     f"(MJD {cluster[0].mjd:.3f}) in {where}")
        needs = " and ".join(_plural(p.name) for p in parts)
        why = f"{key} needs {needs}; {where} has no {' and no '.join(missing)}"
        reasons.update({e.path: why for e in cluster})
    return formed, reasons


