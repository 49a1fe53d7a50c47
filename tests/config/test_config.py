"""Tests of the config model, YAML loading, error messages and legacy translation."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from refsmith.catalog.classify import TypeRule
from refsmith.config import (
    EXAMPLE_CONFIG,
    Config,
    default_config,
    legacy,
    load_config,
    parse_config,
    write_example,
)
from refsmith.errors import ConfigError

LEGACY = Path(__file__).parents[1] / "data" / "legacy"
MINIMAL = "recipes:\n  readnoise: {imtypes: DD}\n"


def parse(text: str, **kwargs) -> Config:
    return parse_config(textwrap.dedent(text), source="config.yaml", **kwargs)


def errors_of(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse(text)
    return str(info.value).splitlines()


# ---------------------------------------------------------------- defaults and example


def test_example_config_parses_with_every_section():
    config = parse_config(EXAMPLE_CONFIG, source="refsmith.yaml")
    assert config.instrument == "NIRCAM"
    assert set(config.recipes) == {"readnoise", "superbias", "dark", "gain", "bad_pixel_mask"}
    assert config.recipes["readnoise"].imtypes == "DD"
    assert config.recipes["readnoise"].steps == ["dq_init-"]
    assert config.recipes["superbias"].imtypes == "D+"
    assert config.recipes["dark"].imtypes == "D+"
    assert config.recipes["gain"].imtypes == "DDFF"
    assert config.recipes["bad_pixel_mask"].imtypes == "DF+"
    assert config.recipes["bad_pixel_mask"].reftype == "mask"
    assert config.recipes["gain"].reftype == "gain"  # defaults to the recipe name
    assert config.recipes["dark"].save_steps == ["dq_init"]
    assert config.max_days == {"DD": 2.0, "FF": 2.0, "DDFF": 10.0}
    assert config.legacy is False and config.notices == []


def test_write_example_writes_a_loadable_file_and_refuses_to_overwrite(tmp_path):
    target = tmp_path / "refsmith.yaml"
    assert write_example(target) == target
    assert load_config(target).source == str(target)
    target.write_text("mine")
    with pytest.raises(ConfigError, match="already exists"):
        write_example(target)
    assert target.read_text() == "mine"
    write_example(target, overwrite=True)
    assert target.read_text() == EXAMPLE_CONFIG


def test_default_config_needs_no_recipes_but_a_file_does(tmp_path):
    config = default_config(tmp_path)
    assert config.recipes == {}
    assert config.base_dir == tmp_path
    assert config.inputs.pattern == r"_uncal\.fits$"
    assert config.inputs.required_keywords == [
        "INSTRUME", "DETECTOR", "READPATT", "SUBARRAY", "NGROUPS", "NINTS"]
    assert config.inputs.time_spec() == ("EXPSTART", None, None)
    assert config.group_by == ["DETECTOR", "SUBARRAY", "READPATT"]
    assert (config.output.root, config.output.run) == ("./refsmith_out", "auto")
    assert config.execution.executor == "local" and config.execution.workers == "auto"
    assert errors_of("inputs: {paths: [raw]}\n") == [
        "config.yaml: recipes: no recipes: add at least one under 'recipes:' "
        "(refsmith init writes an example)"]


def test_load_config_sets_source_and_base_dir(tmp_path):
    path = tmp_path / "sub" / "c.yaml"
    path.parent.mkdir()
    path.write_text(MINIMAL)
    config = load_config(path)
    assert config.source == str(path)
    assert config.base_dir == path.parent.absolute()


# ---------------------------------------------------------------- inputs


@pytest.mark.parametrize(("time", "spec"), [
    ("EXPSTART", ("EXPSTART", None, None)),
    ("expmid", ("EXPMID", None, None)),
    ("{mjd: MJD-AVG}", ("MJD-AVG", None, None)),
    ("{date: DATE-END}", (None, "DATE-END", None)),
    ("{date: DATE-OBS, time: TIME-OBS}", (None, "DATE-OBS", "TIME-OBS")),
    ("{date: date-end, time: time-end}", (None, "DATE-END", "TIME-END")),
])
def test_every_time_form_is_normalised(time, spec):
    config = parse(f"inputs: {{time: {time}}}\n{MINIMAL}")
    assert config.inputs.time_spec() == spec


@pytest.mark.parametrize(("time", "message"), [
    ("{time: TIME-OBS}", "time needs date"),
    ("{mjd: EXPSTART, date: DATE-OBS}", "either mjd or date"),
    ("{}", "empty"),
    ("[EXPSTART]", "a keyword holding MJD"),
    ("{date: 'DATE OBS'}", "not a FITS keyword"),
])
def test_bad_time_forms_are_errors(time, message):
    (line,) = errors_of(f"inputs: {{time: {time}}}\n{MINIMAL}")
    assert line.startswith("config.yaml:1: inputs.time")
    assert message in line


def test_keywords_are_upper_cased_and_checked():
    config = parse(f"inputs: {{required_keywords: [instrume, detector], "
                   f"optional_keywords: filter}}\n{MINIMAL}")
    assert config.inputs.required_keywords == ["INSTRUME", "DETECTOR"]
    assert config.inputs.optional_keywords == ["FILTER"]
    (line,) = errors_of(f"inputs: {{required_keywords: [DETECTOR, TOOLONGKEYWORD]}}\n{MINIMAL}")
    assert line.startswith("config.yaml:1: inputs.required_keywords.1:")
    assert "'TOOLONGKEYWORD' is not a FITS keyword" in line


def test_pattern_must_compile_and_may_be_null():
    assert parse(f"inputs: {{pattern: null}}\n{MINIMAL}").inputs.pattern is None
    (line,) = errors_of(f"inputs: {{pattern: '(unclosed'}}\n{MINIMAL}")
    assert "inputs.pattern: invalid regular expression '(unclosed'" in line


# ---------------------------------------------------------------- classification


DEFAULTS = (TypeRule("dark", "D", {"EXP_TYPE": ("NRC_DARK",)}),
            TypeRule("flat", "F", {"EXP_TYPE": ("NRC_FLAT",)}))


@pytest.fixture
def default_rules(monkeypatch):
    monkeypatch.setattr("refsmith.config.config._default_rules", lambda: DEFAULTS)
    return DEFAULTS


def test_type_rules_default_replace_and_append(default_rules):
    config = parse("""\
        classify:
          flat: {EXP_TYPE: [NRC_FLAT, nrc_led]}
          bias: {exp_type: NRC_BIAS, letter: b}
          lamp: {pattern: '_lamp_', letter: L}
        recipes: {readnoise: {imtypes: BB}}
        """)
    rules = {rule.name: rule for rule in config.type_rules()}
    assert list(rules) == ["dark", "flat", "bias", "lamp"]
    assert rules["dark"] is DEFAULTS[0]
    assert rules["flat"] == TypeRule("flat", "F", {"EXP_TYPE": ("NRC_FLAT", "nrc_led")})
    assert rules["bias"] == TypeRule("bias", "B", {"EXP_TYPE": ("NRC_BIAS",)})
    assert rules["lamp"] == TypeRule("lamp", "L", {}, pattern="_lamp_")


def test_letter_defaults_to_first_letter_and_must_be_unique(default_rules):
    config = parse("classify: {bias: {EXP_TYPE: NRC_BIAS}}\n" + MINIMAL)
    assert config.type_rules()[-1].letter == "B"
    (line,) = errors_of("classify: {dark2: {EXP_TYPE: NRC_DARK}}\n" + MINIMAL)
    assert line == ("config.yaml:1: classify: image types 'dark' and 'dark2' both use "
                    "letter 'D'; give one of them another 'letter:'")


def test_classify_defaults_false_keeps_only_user_rules(default_rules):
    config = parse("""\
        classify_defaults: false
        classify: {dark: {pattern: '_dark_'}}
        recipes: {superbias: {imtypes: D+}}
        """)
    assert config.type_rules() == (TypeRule("dark", "D", {}, pattern="_dark_"),)
    lines = errors_of("""\
        classify_defaults: false
        classify: {dark: {pattern: '_dark_'}}
        recipes: {gain: {imtypes: DDFF}}
        """)
    assert lines[0].startswith("config.yaml:3: recipes.gain.imtypes: imtypes 'DDFF': "
                               "unknown letter 'F'")


@pytest.mark.parametrize(("rule", "message"), [
    ("{letter: DD, EXP_TYPE: X}", "classify.bias.letter: letter must be one letter"),
    ("{letter: B}", "classify.bias: matches nothing"),
    ("{pattern: '[x'}", "classify.bias.pattern: invalid regular expression"),
    ("{EXP_TYPE: {a: 1}}", "classify.bias.EXP_TYPE: expected a string or a list"),
    ("{'EXP TYPE': X}", "classify.bias.EXP TYPE: 'EXP TYPE' is not a FITS keyword"),
    ("[X]", "classify.bias: expected a mapping of FITS keyword"),
])
def test_bad_rules_are_errors(rule, message, default_rules):
    lines = errors_of(f"classify:\n  bias: {rule}\n{MINIMAL}")
    assert any(line.startswith(f"config.yaml:2: {message}") for line in lines), lines


# ---------------------------------------------------------------- recipes


def test_recipe_fields_are_normalised(default_rules):
    config = parse("""\
        group_by: [detector]
        max_days: {dd: 2, DDFF: 10}
        recipes:
          readnoise:
            imtypes: dd
            steps: "dq_init-, saturation"
            save_steps: [Saturation, FITOPT]
            select: {readpatt: RAPID, subarray: [FULL, SUB640]}
            group_by: [detector, readpatt]
            max_days: {DD: 0.5}
            min_size: 2
            reuse: false
            params: {sigma: 3}
          gain: {imtypes: DDFF, steps: [superbias-, rate]}
        """)
    readnoise, gain = config.recipes["readnoise"], config.recipes["gain"]
    assert readnoise.imtypes == "DD"
    assert readnoise.steps == ["dq_init-", "saturation"]
    assert gain.steps == ["superbias-", "ramp_fit"]  # 'rate' is ramp_fit
    assert readnoise.save_steps == ["saturation", "fitopt"]
    assert readnoise.select == {"READPATT": ["RAPID"], "SUBARRAY": ["FULL", "SUB640"]}
    assert (readnoise.min_size, readnoise.reuse, readnoise.params) == (2, False, {"sigma": 3})
    assert readnoise.plugin is None and readnoise.reftype == "readnoise"
    assert config.recipe_group_by("readnoise") == ["DETECTOR", "READPATT"]
    assert config.recipe_group_by("gain") == ["DETECTOR"]
    assert config.recipe_max_days("readnoise") == {"DD": 0.5, "DDFF": 10.0}
    assert config.recipe_max_days("gain") == {"DD": 2.0, "DDFF": 10.0}


def test_recipe_errors_name_the_recipe_and_line(default_rules):
    lines = errors_of("""\
        recipes:
          readnoise:
            imtype: DD
            steps: dq_int-
          superbias: {imtypes: D+, min_size: 0, save_steps: [bogus]}
        """)
    assert lines == [
        "config.yaml:2: recipes.readnoise.imtypes: required key is missing",
        "config.yaml:3: recipes.readnoise.imtype: unknown key; did you mean 'imtypes'?",
        "config.yaml:4: recipes.readnoise.steps: unknown calwebb_detector1 step 'dq_int'; "
        "did you mean 'dq_init'?",
        "config.yaml:5: recipes.superbias.save_steps: unknown calwebb_detector1 step 'bogus'",
        "config.yaml:5: recipes.superbias.min_size: Input should be greater than or equal to 1",
    ]


def test_cross_checks_report_every_recipe(default_rules):
    lines = errors_of("""\
        instrument: miri
        max_days: {DX: 1}
        recipes:
          superbias: {imtypes: D+, steps: superbias-}
          bad-name: {imtypes: DQ}
        """)
    assert lines[0].startswith("config.yaml:2: max_days.DX: imtypes 'DX'")
    assert lines[1] == ("config.yaml:4: recipes.superbias.steps: step 'superbias' does "
                        "not exist for MIRI")
    assert lines[2].startswith("config.yaml:5: recipes.bad-name: recipe names are identifiers")
    assert lines[3].startswith("config.yaml:5: recipes.bad-name.imtypes: imtypes 'DQ': "
                               "unknown letter 'Q'")


def test_instrument_is_validated_and_upper_cased():
    assert parse(f"instrument: NIRCam\n{MINIMAL}").instrument == "NIRCAM"
    (line,) = errors_of(f"instrument: hubble\n{MINIMAL}")
    assert line.startswith("config.yaml:1: instrument: unknown instrument 'hubble'")


# ---------------------------------------------------------------- other sections


def test_execution_and_pipeline_sections():
    config = parse("""\
        execution: {executor: dask, workers: 4, retries: 0, max_memory: 20GiB,
                    recycle_memory: 4GB, scheduler: 'tcp://h:8786',
                    cluster: {kind: HTCondor, cores: 1}}
        pipeline: {references: {Mask: CRDS, dark: SELF, gain: refs/*gain*.fits},
                   offline: true, search_dirs: [prod]}
        recipes: {readnoise: {imtypes: DD}, dark: {imtypes: D+, memory: 6GiB}}
        """)
    assert config.execution.workers == 4 and config.execution.retries == 0
    assert (config.execution.max_memory, config.execution.recycle_memory) == ("20GiB", "4GB")
    assert config.execution.reffile_memory == "2GiB"  # the default
    assert config.recipes["dark"].memory == "6GiB" and config.recipes["readnoise"].memory is None
    assert config.execution.cluster == {"kind": "htcondor", "cores": 1}
    assert config.pipeline.references == {"mask": "crds", "dark": "self",
                                          "gain": "refs/*gain*.fits"}
    assert config.pipeline.offline is True and config.pipeline.crds_timeout == 30


@pytest.mark.parametrize(("section", "message"), [
    ("execution: {workers: 0}", "execution.workers: workers must be 'auto' or a whole"),
    ("execution: {workers: many}", "execution.workers: workers must be 'auto'"),
    ("execution: {retries: -1}", "execution.retries: Input should be greater than or equal"),
    ("execution: {executor: slurm}", "execution.executor: Input should be 'local' or 'dask'"),
    ("execution: {cluster: {kind: htcondor}}", "execution.cluster: is only used with"),
    ("execution: {executor: dask, cluster: {cores: 2}}", "execution.cluster.kind: must be"),
    ("execution: {max_memory: lots}", "execution.max_memory: max_memory must look like"),
    ("execution: {recycle_memory: 4 apples}", "execution.recycle_memory: recycle_memory must"),
    ("execution: {reffile_memory: 0GiB}", "execution.reffile_memory: reffile_memory must be "
                                          "more than 0"),
    ("pipeline: {references: {mask: ''}}", "pipeline.references.mask: expected 'crds'"),
    ("pipeline: {crds_timeout: 0}", "pipeline.crds_timeout: Input should be greater than 0"),
    ("output: {run: a/b}", "output.run: run must be 'auto' or a directory name"),
    ("output: {run: '..'}", "output.run: run must be 'auto' or a directory name"),
    ("output: {run: .}", "output.run: run must be 'auto' or a directory name without '/' "
                         "(not '.' or '..': the run directory stays inside the root), got '.'"),
    ("outptu: {run: x}", "outptu: unknown key; did you mean 'output'?"),
    ("max_days: {DD: 0}", "max_days.DD: Input should be greater than 0"),
])
def test_section_errors(section, message):
    lines = errors_of(f"{section}\n{MINIMAL}")
    assert any(line.startswith(f"config.yaml:1: {message}") for line in lines), lines


def test_a_recipe_memory_budget_is_a_size():
    (line,) = errors_of("recipes:\n  readnoise: {imtypes: DD, memory: big}\n")
    assert line.startswith("config.yaml:2: recipes.readnoise.memory: memory must look like "
                           "'4GiB' or '500MB', got 'big'")


# ---------------------------------------------------------------- files and YAML


def test_yaml_syntax_error_names_file_and_line(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("recipes:\n  readnoise: {imtypes: DD\n")
    with pytest.raises(ConfigError, match=rf"^{re.escape(str(path))}:3: YAML syntax error"):
        load_config(path)


def test_unreadable_and_non_mapping_files(tmp_path):
    with pytest.raises(ConfigError, match="cannot read the config file"):
        load_config(tmp_path / "missing.yaml")
    with pytest.raises(ConfigError, match="the config is empty"):
        parse("")
    with pytest.raises(ConfigError, match=r"config\.yaml:1: the config is a list"):
        parse("- a\n- b\n")


def test_duplicate_keys_are_errors():
    (line,) = errors_of("recipes:\n  a: {imtypes: D}\n  a: {imtypes: DD}\n")
    assert line == "config.yaml:3: recipes.a: duplicate key (first on line 2)"


def test_unknown_key_without_close_match_lists_allowed_keys():
    (line,) = errors_of(f"output: {{zzz: 1}}\n{MINIMAL}")
    assert line == "config.yaml:1: output.zzz: unknown key; allowed here: root, run"


def alias_bomb(levels: int, width: int = 10) -> str:
    """``levels`` anchors, each a list of ``width`` aliases of the one before."""
    lines = [f"l0: &l0 [{', '.join(['lol'] * width)}]"]
    lines += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * width)}]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


def test_an_alias_bomb_is_refused_at_the_alias_that_passes_the_limit():
    # 10^6 values through aliases (10^9 used to hang in the duplicate-key check); the
    # eighth *l3 of line 7 passes the limit
    (line,) = errors_of(MINIMAL + alias_bomb(6))
    assert line == ("config.yaml:7: YAML error: alias *l3: aliases expand to more than "
                    "100,000 values (an alias bomb?); write the values out or use fewer "
                    "aliases")
    (line,) = errors_of(MINIMAL + alias_bomb(9))  # a billion: refused as fast
    assert line.startswith("config.yaml:7: YAML error: alias *l3: aliases expand")


@pytest.mark.parametrize("text, line", [
    ("a: &a [1, *a]\n", 1),
    ("a: &a\n  b: {c: *a}\n", 2),
])
def test_a_recursive_alias_is_refused(text, line):
    (error,) = errors_of(MINIMAL + text)
    assert error == (f"config.yaml:{line + 2}: YAML error: alias *a is used inside its own "
                     "anchor &a (a recursive structure)")


def test_values_nested_too_deeply_are_refused():
    (error,) = errors_of(MINIMAL + "a: " + "[" * 5000 + "]" * 5000 + "\n")
    assert error == "config.yaml:3: YAML error: values nested too deeply"


def test_aliases_and_merge_keys_within_the_limit_still_work():
    config = parse("""\
        recipes:
          superbias: &base {imtypes: D+, steps: dq_init-, params: &params {sigma_clip: 3.0}}
          dark: {<<: *base, steps: linearity-}
          readnoise: {imtypes: DD, params: *params}
        """)
    assert config.recipes["superbias"].steps == ["dq_init-"]
    assert config.recipes["dark"].imtypes == "D+"
    assert config.recipes["dark"].steps == ["linearity-"]
    assert config.recipes["readnoise"].params == {"sigma_clip": 3.0}


def test_yaml_tags_are_not_executed():
    with pytest.raises(ConfigError, match=r"config\.yaml:1: YAML error: could not determine"):
        parse("recipes: !!python/object/apply:os.system ['true']\n")


# ---------------------------------------------------------------- resolve


def test_resolve_expands_home_variables_and_base_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("JWST_MKREFS_OUTDIR", "/data/out")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    config = parse(MINIMAL, base_dir=tmp_path)
    assert config.resolve("raw") == tmp_path / "raw"
    assert config.resolve("../x/./y") == tmp_path.parent / "x" / "y"
    assert config.resolve("$JWST_MKREFS_OUTDIR/run1") == Path("/data/out/run1")
    assert config.resolve("${JWST_MKREFS_OUTDIR}/a") == Path("/data/out/a")
    assert config.resolve("~/cal") == tmp_path / "home" / "cal"


def test_resolve_undefined_variable_is_named(monkeypatch):
    monkeypatch.delenv("REFSMITH_UNSET_VARIABLE", raising=False)
    config = parse(MINIMAL)
    with pytest.raises(ConfigError, match=r"\$REFSMITH_UNSET_VARIABLE is not set"):
        config.resolve("$REFSMITH_UNSET_VARIABLE/out")


# ---------------------------------------------------------------- legacy translation


@pytest.fixture
def outdir(tmp_path, monkeypatch):
    monkeypatch.setenv("JWST_MKREFS_OUTDIR", str(tmp_path))
    return tmp_path


def test_legacy_is_detected_and_refsmith_is_not():
    assert legacy.is_legacy({"reflabels": [], "inputfiles": {}})
    assert legacy.is_legacy({"DD": {"max_Delta_MJD": 1}})
    assert not legacy.is_legacy({"recipes": {}, "inputs": {}})


def test_legacy_nircam_translation_key_by_key(outdir):
    (outdir / "test1" / "run002").mkdir(parents=True)
    (outdir / "test1" / "run9x").mkdir()
    config = load_config(LEGACY / "nircam_mkrefs.cfg")
    assert config.legacy is True
    assert config.instrument == "NIRCAM"
    # reflabels -> recipes, in order; the unlisted gain_bryan section is not a recipe
    assert list(config.recipes) == ["gain_armin", "bpm", "rdnoise_nircam"]
    gain, bpm, rdnoise = (config.recipes[k] for k in config.recipes)
    # no plug-in of the reflabel's name: the built-in of its reftype
    assert (gain.reftype, gain.imtypes, gain.steps, gain.plugin) == (
        "gain", "DDFF", ["superbias-"], "gain")
    assert (bpm.reftype, bpm.imtypes, bpm.steps, bpm.plugin) == (
        "mask", "D", ["refpix-"], "bad_pixel_mask")
    assert rdnoise.plugin == "readnoise"
    # test1 was for jwst_reffiles' own rdnoise_nircam: not given to the built-in
    assert (rdnoise.reftype, rdnoise.steps, rdnoise.params) == ("readnoise", ["dq_init"], {})
    # inputfiles
    assert config.inputs.pattern == r"(.*)\_uncal\.fits$"
    assert config.inputs.time_spec() == (None, "DATE-END", "TIME-END")
    assert config.inputs.required_keywords == [
        "INSTRUME", "DETECTOR", "NGROUPS", "NINTS", "TGROUP", "SUBARRAY"]
    assert config.inputs.optional_keywords == ["FILTER", "PUPIL"]
    assert [(r.name, r.letter, r.match) for r in config.type_rules()] == [
        ("dark", "D", {}), ("flat", "F", {})]
    # grouping and limits
    assert config.group_by == ["DETECTOR"]
    assert config.max_days == {"DD": 2.0, "FF": 2.0, "DDFF": 10.0}
    # output: AUTO = numbered runs under outrootdir/outsubdir, 3 digits (see test_legacy_run)
    assert config.output.root == f"{outdir}/test1"
    assert config.output.run == "run###"
    # reffile4ssb -> pipeline.references with CRDS reftype names; batch disabled -> local
    assert config.pipeline.references == {"gain": "crds", "mask": "crds", "readnoise": "crds"}
    assert config.execution.executor == "local" and config.execution.cluster is None
    notices = "\n".join(config.notices)
    for text in ("grouped by DETECTOR only", "output.addsuffix: ignored",
                 "gain_armin.reffile4ssb: per-recipe", "validation: ignored",
                 "test1: unknown jwst_reffiles key", "gain_bryan: a reflabel section not "
                 "listed", "reftypes: ignored", "default_reflabels: ignored",
                 "AUTO -> output.run: run###", "--new-run"):
        assert text in notices
    assert "DD:" not in notices  # DD/FF/DDFF are translated, not ignored


def test_legacy_auto_run_starts_at_zero(outdir):
    from refsmith.plan import run_dir_for

    config = load_config(LEGACY / "nircam_mkrefs.cfg")
    assert run_dir_for(config) == outdir / "test1" / "run000"


def test_legacy_miri_translation_key_by_key():
    config = load_config(LEGACY / "miri_mkrefs.cfg")
    assert config.instrument == "MIRI"
    # 'bpm' is listed but has no section: skipped with a notice
    assert list(config.recipes) == ["bad_pixel_mask", "rdnoise_miri"]
    mask = config.recipes["bad_pixel_mask"]
    assert (mask.reftype, mask.imtypes, mask.plugin) == ("mask", "F+", "bad_pixel_mask")
    assert mask.steps == ["ramp_fit-"]  # 'slope-'
    assert mask.save_steps == ["jump", "fitopt"]  # ssb_save_steps
    assert mask.params == {
        "dead_search": True, "dead_search_type": "zero_signal", "sigma_threshold": 3,
        "smoothing_box_width": 15, "do_not_use": ["DEAD", "LOW_QE", "OPEN", "ADJ_OPEN"],
        "author": "jwst_reffiles", "useafter": "2019-04-01 00:00:00",
        "validate": "pipeline"}  # test4ssb: True
    assert config.recipes["rdnoise_miri"].steps == ["dq_init", "saturation"]
    assert config.inputs.time_spec() == (None, "DATE-OBS", "TIME-OBS")
    assert config.inputs.optional_keywords == ["FILTER"]  # a single string
    assert config.max_days == {"DD": 1.5, "DDFF": 4.0}  # FF: empty = no limit
    assert (config.output.root, config.output.run) == ("/data/miri/reffiles/flightcal",
                                                       "run007")
    assert config.pipeline.search_dirs == ["/data/miri/ssb", "/data/miri/prod1",
                                           "/data/miri/prod2"]
    assert config.pipeline.references == {"mask": "self",
                                          "readnoise": "/data/miri/refs/*_readnoise.fits"}
    assert config.execution.executor == "dask"
    assert config.execution.cluster == {"kind": "htcondor"}
    notices = "\n".join(config.notices)
    for text in ("'bpm' has no section", "step 'slope' read as 'ramp_fit'",
                 "test4ssb: True -> params.validate: pipeline", "output.ssblogFlag: ignored",
                 "batch: jobs run on htcondor", "output.ssbdir: searched"):
        assert text in notices


def test_legacy_ground_translation_key_by_key(tmp_path, monkeypatch):
    monkeypatch.setenv("REFSMITH_TEST_OUT", str(tmp_path / "gt"))
    config = load_config(LEGACY / "ground_mkrefs.cfg")
    assert config.inputs.time_spec() == ("EXPSTART", None, None)  # mjdobs_fitskey wins
    assert config.inputs.pattern is None
    assert config.inputs.required_keywords == [] and config.inputs.optional_keywords == []
    assert config.type_rules() == (TypeRule("dark", "D", {}, pattern="_DARK_"),)
    # no runID: the run directory is outrootdir/outsubdir itself
    assert (config.output.root, config.output.run) == (str(tmp_path / "gt"), "gt2016")
    recipe = config.recipes["readnoise_gt"]
    assert (recipe.steps, recipe.params) == (["ramp_fit-"], {})  # made by the built-in
    notices = "\n".join(config.notices)
    assert "readnoise_gt: boxsize not passed to the built-in 'readnoise'" in notices
    assert "tempdatadir: ignored" in notices
    assert "time is read from EXPSTART only" in notices


def test_legacy_unset_variable_is_an_error_with_line(monkeypatch):
    monkeypatch.delenv("JWST_MKREFS_OUTDIR", raising=False)
    with pytest.raises(ConfigError) as info:
        load_config(LEGACY / "nircam_mkrefs.cfg")
    assert str(info.value) == (
        f"{LEGACY / 'nircam_mkrefs.cfg'}:37: output.outrootdir: environment variable "
        "$JWST_MKREFS_OUTDIR is not set; set it or write the path out")


def test_legacy_errors_point_at_the_legacy_key():
    text = """\
        instrument: NIRCam
        reflabels: [rdnoise]
        inputfiles: {dark_pattern: DARK, flat_pattern: FLAT}
        output: {outrootdir: /out, runID: LATEST}
        rdnoise:
            imtypes: DQ
            ssbsteps: dq_init
        """
    with pytest.raises(ConfigError) as info:
        parse(text)
    assert str(info.value) == "config.yaml:4: output.runID: expected AUTO, a number or " \
                              "nothing, got 'LATEST'"
    with pytest.raises(ConfigError) as info:
        parse(text.replace("LATEST", "2"))
    assert str(info.value) == (
        "config.yaml:6: recipes.rdnoise.imtypes (from rdnoise.imtypes): imtypes 'DQ': "
        "unknown letter 'Q'; known: D=dark, F=flat")


def test_legacy_bad_steps_point_at_ssbsteps():
    with pytest.raises(ConfigError) as info:
        parse("""\
            reflabels: [rdnoise]
            inputfiles: {dark_pattern: DARK}
            rdnoise:
                imtypes: DD
                ssbsteps: bpm,ipc
            """)
    assert str(info.value) == ("config.yaml:5: recipes.rdnoise.steps (from rdnoise.ssbsteps): "
                               "unknown calwebb_detector1 step 'bpm'")


def jwst_reffiles_imtype(name: str, dark: str, flat: str) -> str | None:
    """What jwst_reffiles' mkrefs.getimtypes decided (dark tested first)."""
    if re.search(dark, name):
        return "dark"
    if re.search(flat, name):
        return "flat"
    return None


def refsmith_imtype(name: str, rules: tuple[TypeRule, ...]) -> str | None:
    found = [rule.name for rule in rules if re.search(rule.pattern or "", name)]
    assert len(found) <= 1, found  # the translated rules never overlap
    return found[0] if found else None


MIRI_RULES = load_config(LEGACY / "miri_mkrefs.cfg").type_rules()


@given(st.text(alphabet="abDARKFLATGINBsZEROl_.0", max_size=24))
def test_legacy_filename_rules_reproduce_jwst_reffiles(name):
    assert refsmith_imtype(name, MIRI_RULES) == \
        jwst_reffiles_imtype(name, "DARK|dark", "FLAT|flat")


@pytest.mark.parametrize(("name", "imtype"), [
    ("NRCA1_DARK_GAIN_uncal.fits", "dark"),   # both patterns: dark wins
    ("NRCA1_LIN_001_uncal.fits", "flat"),
    ("NRCA1_ZERO_uncal.fits", "dark"),
    ("NRCA1_science_uncal.fits", None),
])
def test_legacy_nircam_patterns(name, imtype, outdir):
    rules = load_config(LEGACY / "nircam_mkrefs.cfg").type_rules()
    assert refsmith_imtype(name, rules) == imtype


def test_numbered_run(tmp_path):
    from refsmith.plan import numbered_run

    assert numbered_run(tmp_path / "missing", "run###") == "run000"
    assert numbered_run(tmp_path / "missing", "run###", new=True) == "run000"
    for name in ("run1", "run004", "runs", "xrun9", "run7x"):
        (tmp_path / name).mkdir()
    (tmp_path / "run9").touch()  # a file is not a run
    # the latest existing run, as jwst_reffiles' AUTO; --new-run: the next
    assert numbered_run(tmp_path, "run#") == "run004"
    assert numbered_run(tmp_path, "run###") == "run004"
    assert numbered_run(tmp_path, "run#", new=True) == "run5"
    assert numbered_run(tmp_path, "run###", new=True) == "run005"
    (tmp_path / "run4").mkdir()  # the same number twice: the one written as asked
    assert numbered_run(tmp_path, "run#") == "run4"
    assert numbered_run(tmp_path, "run###") == "run004"
    assert numbered_run(tmp_path, "cal_##_v1") == "cal_00_v1"


def test_configuration_reference_doc_is_generated_from_the_model():
    from refsmith.config.reference import markdown

    doc = Path(__file__).parents[2] / "docs" / "configuration.md"
    assert doc.read_text() == markdown(), (
        "docs/configuration.md is out of date: "
        "python -m refsmith.config.reference > docs/configuration.md"
    )
    text = markdown()
    for key in ("`recipes.<name>.imtypes`", "`inputs.time.date`", "`execution.retries`",
                "`pipeline.references`", "`max_days`"):
        assert key in text
    from refsmith.config.reference import rows

    undocumented = [row[0] for row in rows() if not row[3]]
    assert undocumented == []
