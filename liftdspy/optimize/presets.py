"""Optimizer presets: YAML files under `optimizers/`, validated with pydantic.

A preset names a DSPy optimizer and the keyword arguments of its constructor (`init`) and of
its `compile` call (`compile`). Keys are checked against the optimizer's real signatures, so a
typo fails when the preset loads, before any LM call.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from liftdspy.errors import LiftdspyError
from liftdspy.validation_errors import validation_problems
from liftdspy.versioning import Version

OptimizerName = Literal[
    "MIPROv2",
    "COPRO",
    "BootstrapFewShot",
    "BootstrapFewShotWithRandomSearch",
    "LabeledFewShot",
    "GEPA",
    "SIMBA",
]


# Arguments liftdspy supplies itself; a preset may not set them.
SUPPLIED_INIT = {"metric", "prompt_model", "task_model", "reflection_lm", "teacher_settings"}
SUPPLIED_COMPILE = {"student", "trainset", "valset", "teacher", "program"}

PRESETS_DIR = Path("optimizers")


def optimizer_class(name: OptimizerName) -> type:
    import dspy

    return getattr(dspy, name)


def _accepted(fn) -> tuple[set[str], bool]:
    params = inspect.signature(fn).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    return {n for n in params if n != "self"}, takes_any


class OptimizerPreset(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: Version = "1"  # presets without it are version "1"
    name: str
    optimizer: OptimizerName
    description: str = ""
    init: dict[str, Any] = Field(default_factory=dict)
    compile: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _known_arguments(self) -> OptimizerPreset:
        cls = optimizer_class(self.optimizer)
        for section, fn, supplied in (
            ("init", cls.__init__, SUPPLIED_INIT),
            ("compile", cls.compile, SUPPLIED_COMPILE),
        ):
            accepted, takes_any = _accepted(fn)
            for key in getattr(self, section):
                if key in supplied:
                    raise ValueError(f"{section}.{key} is set by liftdspy itself; remove it")
                if key not in accepted and not takes_any:
                    known = ", ".join(sorted(accepted - supplied))
                    raise ValueError(
                        f"{section}.{key} is not an argument of {self.optimizer}.{section}(); "
                        f"known: {known}"
                    )
        return self


class PresetError(LiftdspyError, ValueError):
    """A preset file is missing or invalid; the message names the file."""


def load_preset(name_or_path: str | Path, presets_dir: Path = PRESETS_DIR) -> OptimizerPreset:
    """Load `optimizers/<name>.yaml`, or a YAML file by path."""
    path = Path(name_or_path)
    if path.suffix not in {".yaml", ".yml"}:
        path = presets_dir / f"{name_or_path}.yaml"
    if not path.is_file():
        available = ", ".join(sorted(p.stem for p in presets_dir.glob("*.yaml"))) or "none"
        raise PresetError(
            f"no optimizer preset {str(name_or_path)!r} ({path}); available: {available}"
        )
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise PresetError(f"{path}: not valid YAML: {exc}") from exc
    try:
        return OptimizerPreset.model_validate(data)
    except ValidationError as exc:
        raise PresetError(f"{path}: {'; '.join(validation_problems(exc))}") from exc


def available_presets(presets_dir: Path = PRESETS_DIR) -> list[OptimizerPreset]:
    return [load_preset(p) for p in sorted(presets_dir.glob("*.yaml"))]
