"""`liftdspy export RUN --out DIR` against a real MLflow SQLite store populated by the test."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import pytest
import typer
import yaml
from typer.testing import CliRunner

from liftdspy.cli.export_cmd import export
from liftdspy.experiments.config import ExperimentConfig
from liftdspy.export import read_lm_config
from liftdspy.lm.config import LMConfig
from liftdspy.lm.recorder import RecorderMode
from liftdspy.programs import build_program
from liftdspy.runtime import load_pack
from liftdspy.tracking import configure_tracking, flatten_params

# Creating the SQLite store (MLflow's migrations) takes ~15 s on 2 cores.
pytestmark = pytest.mark.slow

runner = CliRunner()
app = typer.Typer()
app.command()(export)

# The run's resolved program options: the adapter resolved for its LM (kind local), the IR output.
OPTIONS = {"repair_rounds": 1, "adapter": "compact", "ir_output": "lean"}


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Five runs: with a program and resolved config; with params only (no resolved config);
    two run with `--recorder record`, one logging its experiment file (whose recorder says `off`),
    one not; without a program (the most recent)."""
    root = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    configure_tracking(uri, "export-test")
    lm = LMConfig(kind="openai", model="m-1", base_url="http://127.0.0.1:9/v1", temperature=0.0)
    program = build_program("pipeline", "cot", repair_rounds=1)
    program.nl_to_ir.translate.predict.signature = (
        program.nl_to_ir.translate.predict.signature.with_instructions("Optimized instructions.")
    )
    config = ExperimentConfig.model_validate(
        {
            "name": "export-test",
            "dataset": {"paths": ["datasets/core"]},
            "program": {"name": "pipeline", "predictor": "cot", "repair_rounds": 1},
            "lm": lm.model_dump(mode="json"),
            "optimizer": {"preset": "labeled-fewshot"},
        }
    )
    saved = root / "program.json"
    program.save(str(saved))
    recorded = config.model_copy(deep=True)
    recorded.lm.recorder.mode = RecorderMode.RECORD  # as `liftdspy run --recorder record` sets it
    experiment = config.model_dump(mode="json")
    experiment["lm"]["recorder"] = {"mode": False}  # `mode: off` in YAML: read as false
    experiment_file = root / "experiment.yaml"
    experiment_file.write_text(yaml.safe_dump(experiment))
    runs: dict[str, str] = {"uri": uri}
    for label, with_config, with_program, run_config, logged_file in (
        ("full", True, True, config, None),
        ("params", False, True, config, None),
        ("recorded-with-file", True, True, recorded, experiment_file),
        ("recorded", True, True, recorded, None),
        ("empty", True, False, config, None),
    ):
        with mlflow.start_run(run_name=label) as run:
            mlflow.set_tag("liftdspy.role", "experiment")
            params = {
                "program.name": "pipeline",
                "program.predictor": "cot",
                "program.repair_rounds": "1",
            }
            params.update(flatten_params({"lm": lm.model_dump(mode="json")}))
            mlflow.log_params(params)
            if with_config:
                mlflow.log_dict(run_config.model_dump(mode="json"), "config/resolved.json")
            if logged_file is not None:
                mlflow.log_artifact(str(logged_file), "config")
            if with_program:
                mlflow.log_artifact(str(saved), "program")
            runs[label] = run.info.run_id
    mlflow.set_tracking_uri("")
    return runs


def test_export_run_by_id_writes_a_loadable_export(store, tmp_path: Path) -> None:
    out = tmp_path / "programs" / "demo"
    result = runner.invoke(app, [store["full"], "--out", str(out), "--tracking-uri", store["uri"]])
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["source_run_id"] == store["full"]
    assert manifest["program"] == "pipeline" and manifest["program_options"] == OPTIONS
    pack = load_pack(out)
    assert pack.model.model == "m-1" and pack.model.base_url == "http://127.0.0.1:9/v1"
    assert pack.predictor("nl_to_ir.translate.predict").instructions == "Optimized instructions."
    assert [p.name for p in pack.predictors][-1] == "repair.predict"
    fresh = build_program("pipeline", "cot", repair_rounds=1)
    fresh.load(str(out / "program.json"))
    assert fresh.nl_to_ir.translate.predict.signature.instructions == "Optimized instructions."


def test_the_exported_recorder_mode_is_the_experiment_files_not_the_runs(store, tmp_path):
    """A run made with `--recorder record` exports the mode its experiment file asks for (when it
    logged the file), else `replay`: never `record`, which would re-record every call live."""
    modes = {}
    for label in ("recorded-with-file", "recorded", "full"):
        out = tmp_path / label
        result = runner.invoke(
            app, [store[label], "--out", str(out), "--tracking-uri", store["uri"]]
        )
        assert result.exit_code == 0, result.output
        modes[label] = read_lm_config(out).recorder.mode
    assert modes == {"recorded-with-file": "off", "recorded": "replay", "full": "replay"}


def test_a_run_without_its_resolved_config_is_a_clear_error(store, tmp_path) -> None:
    # Every liftdspy run logs config/resolved.json; the LM is no longer rebuilt from params.
    out = tmp_path / "params"
    result = runner.invoke(
        app, [store["params"], "--out", str(out), "--tracking-uri", store["uri"]]
    )
    assert result.exit_code == 2 and result.stdout == ""  # bad input, said on stderr
    assert store["params"] in result.output and "config/resolved.json" in result.output
    assert not out.exists()


def test_latest_run_without_program_is_a_clear_error(store, tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["latest", "--out", str(tmp_path / "x"), "--tracking-uri", store["uri"]]
    )
    assert result.exit_code == 2 and result.stdout == ""  # bad input, said on stderr
    assert store["empty"] in result.output and "program/program.json" in result.output
    assert not (tmp_path / "x").exists()


def test_unknown_run_id_is_a_clear_error(store, tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["0123456789abcdef", "--out", str(tmp_path / "x"), "--tracking-uri", store["uri"]]
    )
    assert result.exit_code == 2 and result.stdout == ""  # bad input, said on stderr
    assert "no liftdspy experiment run with id or name '0123456789abcdef'" in result.output


def test_register_puts_each_predictor_in_the_prompt_registry(store, tmp_path: Path) -> None:
    out = tmp_path / "registered"
    args = [store["full"], "--out", str(out), "--tracking-uri", store["uri"], "--register"]
    result = runner.invoke(app, [*args, "--prompt-prefix", "demo"])
    assert result.exit_code == 0, result.output
    assert "prompts:/demo.nl_to_ir.translate.predict/1" in result.output
    mlflow.set_tracking_uri(store["uri"])
    try:
        registered = mlflow.genai.load_prompt("prompts:/demo.ir_to_code.implement.predict/1")
    finally:
        mlflow.set_tracking_uri("")
    prompt = load_pack(out).predictor("ir_to_code.implement.predict")
    assert registered.template == [m.model_dump() for m in prompt.messages]
    filled = registered.format(function_stub="def f(): ...")
    assert filled == prompt.render({"function_stub": "def f(): ..."})
    assert registered.response_format == prompt.response_format


def test_evaluate_rebuilds_a_run_program_as_the_export_does(store, tmp_path: Path) -> None:
    from liftdspy.studies.heldout import load_source

    source = load_source(store["full"], tracking_uri=store["uri"], work_dir=tmp_path)
    assert (source.name, source.predictor, source.options) == (
        "pipeline",
        "cot",
        OPTIONS,
    )
    assert source.program.repair_rounds == 1
    manifest = json.loads((source.export_dir / "manifest.json").read_text())
    assert manifest["program_options"] == OPTIONS
    assert manifest["source_run_id"] == store["full"]
    # A run made with --recorder record is evaluated in the mode its export keeps, as the export.
    for label, mode in (("recorded-with-file", "off"), ("recorded", "replay")):
        source = load_source(store[label], tracking_uri=store["uri"], work_dir=tmp_path / label)
        assert source.lm.recorder.mode == mode
