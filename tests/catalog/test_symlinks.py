"""Symlinked inputs: known by their target (identity, dedupe), classified by the name the
user gave them, as jwst_reffiles did (issue 15, item 6)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from refsmith.catalog.catalog import read_exposure, scan
from refsmith.catalog.classify import TypeRule
from refsmith.catalog.discovery import discover
from refsmith.catalog.options import CatalogOptions
from refsmith.synthetic.headers import write_exposure

# the rules a legacy mkrefs.cfg becomes (file names only, no EXP_TYPE table)
RULES = (TypeRule("dark", "D", {}, pattern="Bias|Dark|BIAS|DARK|ZERO"),
         TypeRule("flat", "F", {}, pattern="^(?!.*(?:Bias|Dark|BIAS|DARK|ZERO))(?:.*(?:GAIN|LIN))"))
OPTIONS = CatalogOptions(type_rules=RULES, pattern=r"_uncal\.fits$")


@pytest.fixture
def linked(tmp_path: Path) -> Path:
    """14 archive-named exposures in store/, linked from links/ as NRCA1_DARK_*."""
    store, links = tmp_path / "store", tmp_path / "links"
    links.mkdir()
    for i in range(14):
        target = write_exposure(store / f"jw01234{i:03d}001_01101_00001_nrca1_uncal.fits",
                                mjd=60000.0 + 0.1 * i)
        (links / f"NRCA1_DARK_{i:03d}_uncal.fits").symlink_to(target)
    return tmp_path


def test_links_are_classified_by_their_own_name(linked):
    catalog = scan([str(linked / "links")], OPTIONS)
    assert len(catalog.exposures) == 14
    assert [e.imtype for e in catalog.exposures] == ["dark"] * 14
    assert catalog.counts() == {"dark": 14, "unclassified": 0, "unusable": 0}
    # the file is known by its target
    assert all(Path(e.path).parent == linked / "store" for e in catalog.exposures)
    assert catalog.discovery.names == {
        str(linked / "store" / f"jw01234{i:03d}001_01101_00001_nrca1_uncal.fits"):
            f"NRCA1_DARK_{i:03d}_uncal.fits" for i in range(14)}


def test_links_named_one_by_one_in_a_glob_and_in_a_list(linked):
    names = sorted(str(p) for p in (linked / "links").iterdir())
    for inputs in (names, [str(linked / "links" / "*DARK*")]):
        assert [e.imtype for e in scan(inputs, OPTIONS).exposures] == ["dark"] * 14
    listing = linked / "inputs.txt"
    listing.write_text("\n".join(os.path.relpath(n, linked) for n in names) + "\n")
    assert [e.imtype for e in scan([f"@{listing}"], OPTIONS).exposures] == ["dark"] * 14


def test_a_target_reached_twice_is_one_exposure_named_as_first_given(linked):
    links = str(linked / "links")
    store = str(linked / "store")
    catalog = scan([links, store], OPTIONS)
    assert len(catalog.exposures) == 14 and catalog.discovery.duplicates == 14
    assert [e.imtype for e in catalog.exposures] == ["dark"] * 14
    # given under its own name first: that name is what classifies it
    catalog = scan([store, links], OPTIONS)
    assert len(catalog.exposures) == 14
    assert [e.imtype for e in catalog.exposures] == [None] * 14
    assert catalog.discovery.names == {}


def test_the_cache_does_not_carry_the_name(linked, tmp_path):
    options = CatalogOptions(type_rules=RULES, pattern=r"_uncal\.fits$",
                             cache=tmp_path / "cache.sqlite")
    assert [e.imtype for e in scan([str(linked / "store")], options).exposures] == [None] * 14
    warm = scan([str(linked / "links")], options)
    assert warm.cache_hits == 14
    assert [e.imtype for e in warm.exposures] == ["dark"] * 14


def test_read_exposure_classifies_a_link_by_its_name(linked):
    link = linked / "links" / "NRCA1_DARK_003_uncal.fits"
    exposure = read_exposure(str(link), OPTIONS)
    assert exposure.imtype == "dark"
    assert exposure.path == os.path.realpath(link)
    assert read_exposure(exposure.path, OPTIONS).imtype is None


def test_a_link_with_its_targets_name_needs_no_entry(tmp_path):
    target = write_exposure(tmp_path / "a" / "NRCA1_DARK_1_uncal.fits")
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / target.name).symlink_to(target)
    found = discover([str(tmp_path / "b")], None)
    assert found.paths == [str(target)] and found.names == {}
