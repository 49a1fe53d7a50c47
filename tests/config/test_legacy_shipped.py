"""The two configs jwst_reffiles ships, translated as they are (issue 15), and the legacy
translations they need: ``ssb_save_steps: None``, ``runID: AUTO``, reflabels without a
plug-in of their name, reflabel keys, ``test4ssb``/``test4datamodel``.

The plan of these configs on files (and symlinks) is tested in tests/cli/test_legacy_cli.py.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from refsmith.config import legacy, load_config, parse_config
from refsmith.errors import ConfigError
from refsmith.plan import run_dir_for

SHIPPED = Path(__file__).parents[1] / "data" / "legacy" / "jwst_reffiles"
MKREFS = SHIPPED / "mkrefs.cfg"
MIRI_DEFAULTS = SHIPPED / "mkrefs_miri_defaults.cfg"
# the 12 keys of mkrefs_miri_defaults.cfg's bad_pixel_mask that are jwst_reffiles' own
# plug-in parameters (badpix_from_flats), kept as params for the plug-in to check
JWST_REFFILES_PARAMS = {
    "dead_search": True, "low_qe_and_open_search": True, "dead_search_type": "zero_signal",
    "sigma_threshold": 3, "smoothing_box_width": 15, "dead_sigma_threshold": 5.0,
    "dead_zero_signal_fraction": 0.9, "max_dead_norm_signal": 0.05,
    "max_low_qe_norm_signal": 0.5, "max_open_adj_norm_signal": 1.05,
    "do_not_use": ["DEAD", "LOW_QE", "OPEN", "ADJ_OPEN"], "quality_check": False,
}


@pytest.fixture
def outdir(tmp_path, monkeypatch):
    monkeypatch.setenv("JWST_MKREFS_OUTDIR", str(tmp_path / "mkrefs_out"))
    return tmp_path / "mkrefs_out"


def parse(text: str):
    return parse_config(textwrap.dedent(text), source="mkrefs.cfg")


def notices_of(config) -> str:
    return "\n".join(config.notices)


# ---------------------------------------------------------------- the shipped configs


def test_shipped_mkrefs_cfg_loads_as_it_is(outdir):
    config = load_config(MKREFS)
    assert config.legacy and config.instrument == "NIRCAM"
    recipes = {name: (r.plugin, r.reftype, r.imtypes, r.steps, r.save_steps, r.params)
               for name, r in config.recipes.items()}
    assert recipes == {
        "gain_armin": ("gain", "gain", "DDFF", ["superbias-"], [], {}),
        "bpm": ("bad_pixel_mask", "mask", "D", ["refpix-"], [], {}),
        # test1 was a parameter of jwst_reffiles' own rdnoise_nircam: not the built-in's
        "rdnoise_nircam": ("readnoise", "readnoise", "DD", ["dq_init"], [], {}),
    }
    assert config.output.root == f"{outdir}/test1" and config.output.run == "run###"
    assert run_dir_for(config) == outdir / "test1" / "run000"
    notices = notices_of(config)
    for label, builtin in (("gain_armin", "gain"), ("bpm", "bad_pixel_mask"),
                           ("rdnoise_nircam", "readnoise")):
        assert f"{label}: no plug-in named {label!r} is installed" in notices
        assert f"made by the built-in plug-in {builtin!r}" in notices
    assert "validation: ignored" in notices and "test4ssb: True" not in notices
    assert ("rdnoise_nircam: test1 not passed to the built-in 'readnoise' (parameters of "
            "jwst_reffiles' own rdnoise_nircam plug-in; the built-in's are given with --param "
            "rdnoise_nircam.KEY=VALUE") in notices


def test_shipped_miri_defaults_cfg_loads_as_it_is(outdir):
    config = load_config(MIRI_DEFAULTS)
    # bpm is listed in reflabels, but this file has no bpm section
    assert list(config.recipes) == ["bad_pixel_mask", "gain_armin", "rdnoise_nircam"]
    mask = config.recipes["bad_pixel_mask"]
    assert (mask.plugin, mask.reftype, mask.imtypes, mask.steps, mask.save_steps) == (
        "bad_pixel_mask", "mask", "F+", ["ramp_fit-"], [])
    # jwst_reffiles' own parameters stay params (the plug-in reports those it does not
    # know); author ... useafter are refsmith's parameters of those names; history is not
    assert mask.params == {
        **JWST_REFFILES_PARAMS, "author": "jwst_reffiles",
        "description": "This is a bad pixel mask", "pedigree": "GROUND",
        "useafter": "2019-04-01 00:00:00", "validate": "pipeline"}
    # test4ssb: True -> every recipe validates its files with the pipeline
    assert {name: r.params.get("validate") for name, r in config.recipes.items()} == dict.fromkeys(
        config.recipes, "pipeline")
    notices = notices_of(config)
    assert "reflabels: 'bpm' has no section of its own; skipped" in notices
    assert "bad_pixel_mask.history: ignored (refsmith writes the file's HISTORY" in notices
    assert "test4ssb: True -> params.validate: pipeline on every recipe" in notices
    assert "not part of refsmith" not in notices
    assert "bad_pixel_mask: no plug-in named" not in notices  # it is the built-in's name


def test_the_notices_never_call_a_translated_key_unknown(outdir):
    for path in (MKREFS, MIRI_DEFAULTS):
        notices = notices_of(load_config(path))
        for key in ("test4ssb", "test4datamodel", "history", "runID"):
            assert f"{key}: unknown" not in notices and f".{key}: unknown" not in notices


# ---------------------------------------------------------------- 1. ssb_save_steps: None

RECIPE = """\
    reflabels: [rdnoise]
    inputfiles: {{dark_pattern: DARK}}
    rdnoise:
        reftype: rdnoise
        imtypes: DD
        ssbsteps: {steps}
        ssb_save_steps: {save}
    """


@pytest.mark.parametrize("save", ["None", "none", "", "[]", "'[]'", "'None'", "null",
                                  "[None]", "NONE"])
def test_ssb_save_steps_none_means_nothing_to_save(save):
    config = parse(RECIPE.format(steps="dq_init-", save=save))
    assert config.recipes["rdnoise"].save_steps == []
    assert config.recipes["rdnoise"].steps == ["dq_init-"]


def test_ssbsteps_none_means_no_steps_and_real_steps_still_checked():
    assert parse(RECIPE.format(steps="None", save="None")).recipes["rdnoise"].steps == []
    with pytest.raises(ConfigError, match=r"mkrefs.cfg:7: recipes.rdnoise.save_steps "
                                          r"\(from rdnoise.ssb_save_steps\): unknown "
                                          r"calwebb_detector1 step 'nothing'"):
        parse(RECIPE.format(steps="dq_init-", save="nothing"))


# ---------------------------------------------------------------- 2. runID: AUTO


def test_runid_auto_is_the_latest_run_and_new_run_the_next(outdir):
    config = load_config(MKREFS)
    base = outdir / "test1"
    assert run_dir_for(config) == base / "run000"  # the first run
    assert run_dir_for(config, new_run=True) == base / "run000"
    (base / "run000").mkdir(parents=True)
    assert run_dir_for(config) == base / "run000"  # resumed, not run001
    assert run_dir_for(config, new_run=True) == base / "run001"
    (base / "run001").mkdir()
    (base / "run7").mkdir()  # jwst_reffiles took any number of digits
    assert load_config(MKREFS).output.run == "run###"  # loading twice changes nothing
    assert run_dir_for(config) == base / "run7"
    assert run_dir_for(config, new_run=True) == base / "run008"


def test_new_run_needs_numbered_runs_and_no_run_dir(outdir, tmp_path):
    numbered = load_config(MKREFS)
    with pytest.raises(ConfigError, match="--new-run and --run-dir exclude each other"):
        run_dir_for(numbered, str(tmp_path / "mine"), new_run=True)
    fixed = parse("""\
        reflabels: [rdnoise]
        inputfiles: {dark_pattern: DARK}
        output: {outrootdir: /out, runID: 4, runIDNdigits: 3}
        rdnoise: {reftype: rdnoise, imtypes: DD, ssbsteps: dq_init}
        """)
    assert fixed.output.run == "run004"
    with pytest.raises(ConfigError, match=r"--new-run needs numbered runs, but output.run "
                                          r"is 'run004': write output.run: run###"):
        run_dir_for(fixed, new_run=True)


def test_refsmith_configs_may_number_their_runs_too(tmp_path):
    config = parse_config("output: {root: out, run: cal_##}\n"
                          "recipes: {readnoise: {imtypes: DD}}\n", source="c.yaml",
                          base_dir=tmp_path)
    assert run_dir_for(config) == tmp_path / "out" / "cal_00"
    (tmp_path / "out" / "cal_00").mkdir(parents=True)
    assert run_dir_for(config, new_run=True) == tmp_path / "out" / "cal_01"
    with pytest.raises(ConfigError, match=r"c.yaml:1: output.run: .*the '#'s of a numbered "
                                          r"run must stand together"):
        parse_config("output: {run: a#b#}\nrecipes: {readnoise: {imtypes: DD}}\n",
                     source="c.yaml")


# ---------------------------------------------------------------- 3. reflabels and plug-ins


LABELS = """\
    reflabels: [rdnoise_nircam, lin_armin, gain]
    inputfiles: {dark_pattern: DARK, flat_pattern: FLAT}
    rdnoise_nircam: {reftype: rdnoise, imtypes: DD, ssbsteps: dq_init-}
    lin_armin: {reftype: linearity, imtypes: FF, ssbsteps: dq_init-}
    gain: {imtypes: DDFF, ssbsteps: dq_init-}
    """


def test_a_reflabel_without_its_plugin_is_made_by_the_builtin_of_its_reftype():
    config = parse(LABELS)
    plugins = {name: (r.plugin, r.reftype) for name, r in config.recipes.items()}
    assert plugins == {
        "rdnoise_nircam": ("readnoise", "readnoise"),
        "lin_armin": ("lin_armin", "linearity"),  # no built-in makes linearity: plan warns
        "gain": ("gain", "gain"),                 # the built-in's own name
    }
    notices = notices_of(config)
    assert ("rdnoise_nircam: no plug-in named 'rdnoise_nircam' is installed; its reftype "
            "'readnoise' is made by the built-in plug-in 'readnoise'") in notices
    assert "lin_armin: no plug-in" not in notices and "gain: no plug-in" not in notices


def test_a_reflabel_with_an_installed_plugin_of_its_name_keeps_it(monkeypatch):
    monkeypatch.setattr(legacy, "plugin_installed", lambda name: name == "rdnoise_nircam")
    config = parse(LABELS)
    assert config.recipes["rdnoise_nircam"].plugin == "rdnoise_nircam"
    assert "no plug-in named 'rdnoise_nircam'" not in notices_of(config)


def test_entry_points_count_as_installed_plugins(monkeypatch):
    from importlib import metadata

    found = [metadata.EntryPoint("rdnoise_nircam", "mine:Plugin", legacy.PLUGIN_GROUP)]
    monkeypatch.setattr(metadata, "entry_points", lambda group: found
                        if group == legacy.PLUGIN_GROUP else [])
    assert legacy.plugin_installed("rdnoise_nircam")
    assert legacy.plugin_installed("readnoise")  # a built-in
    assert not legacy.plugin_installed("gain_armin")


def test_the_reftype_table_is_the_registrys():
    from refsmith.plugins.registry import BUILTIN_PLUGINS, ENTRY_POINT_GROUP, load_plugin

    assert legacy.PLUGIN_GROUP == ENTRY_POINT_GROUP
    assert set(legacy.BUILTIN_FOR_REFTYPE.values()) == set(BUILTIN_PLUGINS)
    for reftype, name in legacy.BUILTIN_FOR_REFTYPE.items():
        assert load_plugin(name).reftype == reftype
    # every legacy reftype spelling reaches a built-in
    for old, new in legacy.REFTYPES.items():
        assert new in legacy.BUILTIN_FOR_REFTYPE, old


def test_a_reflabel_without_reftype_named_like_a_legacy_reftype():
    config = parse("""\
        reflabels: [bpm]
        inputfiles: {dark_pattern: DARK}
        bpm: {imtypes: D, ssbsteps: dq_init-}
        """)
    assert (config.recipes["bpm"].plugin, config.recipes["bpm"].reftype) == (
        "bad_pixel_mask", "mask")


# ---------------------------------------------------------------- reflabel keys


KEYS = """\
    reflabels: [{label}]
    inputfiles: {{dark_pattern: DARK}}
    {label}:
        reftype: rdnoise
        imtypes: DD
        ssbsteps: dq_init-
        boxsize: 128
        sigma_clip: 4.0
        author: A. Rest
        description: read noise
        pedigree: GROUND
        useafter: '2019-04-01 00:00:00'
        history: made by mkrefs.py
    """
METADATA = {"author": "A. Rest", "description": "read noise", "pedigree": "GROUND",
            "useafter": "2019-04-01 00:00:00"}


def test_reflabel_keys_are_its_plugins_params_but_history_is_ignored():
    # the reflabel names a plug-in (here the built-in): every key is its to check
    config = parse(KEYS.format(label="readnoise"))
    assert config.recipes["readnoise"].params == {"boxsize": 128, "sigma_clip": 4.0,
                                                  **METADATA}
    notices = notices_of(config)
    assert ("readnoise.history: ignored (refsmith writes the file's HISTORY: its inputs, "
            "parameters and software)") in notices
    assert "not passed" not in notices


def test_a_substituted_builtin_gets_only_the_keys_every_plugin_takes(monkeypatch):
    # rdnoise_nircam's keys were for jwst_reffiles' own plug-in of that name
    config = parse(KEYS.format(label="rdnoise_nircam"))
    assert config.recipes["rdnoise_nircam"].plugin == "readnoise"
    assert config.recipes["rdnoise_nircam"].params == METADATA
    assert ("rdnoise_nircam: boxsize, sigma_clip not passed to the built-in 'readnoise'"
            in notices_of(config))
    # installed under its own name: the keys are that plug-in's
    monkeypatch.setattr(legacy, "plugin_installed", lambda name: True)
    config = parse(KEYS.format(label="rdnoise_nircam"))
    assert config.recipes["rdnoise_nircam"].params == {"boxsize": 128, "sigma_clip": 4.0,
                                                       **METADATA}


def test_the_common_params_are_every_plugins():
    from refsmith.plugins.base import PluginParams

    every = {f.alias or name for name, f in PluginParams.model_fields.items()}
    assert every == legacy.COMMON_PARAMS


# ---------------------------------------------------------------- 9. test4ssb


VALIDATION = """\
    reflabels: [rdnoise, gain]
    inputfiles: {{dark_pattern: DARK, flat_pattern: FLAT}}
    {top}
    rdnoise: {{reftype: rdnoise, imtypes: DD, ssbsteps: dq_init-{own}}}
    gain: {{reftype: gain, imtypes: DDFF, ssbsteps: dq_init-}}
    """


@pytest.mark.parametrize(("top", "own", "expected", "notice"), [
    ("{test4ssb: True, test4datamodel: False}", "", ("pipeline", "pipeline"),
     "test4ssb: True -> params.validate: pipeline on every recipe"),
    ("{test4ssb: False, test4datamodel: True}", "", ("datamodel", "datamodel"),
     "test4datamodel: True -> params.validate: datamodel on every recipe"),
    ("{test4ssb: True, test4datamodel: True}", "", ("pipeline", "pipeline"), "test4ssb"),
    ("{test4ssb: False, test4datamodel: False}", "", (None, None), None),
    # a reflabel's own flag, or its own validate key, wins
    ("{test4ssb: False}", ", test4ssb: True", ("pipeline", None),
     "rdnoise.test4ssb: True -> params.validate: pipeline on recipe 'rdnoise'"),
    ("{test4ssb: True}", ", validate: none", ("none", "pipeline"), "test4ssb"),
])
def test_test4ssb_and_test4datamodel_become_the_validate_parameter(top, own, expected,
                                                                    notice):
    text = VALIDATION.format(top=top.strip("{}").replace(", ", "\n    "), own=own)
    config = parse(text)
    assert tuple(config.recipes[n].params.get("validate") for n in ("rdnoise", "gain")) == \
        expected
    notices = notices_of(config)
    if notice:
        assert notice in notices
    assert "test4ssb: ignored" not in notices and "not part of refsmith" not in notices


def test_a_test4ssb_that_is_not_a_boolean_is_an_error_at_its_line():
    with pytest.raises(ConfigError) as info:
        parse(VALIDATION.format(top="test4ssb: sometimes", own=""))
    assert str(info.value) == "mkrefs.cfg:3: test4ssb: expected True or False, got 'sometimes'"
