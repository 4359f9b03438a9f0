"""Experiment and study configs load through one reader (`load_yaml_config`): the same
file, YAML and `--set` errors, each raised as the config's own error class naming the file."""

from __future__ import annotations

from pathlib import Path

import pytest

from liftdspy.experiments.config import ConfigError, load_config
from liftdspy.studies import StudyConfigError, load_study

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "experiments" / "demo.yaml"
STUDY = ROOT / "studies" / "demo.yaml"


@pytest.mark.parametrize(
    ("load", "error", "what", "good"),
    [
        (load_config, ConfigError, "experiment config", DEMO),
        (load_study, StudyConfigError, "study config", STUDY),
    ],
)
def test_both_config_kinds_report_file_problems_alike(tmp_path, load, error, what, good):
    with pytest.raises(error, match=rf"nope\.yaml: no such {what}"):
        load(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n", encoding="utf-8")
    with pytest.raises(error, match=r"bad\.yaml: not valid YAML"):
        load(bad)
    bad.write_text("- a list\n", encoding="utf-8")
    with pytest.raises(error, match=r"bad\.yaml: expected a mapping at the top level"):
        load(bad)
    with pytest.raises(error, match=r"--set 'name.x=1': name is a value, not a section"):
        load(good, ["name.x=1"])
    with pytest.raises(error, match="expected KEY=VALUE"):
        load(good, ["seed"])
    with pytest.raises(error, match=rf"invalid {what}:\n  nme: Extra inputs are not permitted"):
        load(good, ["nme=x"])
    assert load(good, ["name=renamed"]).name == "renamed"
