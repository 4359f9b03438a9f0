"""Exports carry their LM config, redacted: `liftdspy evaluate programs/NAME --dataset D` runs
on it without `--lm` (replayed offline from the committed demo recording), `--lm` still
overrides it, and no credential planted in the LM config reaches any exported file."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import pytest
from typer.testing import CliRunner

from liftdspy.cli import app
from liftdspy.experiments.config import load_config
from liftdspy.export import (
    LM_CONFIG_FILE,
    ExportedLMConfig,
    read_lm_config,
    read_manifest,
    write_export,
)
from liftdspy.export.lm_config import file_recorder_mode
from liftdspy.lm.config import LMConfig
from liftdspy.programs import build_program

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "experiments" / "demo.yaml"
KEY_ENV = "LIFTDSPY_TEST_LM_CONFIG_KEY"
SECRET = "sk-planted-secret-0a1b2c3d4e5f"
URL_TOKEN = "tok-planted-in-url-99887766"
USER_PASSWORD = "pw-planted-userinfo-5544"


@pytest.fixture(autouse=True)
def in_repo(monkeypatch):
    monkeypatch.chdir(ROOT)
    monkeypatch.delenv("LIFTDSPY_RECORDER", raising=False)
    yield
    mlflow.end_run()


def _every_file(out: Path) -> str:
    return "\n".join(p.read_text(encoding="utf-8") for p in sorted(out.rglob("*")) if p.is_file())


def test_planted_credentials_never_reach_the_export(tmp_path, monkeypatch):
    monkeypatch.setenv(KEY_ENV, SECRET)
    query = LMConfig(
        kind="openai",
        model="served",
        base_url=f"http://127.0.0.1:9/v1?api_key={SECRET}&token={URL_TOKEN}&region=eu",
        api_key_env=KEY_ENV,
        max_tokens=222,
        recorder={"mode": "replay", "name": "served", "path": str(tmp_path / "rec")},
    )
    out = tmp_path / "query"
    manifest = write_export(
        build_program("nl_to_ir"), out, lm_config=query, program_name="nl_to_ir"
    )
    text = _every_file(out)
    assert SECRET not in text and URL_TOKEN not in text
    assert str(tmp_path / "rec") not in text  # the exporting machine's recorder directory
    exported = ExportedLMConfig.model_validate_json((out / LM_CONFIG_FILE).read_text())
    assert exported.redacted == ["base_url"]
    assert exported.lm.base_url == (
        "http://127.0.0.1:9/v1?api_key=<redacted>&token=<redacted>&region=eu"
    )
    assert exported.lm.api_key_env == KEY_ENV and exported.lm.max_tokens == 222
    assert manifest.lm_config == LM_CONFIG_FILE
    assert LM_CONFIG_FILE in [f.path for f in read_manifest(out).files]

    # Credentials in the URL's userinfo (refused by LMConfig, but a config built around its
    # validation, e.g. an old run's, must not leak them either).
    userinfo = query.model_copy(update={"base_url": f"http://user:{USER_PASSWORD}@127.0.0.1:9/v1"})
    out = tmp_path / "userinfo"
    write_export(build_program("nl_to_ir"), out, lm_config=userinfo, program_name="nl_to_ir")
    assert USER_PASSWORD not in _every_file(out)
    assert read_lm_config(out).base_url == "http://127.0.0.1:9/v1"


def test_an_export_without_lm_drops_a_stale_lm_config(tmp_path):
    out = tmp_path / "export"
    lm = load_config(DEMO).lm
    write_export(build_program("nl_to_ir"), out, lm_config=lm, program_name="nl_to_ir")
    assert read_lm_config(out).max_tokens == lm.max_tokens
    write_export(build_program("nl_to_ir"), out, program_name="nl_to_ir")
    assert read_lm_config(out) is None and read_manifest(out).lm_config is None


@pytest.mark.parametrize(
    ("run_mode", "file_mode", "exported"),
    [
        ("record", None, "replay"),  # would re-record every call of a later evaluation live
        ("offline", None, "replay"),  # would fail on any input outside the recording
        ("replay", None, "replay"),
        ("off", None, "off"),
        ("record", "off", "off"),  # the experiment file's own mode, when the run logged it
        ("off", "replay", "replay"),
        ("offline", "record", "replay"),
    ],
)
def test_the_export_keeps_the_recorder_mode_a_later_user_needs(
    tmp_path, run_mode, file_mode, exported
):
    lm = load_config(DEMO, [f"lm.recorder.mode={run_mode}"]).lm
    out = tmp_path / "export"
    write_export(
        build_program("nl_to_ir"), out, lm_config=lm, program_name="nl_to_ir",
        recorder_mode=file_mode,
    )  # fmt: skip
    assert read_lm_config(out).recorder.mode == exported
    assert read_lm_config(out).recorder.name == lm.recorder.name


def test_the_recorder_mode_an_experiment_file_asks_for():
    assert file_recorder_mode(DEMO.read_text()) == "replay"
    assert file_recorder_mode("lm:\n  kind: local\n  recorder:\n    mode: off\n") == "off"
    assert file_recorder_mode("lm:\n  kind: local\n  model: m\n") == "replay"  # the default
    assert file_recorder_mode("name: no-lm\n") is None
    assert file_recorder_mode("lm:\n  recorder:\n    mode: sometimes\n") is None


def test_the_shipped_demo_export_carries_the_demo_lm():
    shipped = read_lm_config(ROOT / "programs" / "demo")
    demo = load_config(DEMO).lm.model_dump(mode="json")
    demo["recorder"]["path"] = None
    assert shipped is not None and shipped.model_dump(mode="json") == demo
    manifest = read_manifest(ROOT / "programs" / "demo")
    entry = next(f for f in manifest.files if f.path == LM_CONFIG_FILE)
    assert entry.bytes == (ROOT / "programs/demo" / LM_CONFIG_FILE).stat().st_size


def _evaluate(tmp_path: Path, *extra: str) -> dict:
    args = ["evaluate", "programs/demo", "--dataset", "datasets/core", "-n", "16"]
    args += ["--recorder", "offline", "--set", f"recorder.path={tmp_path / 'store'}"]
    args += ["--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}", "--json", *extra]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.mark.local
def test_evaluate_an_export_without_lm_replays_the_committed_recording(tmp_path):
    """The demo's 16 test tasks, on the LM the export carries: every answer comes from
    cache/recordings/demo.jsonl (offline: a miss would be an error), none from the model."""
    pytest.importorskip("llama_cpp", reason="the demo engine needs the `local` extra")
    outcome = _evaluate(tmp_path)
    assert outcome["cost"]["lm_calls"] == 0 and outcome["cost"]["lm_cache_hits"] == 16
    assert outcome["source_run_id"] == read_manifest(ROOT / "programs/demo").source_run_id
    # --lm still overrides: the demo config's own `lm` is the same LM, so the same scores.
    with_lm = _evaluate(tmp_path, "--lm", str(DEMO))
    assert with_lm["report"]["score"] == outcome["report"]["score"]
    assert [r["score"] for r in with_lm["report"]["results"]] == [
        r["score"] for r in outcome["report"]["results"]
    ]
    # A different LM is a different request: offline, it has no recording.
    other = CliRunner().invoke(
        app,
        [
            "evaluate", "programs/demo", "--dataset", "datasets/core", "-n", "1",
            "--lm", str(DEMO), "--set", "max_tokens=479", "--recorder", "offline",
            "--set", f"recorder.path={tmp_path / 'store'}",
            "--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}",
        ],
    )  # fmt: skip
    assert other.exit_code == 1 and "No recording" in other.stderr
