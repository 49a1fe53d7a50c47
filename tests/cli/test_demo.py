"""The demo's fixed pieces: its injected truth and its off-line CRDS choice (fast)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from refsmith.calibrate.offline import SERVERLESS_URL, server_config_path
from refsmith.cli import demo
from refsmith.config import load_config


def test_truth_is_fixed_per_detector_and_differs_between_detectors() -> None:
    a, again, b = demo.truth("NRCA1"), demo.truth("NRCA1"), demo.truth("NRCB1")
    assert a["read_noise"].shape == a["gain"].shape == demo.SHAPE[2:]
    assert np.array_equal(a["defects"].any, again["defects"].any)
    assert not np.array_equal(a["defects"].any, b["defects"].any)
    assert not np.array_equal(a["read_noise"], b["read_noise"])
    assert a["detector_seed"] != b["detector_seed"]
    assert not a["defects"].any[:4].any() and not a["defects"].any[:, :4].any()


def test_config_text_is_a_valid_config_with_the_five_recipes(tmp_path: Path) -> None:
    path = tmp_path / "refsmith.yaml"
    path.write_text(demo.DEMO_CONFIG % {"references": "    mask: refs/*/synth_*_mask.fits"})
    assert path.read_text().startswith(demo.MARKER)
    config = load_config(path)
    assert set(config.recipes) == {"readnoise", "superbias", "dark", "gain", "bad_pixel_mask"}
    assert config.pipeline.offline


@pytest.mark.parametrize(("server", "has_config", "configured"), [
    (SERVERLESS_URL, True, False),  # already off-line (a test session): kept
    ("https://jwst-crds.stsci.edu", True, True),  # a user's real CRDS: switched off-line
    (SERVERLESS_URL, False, True),  # serverless but no server_config: configured
])
def test_demo_uses_crds_offline_whatever_the_environment(
        tmp_path, monkeypatch, server, has_config, configured) -> None:
    cache = tmp_path / "user_crds"
    if has_config:
        server_config_path(cache).parent.mkdir(parents=True)
        server_config_path(cache).write_text("{}")
    monkeypatch.setenv("CRDS_PATH", str(cache))
    monkeypatch.setenv("CRDS_SERVER_URL", server)
    calls = []
    monkeypatch.setattr("refsmith.calibrate.offline.configure_offline", calls.append)
    demo._offline_crds(tmp_path / "demo")
    assert calls == ([tmp_path / "demo" / "out" / "crds"] if configured else [])


def test_demo_refuses_a_directory_that_is_not_its_own(tmp_path, capsys):
    from refsmith.cli import main

    project = tmp_path / "project"
    project.mkdir()
    (project / "refsmith.yaml").write_text("recipes: {readnoise: {imtypes: DD}}\n")
    assert main(["demo", str(project)]) == 2
    assert "not a refsmith demo directory" in capsys.readouterr().err
    assert (project / "refsmith.yaml").read_text() == "recipes: {readnoise: {imtypes: DD}}\n"
    assert sorted(p.name for p in project.iterdir()) == ["refsmith.yaml"]
