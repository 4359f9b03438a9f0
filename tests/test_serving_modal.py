"""The Modal deployment without network: endpoint settings, the app object, `liftdspy modal`.

Modal never sees credentials here: MODAL_CONFIG_PATH points at an empty temp file and the
MODAL_TOKEN_* variables are removed.
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from liftdspy.serving.modal_endpoint import ModalDeployment, ModalEndpointError

runner = CliRunner()


@pytest.fixture
def no_modal_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = tmp_path / "modal.toml"
    config.write_text("")
    monkeypatch.setenv("MODAL_CONFIG_PATH", str(config))
    for name in list(os.environ):
        if name.startswith(("MODAL_TOKEN", "LIFTDSPY_MODAL_")) or name == "MODAL_PROFILE":
            monkeypatch.delenv(name)


# ---- endpoint settings (no modal import) ---------------------------------------------------


def test_deployment_defaults_and_environment_overrides() -> None:
    default = ModalDeployment.from_env({})
    assert (default.app_name, default.gpu_type) == ("liftdspy-vllm", "L40S")
    assert default.served_model_name == "Qwen/Qwen2.5-Coder-7B-Instruct"
    big = ModalDeployment.from_env({"LIFTDSPY_MODAL_PRESET": "qwen-coder-32b"})
    assert big.gpu_type == "H100"
    assert big.serve_config().model == "Qwen/Qwen2.5-Coder-32B-Instruct"
    chosen = ModalDeployment.from_env({"LIFTDSPY_MODAL_GPU": "A10G"})
    assert chosen.gpu_type == "A10G"
    with pytest.raises(ModalEndpointError, match="LIFTDSPY_MODAL_PRESET"):
        ModalDeployment.from_env({"LIFTDSPY_MODAL_PRESET": "nope"})


def test_weights_are_downloaded_to_the_volume() -> None:
    assert ModalDeployment().serve_config().download_dir.startswith("/models/")


def test_documented_url_pattern() -> None:
    deployment = ModalDeployment(workspace="Acme")
    assert deployment.base_url() == "https://acme--liftdspy-vllm-serve.modal.run/v1"
    staged = ModalDeployment(workspace="acme", environment="dev", app_name="coder")
    assert staged.web_url() == "https://acme-dev--coder-serve.modal.run"
    with pytest.raises(ModalEndpointError, match="LIFTDSPY_MODAL_WORKSPACE"):
        ModalDeployment().web_url()
    with pytest.raises(ModalEndpointError, match="liftdspy modal url"):
        ModalDeployment(workspace="acme", app_name="x" * 70).web_url()


def test_modal_lm_points_at_the_deployment(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    from liftdspy.lm import modal_lm, recorder_of
    from liftdspy.lm.store import CACHE_DIR_ENV

    monkeypatch.setenv(CACHE_DIR_ENV, str(tmp_path))  # its recorder's store
    monkeypatch.setenv("LIFTDSPY_MODAL_WORKSPACE", "acme")
    monkeypatch.delenv("LIFTDSPY_MODAL_URL", raising=False)
    lm = modal_lm()
    assert lm.engine.identity() == {
        "kind": "openai",
        "model": "Qwen/Qwen2.5-Coder-7B-Instruct",
        "base_url": "https://acme--liftdspy-vllm-serve.modal.run/v1",
    }
    assert recorder_of(lm).inner.first_call_timeout >= 600  # cold starts load the model
    assert lm.num_retries == 0  # the engine retries; DSPy must not retry again


# ---- the Modal app object -------------------------------------------------------------------


@pytest.fixture
def modal_app(no_modal_credentials: None):
    pytest.importorskip("modal", reason="the `modal` extra is not installed")
    sys.modules.pop("liftdspy.serving.modal_app", None)
    return importlib.import_module("liftdspy.serving.modal_app")


def test_importing_the_app_builds_a_gpu_web_function_with_secret_and_volume(modal_app) -> None:
    import modal

    assert isinstance(modal_app.app, modal.App)
    assert modal_app.app.name == "liftdspy-vllm"
    function = modal_app.serve
    assert isinstance(function, modal.Function)
    assert function._is_web_endpoint()
    spec = function._spec_  # modal's own record of the decorator arguments
    assert spec.gpus == "L40S"
    assert [repr(secret) for secret in spec.secrets] == ["modal.Secret.from_name('liftdspy-vllm')"]
    assert set(spec.volumes) == {"/models"}
    assert repr(spec.volumes["/models"]) == "modal.Volume.from_name('liftdspy-hf-cache')"
    described = modal_app.describe()
    assert described["vllm"] == modal_app.VLLM_VERSION
    assert described["serve_config"]["download_dir"].startswith("/models/")


def test_app_settings_follow_the_environment(modal_app, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIFTDSPY_MODAL_PRESET", "qwen-coder-32b")
    monkeypatch.setenv("LIFTDSPY_MODAL_APP", "coder-32b")
    sys.modules.pop("liftdspy.serving.modal_app", None)
    module = importlib.import_module("liftdspy.serving.modal_app")
    assert module.app.name == "coder-32b"
    assert module.serve._spec_.gpus == "H100"
    # the container rebuilds exactly what was deployed, from the image environment
    shipped = ModalDeployment.model_validate_json(module.deployment.model_dump_json())
    assert shipped.preset == "qwen-coder-32b"
    sys.modules.pop("liftdspy.serving.modal_app", None)


# ---- `liftdspy modal ...` -------------------------------------------------------------------


def cli():
    from liftdspy.cli import app

    return app


def test_url_without_credentials_says_what_is_missing(no_modal_credentials: None) -> None:
    pytest.importorskip("modal", reason="the `modal` extra is not installed")
    result = runner.invoke(cli(), ["modal", "url"])
    assert result.exit_code == 1
    output = " ".join(result.output.split())
    assert "no Modal credentials" in output and "modal token new" in output


def test_url_offline_needs_the_workspace(
    no_modal_credentials: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = runner.invoke(cli(), ["modal", "url", "--offline"])
    assert result.exit_code == 1
    assert "LIFTDSPY_MODAL_WORKSPACE" in " ".join(result.output.split())
    monkeypatch.setenv("LIFTDSPY_MODAL_WORKSPACE", "acme")
    result = runner.invoke(cli(), ["modal", "url", "--offline", "--app", "coder"])
    assert result.exit_code == 0
    assert result.output.strip() == "https://acme--coder-serve.modal.run/v1"


def test_deploy_runs_modal_deploy_on_the_app_module_with_settings(
    no_modal_credentials: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Logic test: a stub `modal` executable on PATH records how it was called."""
    record = tmp_path / "calls.txt"
    stub = tmp_path / "bin" / "modal"
    stub.parent.mkdir()
    stub.write_text(
        f'#!/bin/sh\necho "$@|$LIFTDSPY_MODAL_PRESET|$LIFTDSPY_MODAL_GPU" >> "{record}"\n'
    )
    stub.chmod(0o755)
    monkeypatch.setenv("PATH", f"{stub.parent}{os.pathsep}{os.environ['PATH']}")
    result = runner.invoke(
        cli(), ["modal", "deploy", "--preset", "qwen-coder-32b", "--gpu", "H200"]
    )
    assert record.read_text().strip() == "deploy -m liftdspy.serving.modal_app|qwen-coder-32b|H200"
    # deployed, but without credentials the URL lookup explains itself
    assert result.exit_code == 0
    assert "no Modal credentials" in " ".join(result.output.split())


def test_deploy_reports_a_failed_modal_deploy(
    no_modal_credentials: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    stub = tmp_path / "bin" / "modal"
    stub.parent.mkdir()
    stub.write_text("#!/bin/sh\nexit 3\n")
    stub.chmod(0o755)
    monkeypatch.setenv("PATH", f"{stub.parent}{os.pathsep}{os.environ['PATH']}")
    result = runner.invoke(cli(), ["modal", "deploy"])
    assert result.exit_code == 1
    assert "exited with code 3" in " ".join(result.output.split())


def test_deploy_rejects_an_unknown_preset(no_modal_credentials: None) -> None:
    result = runner.invoke(cli(), ["modal", "deploy", "--preset", "gpt-9"])
    assert result.exit_code == 2  # bad input
    assert "qwen-coder-7b" in " ".join(result.output.split())


# ---- scaling settings ------------------------------------------------------------------------


def test_scaling_settings_come_from_the_environment_and_are_validated() -> None:
    deployment = ModalDeployment.from_env(
        {
            "LIFTDSPY_MODAL_MIN_CONTAINERS": "1",
            "LIFTDSPY_MODAL_MAX_CONTAINERS": "3",
            "LIFTDSPY_MODAL_MAX_INPUTS": "8",
            "LIFTDSPY_MODAL_SCALEDOWN_WINDOW": "120",
        }
    )
    assert (deployment.min_containers, deployment.max_containers) == (1, 3)
    assert (deployment.max_inputs, deployment.scaledown_window) == (8, 120)
    with pytest.raises(ModalEndpointError, match="LIFTDSPY_MODAL_MAX_CONTAINERS"):
        ModalDeployment.from_env({"LIFTDSPY_MODAL_MAX_CONTAINERS": "0"})
    with pytest.raises(ModalEndpointError, match="min_containers"):
        ModalDeployment.from_env(
            {"LIFTDSPY_MODAL_MIN_CONTAINERS": "5", "LIFTDSPY_MODAL_MAX_CONTAINERS": "2"}
        )
    with pytest.raises(ModalEndpointError, match="LIFTDSPY_MODAL_SCALEDOWN_WINDOW"):
        ModalDeployment.from_env({"LIFTDSPY_MODAL_SCALEDOWN_WINDOW": "soon"})


def test_num_threads_maps_to_containers() -> None:
    deployment = ModalDeployment(max_inputs=8, max_containers=4)
    assert [deployment.containers_for(n) for n in (1, 8, 9, 16, 64)] == [1, 1, 2, 2, 4]
    assert ModalDeployment(min_containers=2, max_inputs=32).containers_for(1) == 2


def test_the_app_carries_the_scaling_settings_and_the_current_vllm(
    modal_app, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LIFTDSPY_MODAL_MIN_CONTAINERS", "1")
    monkeypatch.setenv("LIFTDSPY_MODAL_MAX_CONTAINERS", "2")
    monkeypatch.setenv("LIFTDSPY_MODAL_MAX_INPUTS", "16")
    import modal

    seen: dict[str, object] = {}
    real_function, real_concurrent = modal.App.function, modal.concurrent

    def spy_function(self, *args, **kwargs):
        seen.update(kwargs)
        return real_function(self, *args, **kwargs)

    def spy_concurrent(*args, **kwargs):
        seen["concurrent"] = kwargs
        return real_concurrent(*args, **kwargs)

    monkeypatch.setattr(modal.App, "function", spy_function)
    monkeypatch.setattr(modal, "concurrent", spy_concurrent)
    sys.modules.pop("liftdspy.serving.modal_app", None)
    module = importlib.import_module("liftdspy.serving.modal_app")
    try:
        assert (seen["min_containers"], seen["max_containers"]) == (1, 2)
        assert seen["scaledown_window"] == 600
        assert seen["concurrent"] == {"max_inputs": 16}
        described = module.describe()
        assert described["vllm"].startswith("0.33.") and described["torch"] == "2.14.0"
    finally:
        sys.modules.pop("liftdspy.serving.modal_app", None)
