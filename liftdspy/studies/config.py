"""Study configs (`studies/NAME.yaml`): one dataset, one program, arms x seeds (x LMs).

An arm is an optimizer preset with overrides (`preset: mipro-small`), or a fixed program:
`fixed: zero-shot` (the unoptimized program), `fixed: random-demos` (k labelled demos drawn
from the train split with the seed) or `fixed: constant` (the metric's floor: the best constant
answer, scored per example with no LM call; `liftdspy.metrics.floor`). Every key is validated
before any LM call; an error names the file and the dotted key, like experiment configs.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from liftdspy.experiments.config import DatasetConfig, MetricConfig, ProgramConfig, TrackingConfig
from liftdspy.experiments.yaml_config import ConfigError, load_yaml_config
from liftdspy.ir import IROutput
from liftdspy.lm.config import LMConfig
from liftdspy.programs.adapters import AdapterName
from liftdspy.versioning import Version, hashed_form

FixedArm = Literal["zero-shot", "random-demos", "constant"]
SEED_FREE_ARMS = ("zero-shot", "constant")  # run once: the seed changes nothing
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ArmProgramConfig(_Section):
    """What an arm changes of the study's program (unset: the study's): arms may differ by
    adapter, or by what the model writes of the IR."""

    adapter: AdapterName | None = None
    ir_output: IROutput | None = None


class ArmConfig(_Section):
    """One arm: `preset` (+ `init`/`compile` overrides) or `fixed` (+ `k` for random-demos);
    `program` overrides the study's program options for this arm."""

    name: str = Field(pattern=NAME_PATTERN)
    program: ArmProgramConfig = Field(default_factory=ArmProgramConfig)
    preset: str | None = None
    init: dict[str, Any] = Field(default_factory=dict, description="overrides of preset.init")
    compile: dict[str, Any] = Field(default_factory=dict, description="overrides of preset.compile")
    fixed: FixedArm | None = None
    k: int = Field(3, ge=1, le=16, description="random-demos: labelled demos per predictor")

    @model_validator(mode="after")
    def _one_kind(self) -> ArmConfig:
        if (self.preset is None) == (self.fixed is None):
            raise ValueError("give exactly one of `preset` (an optimizer) or `fixed`")
        if self.fixed is not None and (self.init or self.compile):
            raise ValueError("init/compile overrides belong to optimizer arms, not fixed ones")
        return self

    @property
    def seeded(self) -> bool:
        """Whether the arm's result depends on the seed (zero-shot and constant do not: they
        run once)."""
        return self.fixed not in SEED_FREE_ARMS

    @property
    def kind(self) -> str:
        return self.fixed or f"optimizer:{self.preset}"


class BudgetConfig(_Section):
    """Stop the study once this many live LM calls / output tokens were spent (replays are free).
    Checked before each cell starts and inside each cell (a cell past the budget stops)."""

    max_lm_calls: int | None = Field(None, gt=0)
    max_output_tokens: int | None = Field(None, gt=0)


class ParityConfig(_Section):
    """Score the best arm's exported prompt pack through `liftdspy.runtime` (no DSPy)."""

    enabled: bool = True


class StudyConfig(_Section):
    version: Version = "1"
    name: str = Field(pattern=NAME_PATTERN)
    description: str = ""
    dataset: DatasetConfig
    program: ProgramConfig = Field(default_factory=ProgramConfig)
    lm: LMConfig | None = None
    lms: dict[str, LMConfig] = Field(
        default_factory=dict, description="several LMs by name (instead of `lm`)"
    )
    reflection_lm: LMConfig | None = None
    arms: list[ArmConfig] = Field(min_length=1)
    seeds: list[int] = Field(min_length=1)
    baseline: str = Field("random-demos", description="the arm every other arm is compared with")
    metric: MetricConfig = Field(default_factory=MetricConfig)
    num_threads: int = Field(1, ge=1, le=64)
    budget: BudgetConfig = Field(default_factory=BudgetConfig)
    parity: ParityConfig = Field(default_factory=ParityConfig)
    tracking: TrackingConfig = Field(default_factory=TrackingConfig)

    @model_validator(mode="after")
    def _check(self) -> StudyConfig:
        if (self.lm is None) == (not self.lms):
            raise ValueError("give exactly one of `lm` (one model) or `lms` (several, by name)")
        for name in self.lms:
            if not _valid_name(name):
                raise ValueError(f"lms.{name}: LM names use letters, digits, '_', '.', '-'")
        names = [arm.name for arm in self.arms]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"arms: duplicate arm names {duplicates}")
        if len(set(self.seeds)) != len(self.seeds):
            raise ValueError("seeds: duplicate seeds")
        if self.baseline not in names:
            raise ValueError(f"baseline: {self.baseline!r} is not an arm; arms are {names}")
        if self.metric.name is None:
            self.metric.name = self.program.default_metric
        return self

    def arm(self, name: str) -> ArmConfig:
        for arm in self.arms:
            if arm.name == name:
                return arm
        raise KeyError(name)

    def arm_program(self, arm: ArmConfig | str) -> ProgramConfig:
        """The study's program with `arm`'s overrides (`arms[].program`), validated."""
        arm = self.arm(arm) if isinstance(arm, str) else arm
        overrides = arm.program.model_dump(exclude_none=True)
        if not overrides:
            return self.program
        return ProgramConfig.model_validate({**self.program.model_dump(), **overrides})

    def named_lms(self) -> dict[str, LMConfig]:
        return dict(self.lms) if self.lms else {"default": self.lm}  # type: ignore[dict-item]

    def identity_hash(self) -> str:
        """What decides the cells' results (budget, parity and description excluded): a study
        re-run with the same identity resumes the same MLflow parent run."""
        data = self.model_dump(mode="json", exclude={"budget", "description", "parity"})
        data["version"] = hashed_form(data["version"])
        dataset_hash_material(data["dataset"])
        program_hash_material(data["program"])
        for arm in data["arms"]:
            arm_hash_material(arm)
        for lm in [data.get("lm"), data.get("reflection_lm"), *data.get("lms", {}).values()]:
            if lm:
                lm_hash_material(lm)
        text = json.dumps(data, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def dataset_hash_material(dataset: dict[str, Any]) -> dict[str, Any]:
    """A dataset config's JSON dump as the study hashes take it (in place): no `imports` key when
    it imports nothing (the hashes of studies from before imports existed), and each import's
    file as its name and the sha256 of its bytes (what it holds decides results, not where)."""
    imports = dataset.pop("imports", None) or []
    if imports:
        dataset["imports"] = [_import_hash_material(dict(spec)) for spec in imports]
    return dataset


def _import_hash_material(spec: dict[str, Any]) -> dict[str, Any]:
    path = spec.get("path")
    if path:
        file = Path(path)
        spec["path"] = file.name
        if file.is_file():
            spec["sha256"] = hashlib.sha256(file.read_bytes()).hexdigest()
    return spec


def lm_hash_material(lm: dict[str, Any]) -> dict[str, Any]:
    """An LM config's JSON dump as the study hashes take it (in place): without the recorder (where
    calls are recorded does not change them) and its lanes (they change which requests share a
    batch, not the requests), format versions in their hashed form."""
    lm.pop("recorder", None)
    lm.pop("lanes", None)
    lm["version"] = hashed_form(lm["version"])
    if lm.get("server"):
        lm["server"]["version"] = hashed_form(lm["server"]["version"])
    return lm


# Program options whose value reproduces the requests made before the option existed: hashed
# as if absent, so a study pinned to them resumes the cells it ran before.
LEGACY_PROGRAM_OPTIONS = {"adapter": "json", "ir_output": "full"}


def program_hash_material(program: dict[str, Any]) -> dict[str, Any]:
    """A program config's JSON dump as the study hashes take it (in place): options at their
    legacy values (`LEGACY_PROGRAM_OPTIONS`) left out."""
    for key, legacy in LEGACY_PROGRAM_OPTIONS.items():
        if program.get(key) == legacy:
            program.pop(key)
    return program


def arm_hash_material(arm: dict[str, Any]) -> dict[str, Any]:
    """An arm's JSON dump as the study hashes take it (in place): its program overrides left
    out when it has none (as arms were before they could have any)."""
    overrides = {k: v for k, v in (arm.pop("program", None) or {}).items() if v is not None}
    if overrides:
        arm["program"] = overrides
    return arm


def _valid_name(name: str) -> bool:
    import re

    return re.match(NAME_PATTERN, name) is not None


class StudyConfigError(ConfigError):
    """A study config is invalid; the message names the file and the key."""


def load_study(path: str | Path, overrides: list[str] | None = None) -> StudyConfig:
    """Read, override (`--set a.b=v`) and validate a study file."""
    return load_yaml_config(
        path, StudyConfig, overrides, what="study config", error=StudyConfigError
    )
