"""Presets and overrides: every shipped preset loads with the values it sets, and bad keys or values are
refused by name."""

import tomllib
from pathlib import Path

import pytest
from conftest import ROOT

from vaegen.core.config import Config, load_config, parse_override
from vaegen.core.errors import ConfigError


@pytest.mark.parametrize("preset", sorted((ROOT / "configs").glob("*.toml")), ids=lambda p: p.name)
def test_shipped_presets_load_with_every_value_they_set(preset: Path) -> None:
    written = tomllib.loads(preset.read_text(encoding="utf-8"))
    loaded = load_config(preset).to_dict()
    assert written, "an empty preset"
    assert {section: {key: loaded[section][key] for key in keys} for section, keys in written.items()} == written


def test_overrides_are_typed_and_applied_in_order() -> None:
    config = load_config(ROOT / "configs" / "tiny.toml", ["train.lr=0.01", "anneal.schedule=cyclical",
                                                         "model.bidirectional=false", "train.lr=2e-3"])
    assert config.train.lr == 0.002 and config.anneal.schedule == "cyclical"
    assert config.model.bidirectional is False


def test_integer_accepted_for_float() -> None:
    assert load_config(None, ["train.lr=1"]).train.lr == 1.0


@pytest.mark.parametrize("override, fragment", [
    ("train.lrr=0.1", "unknown key 'train.lrr'"),
    ("trian.lr=0.1", "unknown section 'trian'"),
    ("train.epochs=two", "'train.epochs' must be int"),
    ("train.epochs=0", "train.epochs must be at least 1"),
    ("anneal.schedule=sigmoid", "anneal.schedule must be one of"),
    ("model.bidirectional=1", "must be bool"),
    ("lr=0.1", "must look like section.key=value"),
    ("train.kl_target=-1", "train.kl_target must not be negative"),
])
def test_bad_overrides_are_refused(override: str, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment.replace("(", r"\(")):
        load_config(None, [override])


def test_one_floor_for_the_kl() -> None:
    with pytest.raises(ConfigError, match="set one of them to 0"):
        load_config(None, ["train.free_bits=0.25", "train.kl_target=8"])


def test_bad_preset_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[train]\nepochs = \n", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(bad)
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.toml")


def test_round_trip_through_dict() -> None:
    config = load_config(ROOT / "configs" / "songci.toml")
    assert Config.from_dict(config.to_dict()) == config


def test_parse_override_reads_toml_or_bare_strings() -> None:
    assert parse_override("a.b=3") == ("a", "b", 3)
    assert parse_override("a.b = true") == ("a", "b", True)
    assert parse_override("a.b=char") == ("a", "b", "char")
