"""Experiment configs: one YAML file per experiment, validated before any LM call.

Every section forbids unknown keys, so a typo fails with the key's dotted path. `--set a.b=v`
overrides (values parsed as YAML scalars) are applied to the raw YAML before validation
(`liftdspy.experiments.yaml_config`, shared with study configs).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from liftdspy.datasets.imports import DatasetImport, load_dataset
from liftdspy.datasets.row import LabelledTask, Split
from liftdspy.experiments.yaml_config import ConfigError as ConfigError  # re-exported
from liftdspy.experiments.yaml_config import load_yaml_config
from liftdspy.ir import IROutput
from liftdspy.lm.config import LMConfig
from liftdspy.metrics.base import MetricName
from liftdspy.metrics.code_metric import CodeMetricWeights
from liftdspy.metrics.end_to_end import EndToEndWeights
from liftdspy.metrics.ir_metric import IRMetricWeights
from liftdspy.programs.adapters import AdapterName, default_adapter
from liftdspy.programs.predictors import PredictorKind
from liftdspy.programs.registry import ProgramName, program_spec, programs_taking
from liftdspy.versioning import Version
from liftdspy.yaml_words import NoBooleans

if TYPE_CHECKING:
    import dspy


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DatasetConfig(_Section):
    paths: list[Path] = Field(min_length=1)
    imports: list[DatasetImport] = Field(
        default_factory=list,
        description="benchmark files imported when the dataset loads, after `paths` "
        "(liftdspy.datasets.imports: MBPP, HumanEval; cached)",
    )
    train_split: Split = "train"
    val_split: Split = "dev"
    eval_split: Split = "test"
    max_train: int | None = Field(None, gt=0)
    max_val: int | None = Field(None, gt=0)
    max_eval: int | None = Field(None, gt=0)

    @model_validator(mode="after")
    def _held_out_eval(self) -> DatasetConfig:
        for role in ("train_split", "val_split"):
            if getattr(self, role) == self.eval_split:
                raise ValueError(
                    f"eval_split {self.eval_split!r} is also the {role}: the evaluation split "
                    "must be held out from optimization"
                )
        return self

    def load_tasks(self) -> list[LabelledTask]:
        """Every task of `paths`, then of each of `imports` (`liftdspy.datasets.imports`)."""
        return load_dataset(self.paths, self.imports)

    def describe_sources(self) -> str:
        return ", ".join([*(str(p) for p in self.paths), *(i.describe() for i in self.imports)])

    def absolute(self, root: Path) -> DatasetConfig:
        """This config with relative paths (of files and imports) made absolute under `root`."""
        out = self.model_copy(deep=True)
        out.paths = [p if p.is_absolute() else (root / p).resolve() for p in out.paths]
        for spec in out.imports:
            if spec.path is not None and not spec.path.is_absolute():
                spec.path = (root / spec.path).resolve()
        return out


# ProgramConfig fields that are build options of some programs (ProgramSpec.options), and why.
OPTION_FIELDS = {
    "repair_rounds": "it runs the tests",
    "adapter": "every program has one",
    "ir_output": "it has an NL -> IR step",
}


class ProgramConfig(_Section):
    name: ProgramName = "nl_to_ir"
    predictor: PredictorKind = "predict"
    repair_rounds: int = Field(
        0, ge=0, le=3, description="pipeline only: repair rounds, each seeing the failing tests"
    )
    adapter: AdapterName | None = Field(
        None,
        description="the DSPy adapter: compact | baml | json | chat (liftdspy.programs.adapters);"
        " unset: compact where the LM enforces the output schema, else json (resolve_adapter)",
    )
    ir_output: IROutput = Field(
        "lean",
        description="what the model writes of the IR: lean (its content without the two free-text"
        ' rationales, which the IR then holds as ""), content (everything but metadata and '
        "version, which the program fills) or full (the requests before the content output "
        "existed)",
    )

    def resolve_adapter(self, lm: LMConfig) -> ProgramConfig:
        """This config with `adapter` set: as given, else the default for `lm`'s engine."""
        if self.adapter is not None:
            return self
        return self.model_copy(update={"adapter": default_adapter(lm.kind)})

    @model_validator(mode="after")
    def _options_fit_the_program(self) -> ProgramConfig:
        accepted = program_spec(self.name).options
        for key, why in OPTION_FIELDS.items():
            if getattr(self, key) != type(self).model_fields[key].default and key not in accepted:
                takers = " / ".join(programs_taking(key))
                raise ValueError(
                    f"{key} applies to the {takers} program only ({why}), not to {self.name!r}"
                )
        return self

    def options(self) -> dict[str, Any]:
        """The program's build options (`build_program(name, predictor, **options)`)."""
        spec = program_spec(self.name)
        return spec.resolve_options(
            {k: getattr(self, k) for k in OPTION_FIELDS if k in spec.options}
        )

    def build(self) -> dspy.Module:
        return program_spec(self.name).build(self.predictor, **self.options())

    @property
    def default_metric(self) -> MetricName:
        return program_spec(self.name).default_metric


class OptimizerConfig(_Section):
    preset: str
    init: dict[str, Any] = Field(default_factory=dict, description="overrides of preset.init")
    compile: dict[str, Any] = Field(default_factory=dict, description="overrides of preset.compile")


class MetricConfig(_Section):
    """Which metric scores the program (default: by program) and the weights of its parts."""

    name: MetricName | None = None
    ir: IRMetricWeights = Field(default_factory=IRMetricWeights)
    code: CodeMetricWeights = Field(default_factory=CodeMetricWeights)
    end_to_end: EndToEndWeights = Field(default_factory=EndToEndWeights)
    bootstrap_threshold: float | None = Field(
        0.8, ge=0.0, le=1.0, description="score a bootstrapped demo needs (None: any truthy)"
    )


class TrackingConfig(_Section):
    uri: str | None = None  # default: $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db
    experiment: str = "liftdspy"
    log_candidate_programs: bool = True
    traces: bool = Field(
        False, description="mlflow.dspy autologging of every module/LM call as MLflow traces"
    )


class SandboxConfig(_Section):
    """How generated code is isolated: `bubblewrap` (default) or `none` (UNSAFE, tagged)."""

    # `isolation: off` would be the YAML boolean False: refused rather than guessed (UNSAFE).
    isolation: Annotated[Literal["bubblewrap", "none"], NoBooleans("bubblewrap", "none")] = (
        "bubblewrap"
    )


class ExperimentConfig(_Section):
    version: Version = "1"  # configs without it are version "1"
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    description: str = ""
    dataset: DatasetConfig
    program: ProgramConfig = Field(default_factory=ProgramConfig)
    lm: LMConfig
    reflection_lm: LMConfig | None = None
    optimizer: OptimizerConfig
    metric: MetricConfig = Field(default_factory=MetricConfig)
    seed: int = 0
    num_threads: int = Field(1, ge=1, le=64)
    tracking: TrackingConfig = Field(default_factory=TrackingConfig)
    sandbox: SandboxConfig = Field(default_factory=SandboxConfig)

    @model_validator(mode="after")
    def _default_metric(self) -> ExperimentConfig:
        if self.metric.name is None:
            self.metric.name = self.program.default_metric
        # The adapter is resolved with the LM, so the run's config records the one it used.
        self.program = self.program.resolve_adapter(self.lm)
        return self


def load_config(path: str | Path, overrides: list[str] | None = None) -> ExperimentConfig:
    return load_yaml_config(path, ExperimentConfig, overrides, what="experiment config")
