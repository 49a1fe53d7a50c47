"""``bad_pixel_mask`` of darks alone or flats alone, block by block (issue 15, item 8): the
same file whatever the block size, and one dark of one integration (a legacy ``bpm`` with
``imtypes: D``) still finds its hot pixel. Fast: the calibrated-looking ramps of
tests/plugins/test_plugins_blocks.py, no pipeline.
"""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits
from test_plugins_blocks import SHAPE, ramps, save  # noqa: F401 (ramps: the fixture)

from refsmith.plugins import blocks, load_plugin
from refsmith.plugins.builtin._common import flag_value
from refsmith.plugins.inputs import load_group

KINDS = {"darks": lambda darks, flats: darks, "flats": lambda darks, flats: flats,
         "one dark": lambda darks, flats: darks[:1]}


def make(ramps, kind: str, output):  # noqa: F811
    _, darks, flats = ramps
    chosen = KINDS[kind](darks, flats)
    members = [(f"{'F' if p in flats else 'D'}{i + 1}", str(p), str(p))
               for i, p in enumerate(chosen)]
    cls = load_plugin("bad_pixel_mask")
    group = load_group("bpm", "g1", members)
    save(cls().make(group, cls.Params(), str(output)), output)
    return fits.getdata(output, "DQ"), fits.getheader(output, 0)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_one_kind_of_input_by_blocks(ramps, tmp_path, kind, monkeypatch):  # noqa: F811
    whole, header = make(ramps, kind, tmp_path / "whole.fits")
    monkeypatch.setattr(blocks, "block_rows", lambda *args, **kwargs: 8)
    small, _ = make(ramps, kind, tmp_path / "small.fits")
    np.testing.assert_array_equal(small, whole)
    hot, dead = flag_value("HOT"), flag_value("DEAD")
    if kind == "flats":
        assert not np.any(whole & hot)
        assert "not run: HOT,UNRELIABLE_SLOPE (no darks)" in "".join(header["HISTORY"])
    else:  # the hot pixel of the darks: with one integration, the map's sigma decides
        assert whole[40, 30] & hot
        assert np.count_nonzero(whole & hot) == 1
        assert not np.any(whole & (dead | flag_value("LOW_QE")))
    assert SHAPE[2:] == whole.shape
