"""Recipes are checked against their plug-ins when the plan is made (issue 15, item 4):
parameters (config ``params`` and ``--param``), reftype, and the image types and steps the
plug-in declares it needs (``ReffilePlugin.needs``). A refused recipe is a config error
with file:line (for a legacy config, the line of the key it came from), before any job
runs; a plug-in that declares nothing is not checked.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from refsmith.cli import main
from refsmith.config import load_config
from refsmith.errors import ConfigError
from refsmith.plan import build_plan, check_plugins
from refsmith.plugins import (
    BUILTIN_PLUGINS,
    Needs,
    declared_plugin,
    describe_plugins,
    load_plugin,
)
from refsmith.synthetic.headers import write_exposure

SHIPPED = Path(__file__).parents[1] / "data" / "legacy" / "jwst_reffiles"
# mkrefs_miri_defaults.cfg's bad_pixel_mask keys that are jwst_reffiles' own parameters
# (badpix_from_flats): refsmith's bad_pixel_mask takes none of them
JWST_REFFILES_KEYS = (
    "dead_search", "low_qe_and_open_search", "dead_search_type", "sigma_threshold",
    "smoothing_box_width", "dead_sigma_threshold", "dead_zero_signal_fraction",
    "max_dead_norm_signal", "max_low_qe_norm_signal", "max_open_adj_norm_signal",
    "quality_check")


def config_file(tmp_path: Path, recipes: str, name: str = "refsmith.yaml") -> Path:
    path = tmp_path / name
    path.write_text("inputs: {paths: [raw]}\noutput: {root: out}\nrecipes:\n" +
                    textwrap.indent(textwrap.dedent(recipes), "  "))
    return path


def line_of(path: Path, text: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if text in line)


def refused(path: Path, params: dict | None = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        check_plugins(load_config(path), params or {})
    return str(info.value).splitlines()


# ---------------------------------------------------------------- the declarations


def test_every_builtin_declares_what_it_needs_without_numerical_code():
    for name in BUILTIN_PLUGINS:
        declared, plugin = declared_plugin(name), load_plugin(name)
        assert issubclass(plugin, declared) and declared.name == name
        assert isinstance(plugin.needs, Needs) and plugin.needs.ramps
        assert plugin.Params is declared.Params
    code = ("import sys; from refsmith.plugins.registry import BUILTIN_PLUGINS, "
            "declared_plugin\n[declared_plugin(n) for n in BUILTIN_PLUGINS]\n"
            "print(sorted(m for m in ('numpy', 'astropy', 'stdatamodels') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"
    rows = {row["name"]: row for row in describe_plugins()}  # refsmith plugins shows them
    assert rows["bad_pixel_mask"]["needs"] == {"all_of": "", "any_of": "DF", "ramps": True}


@pytest.mark.parametrize(("needs", "imtypes", "problem"), [
    (Needs(all_of="D"), "D+", ""),
    (Needs(all_of="D"), "F+", "needs darks (D) in every group"),
    (Needs(all_of="DD"), "D", "needs 2 darks (DD) in every group"),
    (Needs(all_of="DD"), "DD", ""),
    (Needs(all_of="DDFF"), "DDF", "needs 2 flats (FF) in every group"),
    (Needs(all_of="DDFF"), "DF+", ""),
    (Needs(any_of="DF"), "F+", ""),
    (Needs(any_of="DF"), "D", ""),
    (Needs(any_of="DF"), "B+", "needs darks (D) or flats (F)"),
])
def test_needs_against_imtypes(needs, imtypes, problem):
    from refsmith.grouping.imtypes import parse_imtypes

    letters = {"D": "dark", "F": "flat", "B": "bias"}
    assert needs.imtypes_problem(parse_imtypes(imtypes, letters), letters) == problem


# ---------------------------------------------------------------- refsmith configs


def test_unknown_and_bad_parameters_are_config_errors_at_their_lines(tmp_path):
    path = config_file(tmp_path, """\
        readnoise:
          imtypes: DD
          steps: dq_init-
          params:
            sigma_clp: 3
            combine: average
        """)
    assert refused(path) == [
        f"{path}:{line_of(path, 'sigma_clp')}: recipes.readnoise.params.sigma_clp: unknown "
        "parameter of plug-in 'readnoise'; did you mean 'sigma_clip'?",
        f"{path}:{line_of(path, 'combine:')}: recipes.readnoise.params.combine: plug-in "
        "'readnoise': Input should be 'clipped_mean', 'median' or 'mean'",
        "plug-in 'readnoise' takes: author, combine, combine_sigma, description, pedigree, "
        "selectors, sigma_clip, useafter, validate, vote_fraction (refsmith plugins "
        "describes them)",
    ]


def test_imtypes_steps_and_reftype_the_plugin_cannot_use(tmp_path):
    path = config_file(tmp_path, """\
        dark: {imtypes: F+, steps: linearity-}
        readnoise: {imtypes: DD, steps: [dq_init, rate]}
        mask: {imtypes: D+, steps: linearity-, plugin: gain}
        """)
    lines = refused(path)
    assert lines == [
        f"{path}:4: recipes.dark.imtypes: 'F+', but plug-in 'dark' needs darks (D) in every "
        "group (its default: D+)",
        f"{path}:5: recipes.readnoise.steps: 'dq_init ramp_fit' includes ramp_fit (the inputs "
        "would be slopes), but plug-in 'readnoise' reads ramps: stop before ramp_fit (its "
        "default: dq_init-)",
        f"{path}:6: recipes.mask.reftype: 'mask', but plug-in 'gain' makes reftype 'gain'",
        f"{path}:6: recipes.mask.imtypes: 'D+', but plug-in 'gain' needs 2 flats (FF) in every "
        "group (its default: DDFF)",
    ]


def test_masks_of_darks_or_flats_alone_are_fine(tmp_path):
    path = config_file(tmp_path, """\
        hot: {reftype: mask, plugin: bad_pixel_mask, imtypes: D+, steps: linearity-}
        dead: {reftype: mask, plugin: bad_pixel_mask, imtypes: F+, steps: linearity-}
        """)
    assert check_plugins(load_config(path)) == []


def test_command_line_parameters_are_checked_too(tmp_path):
    path = config_file(tmp_path, "readnoise: {imtypes: DD, steps: dq_init-}\n")
    config = load_config(path)
    assert check_plugins(config, {"readnoise.sigma_clip": 3.0, "author": "me"}) == []
    with pytest.raises(ConfigError) as info:
        check_plugins(config, {"readnoise.sigma_clip": "lots", "readnose.author": "x",
                               "box": 4})
    assert str(info.value).splitlines()[:3] == [
        "--param readnose.author: no recipe 'readnose' in the config (recipes: readnoise)",
        "--param readnoise.sigma_clip: plug-in 'readnoise': Input should be a valid number, "
        "unable to parse string as a number",
        "--param readnoise.box: unknown parameter of plug-in 'readnoise'",
    ]
    # build_plan checks before it reads a header
    with pytest.raises(ConfigError, match=r"--param readnoise\.box"):
        build_plan(config, params={"box": 4})


def test_plugins_that_declare_nothing_are_not_checked_and_unimportable_ones_warn(tmp_path):
    path = config_file(tmp_path, """\
        bias: {reftype: superbias, imtypes: F+, steps: [rate], plugin: "example_plugin:MedianBias",
               params: {offset: 1.0}}
        gone: {reftype: superbias, imtypes: D+, plugin: "no_such_module_xyz:Thing"}
        """)
    warnings = check_plugins(load_config(path))
    assert len(warnings) == 1 and "recipe 'gone': plug-in 'no_such_module_xyz:Thing' cannot be " \
        "checked here: cannot import module" in warnings[0]
    bad = config_file(tmp_path, 'bias: {reftype: superbias, imtypes: D+, plugin: '
                      '"example_plugin:MedianBias", params: {ofset: 1}}\n', "bad.yaml")
    assert refused(bad)[0] == (f"{bad}:4: recipes.bias.params.ofset: unknown parameter of "
                               "plug-in 'example_plugin:MedianBias'; did you mean 'offset'?")


def test_plan_exits_2_before_reading_any_header(tmp_path, capsys, monkeypatch):
    path = config_file(tmp_path, "readnoise: {imtypes: DD, params: {sigma: 3}}\n")
    write_exposure(tmp_path / "raw" / "jw_a_uncal.fits")
    monkeypatch.chdir(tmp_path)
    assert main(["plan", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}:4: recipes.readnoise.params.sigma: unknown parameter" in err
    assert not (tmp_path / "out" / "catalog.sqlite").exists()


# ---------------------------------------------------------------- the legacy config


def test_shipped_miri_defaults_cfg_is_refused_at_the_lines_of_its_keys(tmp_path, monkeypatch):
    """Its bad_pixel_mask gives jwst_reffiles' own parameters and slope inputs
    (``ssbsteps: slope-``) to refsmith's bad_pixel_mask, which reads ramps: every line is
    named at plan time (it was exit 0, then every job failed)."""
    shutil.copy(SHIPPED / "mkrefs_miri_defaults.cfg", tmp_path / "mkrefs_miri_defaults.cfg")
    monkeypatch.setenv("JWST_MKREFS_OUTDIR", str(tmp_path / "out"))
    path = tmp_path / "mkrefs_miri_defaults.cfg"
    errors = refused(path)
    found = {}
    for line in errors:
        match = re.match(rf"{re.escape(str(path))}:(\d+): (\S+) \(from (\S+)\): (.*)", line)
        if match:
            found[match.group(3)] = (int(match.group(1)), match.group(2), match.group(4))
    for key in JWST_REFFILES_KEYS:
        line, where, message = found[f"bad_pixel_mask.{key}"]
        assert line == line_of(path, f"    {key}:")
        assert where == f"recipes.bad_pixel_mask.params.{key}"
        assert message.startswith("unknown parameter of plug-in 'bad_pixel_mask'")
    line, where, message = found["bad_pixel_mask.ssbsteps"]
    assert (line, where) == (line_of(path, "ssbsteps: slope-"), "recipes.bad_pixel_mask.steps")
    assert "includes ramp_fit" in message and "reads ramps" in message
    # F+ is a mask from flats alone: fine; do_not_use names JWST flags: fine
    assert "bad_pixel_mask.imtypes" not in found and "bad_pixel_mask.do_not_use" not in found
    assert any(e.startswith("plug-in 'bad_pixel_mask' takes: ") for e in errors)
