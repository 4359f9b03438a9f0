"""One version-field convention (`liftdspy.versioning.Version`) at every boundary model.

A model's `version` (a file format's `format_version`) is the string "1"; files written before
the convention say `version: 1` (YAML configs, studies, recorded LM calls) and still load. The
walk over the package's models keeps the convention from drifting.
"""

from __future__ import annotations

import importlib
import json
import pkgutil
import typing
from pathlib import Path

import pytest
import yaml
from pydantic import BaseModel, ValidationError

import liftdspy
from liftdspy.versioning import FROM_INT, Version

ROOT = Path(__file__).resolve().parents[1]
VERSION_FIELDS = ("version", "format_version")
# A `version` that is no format version: MLflow's number of a registered prompt.
NOT_A_FORMAT_VERSION = {"liftdspy.export.prompt_registry.RegisteredPrompt"}


class _Versioned(BaseModel):
    version: Version = "1"


class _Literal(BaseModel):
    version: typing.Literal["1"] = "1"


@pytest.mark.parametrize("given", [1, "1"])
def test_the_int_and_the_string_form_load_and_write_the_string(given) -> None:
    model = _Versioned(version=given)
    assert model.version == "1"
    assert model.model_dump(mode="json") == {"version": "1"}
    assert json.loads(model.model_dump_json()) == {"version": "1"}
    assert _Versioned.model_validate_json(json.dumps({"version": given})).version == "1"


@pytest.mark.parametrize("given", [2, "2", True, 1.0, "01", None])
def test_another_version_is_refused(given) -> None:
    with pytest.raises(ValidationError, match="version"):
        _Versioned(version=given)


def test_the_json_schema_is_that_of_the_string_literal() -> None:
    """The IR's schema is part of its prompts, so of every recording key: it must not change."""
    schema = _Versioned.model_json_schema()["properties"]
    assert schema == _Literal.model_json_schema()["properties"]


def _package_models() -> list[type[BaseModel]]:
    for module in pkgutil.walk_packages(liftdspy.__path__, "liftdspy."):
        importlib.import_module(module.name)
    found, todo = set(), [BaseModel]
    while todo:
        for sub in todo.pop().__subclasses__():
            if sub not in found:
                found.add(sub)
                todo.append(sub)
    return sorted(
        (m for m in found if m.__module__.startswith("liftdspy.")),
        key=lambda m: (m.__module__, m.__qualname__),
    )


def test_every_version_field_of_the_package_uses_the_shared_type() -> None:
    versioned, drifted = [], []
    for model in _package_models():
        name = f"{model.__module__}.{model.__qualname__}"
        for field_name in VERSION_FIELDS:
            field = model.model_fields.get(field_name)
            if field is None or name in NOT_A_FORMAT_VERSION:
                continue
            versioned.append(name)
            values = typing.get_args(field.annotation)
            ok = (
                typing.get_origin(field.annotation) is typing.Literal
                and len(values) == 1
                and isinstance(values[0], str)
                and FROM_INT in field.metadata
                and field.default == values[0]
            )
            if not ok:
                drifted.append(f"{name}.{field_name}: {field.annotation} = {field.default!r}")
    assert drifted == []
    # The walk does see the models (a broken walk would pass vacuously).
    for expected in (
        "liftdspy.experiments.config.ExperimentConfig",
        "liftdspy.lm.config.LMConfig",
        "liftdspy.lm.store.RecordedCall",
        "liftdspy.studies.config.StudyConfig",
        "liftdspy.stats.bootstrap.PairedComparison",
        "liftdspy.runtime.pack.PromptPack",
    ):
        assert expected in versioned


def _write_yaml(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


@pytest.mark.parametrize("given", [1, "1"])
def test_an_experiment_config_and_preset_load_in_either_form(tmp_path, monkeypatch, given) -> None:
    from liftdspy.experiments.config import load_config
    from liftdspy.optimize.presets import load_preset

    monkeypatch.chdir(ROOT)
    data = yaml.safe_load((ROOT / "experiments" / "demo.yaml").read_text(encoding="utf-8"))
    data["version"] = given
    data["lm"]["version"] = given
    config = load_config(_write_yaml(tmp_path / "demo.yaml", data))
    assert config.version == "1" and config.lm.version == "1"
    dumped = config.model_dump(mode="json")
    assert dumped["version"] == "1" and dumped["lm"]["version"] == "1"

    preset = yaml.safe_load((ROOT / "optimizers" / "mipro-small.yaml").read_text("utf-8"))
    preset["version"] = given
    loaded = load_preset(_write_yaml(tmp_path / "mipro-small.yaml", preset))
    assert loaded.model_dump(mode="json")["version"] == "1"


def test_the_committed_study_says_version_1_and_loads_as_the_string(tmp_path) -> None:
    from liftdspy.studies.config import load_study

    path = ROOT / "studies" / "demo.yaml"
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert raw["version"] == 1  # the int form, as committed
    old = load_study(path)
    assert old.version == "1" and old.lm.version == "1"
    assert old.model_dump(mode="json")["version"] == "1"

    raw["version"] = "1"
    raw["lm"]["version"] = "1"
    new_path = _write_yaml(path.parent / f".{tmp_path.name}.yaml", raw)
    try:
        new = load_study(new_path)
    finally:
        new_path.unlink()
    # Which form the file uses decides nothing: the same study, the same resumed parent run.
    assert new.identity_hash() == old.identity_hash()


def test_the_study_hashes_keep_the_form_they_were_first_taken_with() -> None:
    """The shipped study's identity and cell hashes take format versions in the int form they were
    first computed with (the int 1), so finished cells and parent runs still match. The literals
    are the shipped study's as recorded on 2026-12-07 with `ir_output: lean` the default (40 eval
    tasks, 6 arms, seeds 0-7; the new default is part of the program config both hashes take, so
    they changed with it; a cell's hash does not see the seed list)."""
    from liftdspy.studies.cells import cell_hash, expand_cells
    from liftdspy.studies.config import load_study

    study = load_study(ROOT / "studies" / "demo.yaml")
    assert study.identity_hash() == "f93235ae91ce8733"
    hashes = [cell_hash(study, cell, ROOT) for cell in expand_cells(study)]
    assert hashes[:2] == ["73dfa6c7a15a7d5c", "e9c6ec3bec04a7fd"]
    assert hashes[-1] == "be0def945f227bf4"


def test_a_committed_recording_entry_loads_in_either_form_with_the_same_key() -> None:
    from liftdspy.lm.store import RecordedCall, recording_key

    line = (ROOT / "cache" / "recordings" / "demo.jsonl").read_text("utf-8").splitlines()[0]
    raw = json.loads(line)
    assert raw["version"] == "1"  # the string form, as re-recorded on 2026-12-04
    old = RecordedCall.model_validate({**raw, "version": 1})  # older recordings' int form
    new = RecordedCall.model_validate_json(line)
    assert old == new and old.version == "1"
    assert old.model_dump(mode="json")["version"] == "1"
    # The key is the request's, not the entry format's: it matches the committed one.
    assert recording_key(old.identity, old.request, old.rollout_id, old.candidate) == raw["key"]


def test_older_study_artifacts_with_int_versions_still_read() -> None:
    """Plans, cell results, reports and comparisons of older runs said `"version": 1`."""
    from liftdspy.compare.models import Comparison
    from liftdspy.studies.plan import StudyPlan
    from liftdspy.studies.report import StudyReport
    from liftdspy.studies.results import CellResult

    def version_refused(model: type[BaseModel], version: object) -> bool:
        with pytest.raises(ValidationError) as refused:  # the other fields are missing
            model.model_validate({"version": version})
        return ("version",) in {error["loc"] for error in refused.value.errors()}

    for model in (Comparison, StudyPlan, StudyReport, CellResult):
        assert not version_refused(model, 1) and not version_refused(model, "1")
        assert version_refused(model, 2)


def test_the_shipped_export_loads() -> None:
    from liftdspy.export.writer import ExportManifest
    from liftdspy.runtime import PromptPack

    demo = ROOT / "programs" / "demo"
    pack = PromptPack.model_validate_json((demo / "prompt_pack.json").read_text("utf-8"))
    manifest = ExportManifest.model_validate_json((demo / "manifest.json").read_text("utf-8"))
    assert pack.format_version == manifest.format_version == "1"
