"""Programs by name, as experiment configs refer to them: one `ProgramSpec` per program.

A spec says everything name-dependent about a program: how to build it, which example fields its
`forward()` takes, the metric that scores it by default and the build options it accepts (with
their defaults). Configs, example building, exports and run readers ask the spec instead of
matching program names themselves.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

import dspy

from liftdspy.errors import LiftdspyError
from liftdspy.metrics.base import MetricName
from liftdspy.programs.ir_to_code import IRToCode
from liftdspy.programs.nl_to_ir import nl_to_ir_module
from liftdspy.programs.pipeline import ForwardPipeline
from liftdspy.programs.predictors import PredictorKind

ProgramName = Literal["nl_to_ir", "ir_to_code", "pipeline"]

# With a repair loop, the pipeline also takes the tests: its repair predictor sees their failures.
REPAIR_INPUTS = ("tests", "test_setup")


class ProgramError(LiftdspyError, ValueError):
    """An unknown program name, or a build option the program does not take."""


@dataclass(frozen=True)
class ProgramSpec:
    """One registry program: name, factory, example inputs, default metric, build options."""

    name: ProgramName
    factory: Callable[..., dspy.Module]
    inputs: tuple[str, ...]  # the example fields forward() takes
    default_metric: MetricName
    options: Mapping[str, Any] = field(default_factory=dict)  # accepted option -> default

    def __post_init__(self) -> None:
        object.__setattr__(self, "options", MappingProxyType(dict(self.options)))

    def input_names(self, *, with_tests: bool = False) -> tuple[str, ...]:
        """The example fields the program takes; `with_tests` adds the tests (a repair loop)."""
        return (*self.inputs, *REPAIR_INPUTS) if with_tests else self.inputs

    def resolve_options(self, options: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Every option of the program: its defaults updated with `options`. An option the
        program does not take is a `ProgramError` naming it."""
        given = dict(options or {})
        unknown = sorted(set(given) - set(self.options))
        if unknown:
            takes = ", ".join(sorted(self.options)) or "none"
            raise ProgramError(
                f"program {self.name!r} takes no option {unknown[0]!r} (its options: {takes})"
            )
        return {**self.options, **given}

    def parse_options(self, values: Mapping[str, str]) -> dict[str, Any]:
        """The options found among logged string values (MLflow params keyed by option name),
        each converted to its default's type; other keys are ignored."""
        found: dict[str, Any] = {}
        for key, default in self.options.items():
            raw = values.get(key)
            if raw in (None, "", "None"):
                continue
            try:
                found[key] = raw if default is None else type(default)(raw)
            except (TypeError, ValueError):
                kind = type(default).__name__
                raise ProgramError(f"program option {key}={raw!r}: expected {kind}") from None
        return self.resolve_options(found)

    def build(self, predictor: PredictorKind = "predict", **options: Any) -> dspy.Module:
        return self.factory(predictor=predictor, **self.resolve_options(options))


# Build options every program takes: the DSPy adapter (None: the caller's context adapter).
ADAPTER_OPTION: dict[str, Any] = {"adapter": None}
# ... and those of the programs with an NL -> IR step: what the model writes of the IR.
IR_OUTPUT_OPTION: dict[str, Any] = {"ir_output": "lean"}

PROGRAM_SPECS: Mapping[str, ProgramSpec] = MappingProxyType(
    {
        spec.name: spec
        for spec in (
            ProgramSpec(
                "nl_to_ir",
                nl_to_ir_module,
                inputs=("prompt",),
                default_metric="ir",
                options={**ADAPTER_OPTION, **IR_OUTPUT_OPTION},
            ),
            ProgramSpec(
                "ir_to_code",
                IRToCode,
                inputs=("ir",),
                default_metric="code",
                options=ADAPTER_OPTION,
            ),
            ProgramSpec(
                "pipeline",
                ForwardPipeline,
                inputs=("prompt",),
                default_metric="end_to_end",
                options={"repair_rounds": 0, **ADAPTER_OPTION, **IR_OUTPUT_OPTION},
            ),
        )
    }
)

# name -> factory, as before the specs (kept for callers that only build).
PROGRAMS: Mapping[str, Callable[..., dspy.Module]] = MappingProxyType(
    {name: spec.factory for name, spec in PROGRAM_SPECS.items()}
)


def program_spec(name: str) -> ProgramSpec:
    """The spec of the program `name`; an unknown name is a `ProgramError` listing the known."""
    try:
        return PROGRAM_SPECS[name]
    except KeyError:
        known = ", ".join(sorted(PROGRAM_SPECS))
        raise ProgramError(f"unknown program {name!r}: expected one of {known}") from None


def programs_taking(option: str) -> list[str]:
    """Names of the programs that accept the build option `option`."""
    return [name for name, spec in PROGRAM_SPECS.items() if option in spec.options]


def build_program(
    name: ProgramName, predictor: PredictorKind = "predict", **options: Any
) -> dspy.Module:
    return program_spec(name).build(predictor, **options)
