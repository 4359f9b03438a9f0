"""Reading a YAML config file: `--set a.b=v` overrides, then validation into a pydantic model.

Experiment configs and study configs load the same way; every error names the file and, for an
invalid value, the dotted key. Override values are parsed as YAML scalars and applied to the raw
YAML before validation, so they are checked like the file's own values.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from liftdspy.errors import LiftdspyError
from liftdspy.validation_errors import validation_problems

Model = TypeVar("Model", bound=BaseModel)


class ConfigError(LiftdspyError, ValueError):
    """A config file (experiment, study, LM) is invalid; the message names the file and the key."""


def parse_override(text: str) -> tuple[list[str], Any]:
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(
            f"--set {text!r}: expected KEY=VALUE, e.g. optimizer.compile.num_trials=5"
        )
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as exc:
        raise ConfigError(f"--set {text!r}: value is not valid YAML: {exc}") from exc
    return key.strip().split("."), value


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Set dotted keys in (a copy of) the raw config. Intermediate sections are created."""
    data = copy.deepcopy(data)
    for text in overrides:
        path, value = parse_override(text)
        node = data
        for i, part in enumerate(path[:-1]):
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                where = ".".join(path[: i + 1])
                raise ConfigError(f"--set {text!r}: {where} is a value, not a section")
            node = child
        node[path[-1]] = value
    return data


def load_yaml_config(
    path: str | Path,
    model: type[Model],
    overrides: list[str] | None = None,
    *,
    what: str,
    error: type[ConfigError] = ConfigError,
) -> Model:
    """Read the YAML mapping at `path`, apply `overrides`, validate it as `model`. Every problem
    is an `error` naming the file (`what` says what it should have been, e.g. "study config")."""
    path = Path(path)
    if not path.is_file():
        raise error(f"{path}: no such {what}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise error(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise error(f"{path}: expected a mapping at the top level")
    try:
        data = apply_overrides(data, overrides or [])
    except ConfigError as exc:
        raise error(str(exc)) from None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = "\n".join(f"  {problem}" for problem in validation_problems(exc))
        raise error(f"{path}: invalid {what}:\n{problems}") from exc
