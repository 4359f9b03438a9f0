"""The CLI for scripts: piped output is plain (one JSON document with --json or `lm try --schema
ir`), errors go to stderr, exit codes say the class (0 ok, 1 finding, 2 bad input, 3 incomplete),
`--version`, and YAML's `off` accepted wherever a recorder mode is set.

`lm try` and `study run` use the scripted engine (tests/fixtures_engines.py): these tests are
about what the CLI prints and returns, not about model quality.
"""

from __future__ import annotations

import json
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import mlflow
import pytest
import yaml
from fixtures_engines import FunctionEngine
from fixtures_ir import IDENTITY_IR
from typer.testing import CliRunner

from liftdspy.cli import app
from liftdspy.cli.exit_codes import ExitCode
from liftdspy.ir import IntermediateRepresentation

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "experiments" / "demo.yaml"
runner = CliRunner()

# Strings longer than a terminal line: rich wrapped them inside the JSON string before.
LONG_IR = json.loads(json.dumps(IDENTITY_IR))
LONG_IR["intent"]["summary"] = "Return the input unchanged, " * 8
LONG_IR["assertions"][0]["rationale"] = "x" * 150


@pytest.fixture(autouse=True)
def in_repo(monkeypatch):
    monkeypatch.chdir(ROOT)
    monkeypatch.delenv("LIFTDSPY_RECORDER", raising=False)
    yield
    mlflow.end_run()


def test_version_flag_prints_the_package_version():
    done = subprocess.run(
        [sys.executable, "-m", "liftdspy.cli", "--version"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"liftdspy {metadata.version('liftdspy')}\n"


@pytest.fixture
def scripted_local(monkeypatch):
    """`lm try` on a scripted engine that answers LONG_IR (stands in for the embedded model)."""

    def make(model, model_path=None):
        return FunctionEngine(
            lambda request, number: json.dumps(LONG_IR),
            model=model,
            usage=(12, 34),
            provider_data={"local": {"decode_tokens_per_second": 5.0}},
        )

    monkeypatch.setattr("liftdspy.lm.local_engine.LocalEngine", make)


def test_lm_try_schema_ir_piped_is_one_json_document(scripted_local):
    result = runner.invoke(app, ["lm", "try", "Return the input.", "--schema", "ir"])
    assert result.exit_code == 0, result.output
    expected = IntermediateRepresentation.model_validate(LONG_IR).model_dump(mode="json")
    assert json.loads(result.stdout) == expected  # as `| python -m json.tool` reads it
    assert "output tokens" in result.stderr and "tokens" not in result.stdout
    assert "\x1b[" not in result.stdout  # no colour codes in a pipe


def test_lm_try_json_holds_answer_ir_and_usage(scripted_local):
    result = runner.invoke(app, ["lm", "try", "Return the input.", "--schema", "ir", "--json"])
    assert result.exit_code == 0, result.output
    answer = json.loads(result.stdout)
    assert answer["valid"] is True and answer["ir"]["intent"] == LONG_IR["intent"]
    assert (answer["input_tokens"], answer["output_tokens"]) == (12, 34)
    assert json.loads(answer["text"]) == LONG_IR


def test_lm_try_invalid_ir_is_a_finding(monkeypatch):
    monkeypatch.setattr(
        "liftdspy.lm.local_engine.LocalEngine",
        lambda model, model_path=None: FunctionEngine(lambda r, n: '{"intent": 1}', model=model),
    )
    result = runner.invoke(app, ["lm", "try", "Return the input.", "--schema", "ir"])
    assert result.exit_code == ExitCode.FINDING
    assert result.stdout == '{"intent": 1}\n'  # the raw answer, then why on stderr
    assert "not a valid IR" in result.stderr


def _store(tmp_path: Path) -> Path:
    store = tmp_path / "store"
    imported = runner.invoke(
        app, ["cache", "import", "cache/recordings/demo.jsonl", "--path", str(store)]
    )
    assert imported.exit_code == 0, imported.output
    return store


@pytest.mark.parametrize(
    "argv",
    [
        ["datasets", "stats", "datasets/core", "--json"],
        ["datasets", "validate", "datasets/core", "--json"],
        ["cache", "stats", "--path", "{store}", "--json"],
        ["lm", "info", "--json"],
    ],
)
def test_json_flag_prints_one_document_on_stdout(argv, tmp_path):
    argv = [a.replace("{store}", str(_store(tmp_path))) if "{store}" in a else a for a in argv]
    result = runner.invoke(app, argv)
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert isinstance(document, dict) and document


def test_cache_stats_json_counts_what_the_table_shows(tmp_path):
    store = _store(tmp_path)
    figures = json.loads(
        runner.invoke(app, ["cache", "stats", "--path", str(store), "--json"]).stdout
    )
    lines = (ROOT / "cache/recordings/demo.jsonl").read_text().splitlines()
    assert figures["entries"] == len(lines) == sum(figures["per_model"].values())


def test_validate_json_lists_bad_rows_and_exits_1(tmp_path):
    good = (ROOT / "datasets/core/text_and_collections.jsonl").read_text().splitlines()[0]
    path = tmp_path / "rows.jsonl"
    path.write_text(good + "\n" + '{"id": "broken"}\n')
    result = runner.invoke(app, ["datasets", "validate", str(path), "--json"])
    assert result.exit_code == ExitCode.FINDING
    report = json.loads(result.stdout)
    assert report["valid"] is False and report["tasks"] == 1
    assert [(e["path"], e["line"]) for e in report["errors"]] == [(str(path), 2)]


def test_bad_input_exits_2_with_the_error_on_stderr(tmp_path):
    missing = runner.invoke(app, ["run", "experiments/does-not-exist.yaml"])
    assert missing.exit_code == ExitCode.BAD_INPUT
    assert "does-not-exist.yaml" in missing.stderr and missing.stdout == ""
    bad_mode = runner.invoke(app, ["run", str(DEMO), "--recorder", "offlin"])
    assert bad_mode.exit_code == ExitCode.BAD_INPUT  # typer's usage error names the choices
    assert "offline" in bad_mode.stderr
    no_dir = runner.invoke(app, ["datasets", "stats", str(tmp_path / "nothing")])
    assert no_dir.exit_code == ExitCode.BAD_INPUT and "no such file" in no_dir.stderr
    (tmp_path / "empty").mkdir()
    empty = runner.invoke(app, ["datasets", "stats", str(tmp_path / "empty")])
    assert empty.exit_code == ExitCode.BAD_INPUT and "no *.jsonl" in empty.stderr


# ---- YAML's `off` -------------------------------------------------------------------------------


def test_recorder_mode_off_through_the_yaml_loader_and_set(tmp_path):
    from liftdspy.experiments.config import load_config

    data = yaml.safe_load(DEMO.read_text())
    data["lm"]["recorder"]["mode"] = "off"
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(data).replace("mode: 'off'", "mode: off"))
    assert "mode: off\n" in path.read_text()  # unquoted: YAML reads it as False
    assert load_config(path).lm.recorder.mode == "off"
    for word in ("off", "no", "false", "Off"):
        assert load_config(DEMO, [f"lm.recorder.mode={word}"]).lm.recorder.mode == "off"


def test_isolation_refuses_a_yaml_boolean_naming_the_words():
    from liftdspy.experiments.config import ConfigError, load_config

    with pytest.raises(ConfigError, match=r"sandbox.isolation.*write 'bubblewrap' or 'none'"):
        load_config(DEMO, ["sandbox.isolation=off"])


def test_recorder_off_flag_with_an_lm_file(monkeypatch, tmp_path):
    """`evaluate --lm FILE --recorder off` failed (`recorder.mode: Input should be 'off', ...`);
    the evaluation itself is replaced (logic test: which LM config reaches it)."""
    seen = {}

    def capture(program, dataset, **kwargs):
        seen["mode"] = kwargs["lm"].recorder.mode
        raise SystemExit(0)

    monkeypatch.setattr("liftdspy.studies.heldout.evaluate_heldout", capture)
    args = ["evaluate", "programs/demo", "--dataset", "datasets/core"]
    result = runner.invoke(app, [*args, "--lm", str(DEMO), "--recorder", "off"])
    assert result.exit_code == 0, result.output
    assert seen == {"mode": "off"}
    result = runner.invoke(app, [*args, "--lm", str(DEMO), "--set", "recorder.mode=off"])
    assert result.exit_code == 0, result.output


# ---- study run: exit 3 ---------------------------------------------------------------------------


def test_study_stopped_by_its_budget_exits_3_naming_the_cells(monkeypatch, tmp_path):
    import test_studies

    from liftdspy.studies import executors

    data = test_studies.study_data(tmp_path, budget={"max_lm_calls": 6}, parity={"enabled": False})
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(data))
    scripted = executors.InProcessExecutor
    monkeypatch.setattr(
        executors, "InProcessExecutor", lambda: scripted(test_studies.scripted_factory)
    )
    result = runner.invoke(
        app, ["study", "run", str(path), "--json", "--report", str(tmp_path / "report")]
    )
    assert result.exit_code == ExitCode.INCOMPLETE, result.output
    document = json.loads(result.stdout)
    assert document["outcome"]["stopped_by_budget"]
    assert "labeled/seed=2/lm=default" in document["outcome"]["not_run"]
    assert "incomplete: stopped by the budget" in result.stderr
    assert "labeled/seed=2/lm=default" in result.stderr
