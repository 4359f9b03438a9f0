"""Credentials never reach MLflow params, the logged configs or exports; counts named `*_tokens`
are not credentials and are logged as they are."""

from __future__ import annotations

import json

import yaml
from mlflow.tracking import MlflowClient

from liftdspy.redaction import REDACTED, is_secret_key, redact_data, redact_text, redact_url
from liftdspy.tracking import flatten_params
from tests.test_runner import ROOT, in_repo, scripted_ir_engine  # noqa: F401 (fixture)

SECRET = "hunter2-0123456789"
URI = f"https://bob:{SECRET}@mlflow.example:8443/api?token={SECRET}&workspace=w1"


def test_secret_keys_are_credentials_and_token_counts_are_not():
    for key in ("api_key", "apikey", "openai_api_key", "token", "access_token", "password"):
        assert is_secret_key(key), key
    for key in ("max_tokens", "lm.max_tokens", "output_tokens", "api_key_env", "tokenizer"):
        assert not is_secret_key(key), key


def test_max_tokens_is_logged_and_a_token_is_not():
    params = flatten_params({"lm": {"max_tokens": 450, "api_key_env": "K", "token": SECRET}})
    assert params["lm.max_tokens"] == "450"
    assert params["lm.api_key_env"] == "K"
    assert params["lm.token"] == REDACTED


def test_urls_lose_userinfo_and_secret_parameters_only():
    assert redact_url(URI) == (
        f"https://{REDACTED}@mlflow.example:8443/api?token={REDACTED}&workspace=w1"
    )
    assert redact_url("sqlite:////tmp/x/mlflow.db") == "sqlite:////tmp/x/mlflow.db"
    assert redact_url("http://127.0.0.1:8000/v1") == "http://127.0.0.1:8000/v1"
    text = f"tracking:\n  uri: {URI}  # the team server\n"
    assert SECRET not in redact_text(text) and "# the team server" in redact_text(text)
    params = flatten_params({"tracking": {"uri": URI}})
    assert SECRET not in params["tracking.uri"] and "mlflow.example" in params["tracking.uri"]
    assert SECRET not in json.dumps(redact_data({"tracking": {"uri": URI}, "xs": [URI]}))


def test_credentials_in_a_config_never_reach_the_run(tmp_path, in_repo):  # noqa: F811
    from liftdspy.experiments.config import load_config
    from liftdspy.experiments.runner import run_experiment
    from liftdspy.lm import build_lm

    config_file = tmp_path / "exp.yaml"
    data = {
        "name": "redact-test",
        "description": f"mirrors to {URI}",
        "dataset": {
            "paths": [str(ROOT / "datasets" / "core")],
            "max_train": 2,
            "max_val": 2,
            "max_eval": 2,
        },
        "lm": {
            "kind": "local",
            "model": "scripted-ir",
            "max_tokens": 333,
            "recorder": {"mode": "off", "path": str(tmp_path / "rec")},
        },
        "optimizer": {"preset": "labeled-fewshot"},
        "tracking": {"uri": f"sqlite:///{tmp_path / 'mlflow.db'}", "experiment": "redact"},
    }
    config_file.write_text(f"# team server: {URI}\n" + yaml.safe_dump(data))
    config = load_config(config_file)
    outcome = run_experiment(
        config,
        config_path=config_file,
        lm_factory=lambda c: build_lm(c, engine=scripted_ir_engine()),
    )
    client = MlflowClient(tracking_uri=config.tracking.uri)
    params = client.get_run(outcome.run_id).data.params
    assert params["lm.max_tokens"] == "333"
    assert "mlflow.example" in params["description"]
    written = [p for p in tmp_path.rglob("*") if p.is_file() and p != config_file]
    assert any(p.name == "resolved.json" for p in written)
    assert any(p.name == "exp.yaml" for p in written)  # the raw config, redacted
    leaks = [p for p in written if SECRET.encode() in p.read_bytes()]
    assert leaks == []
