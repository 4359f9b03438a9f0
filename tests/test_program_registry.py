"""The program registry: one `ProgramSpec` per program is what configs, examples, exports and run
readers ask about a program (inputs, default metric, build options)."""

from __future__ import annotations

from pathlib import Path
from typing import get_args

import pytest
from pydantic import ValidationError

from liftdspy.datasets import load_tasks
from liftdspy.experiments.config import ExperimentConfig, ProgramConfig
from liftdspy.experiments.examples import to_example
from liftdspy.export import load_exported_program, read_manifest, write_export
from liftdspy.metrics.base import MetricName
from liftdspy.programs import (
    PROGRAM_SPECS,
    AdaptedNLToIR,
    ForwardPipeline,
    IRToCode,
    NLToIR,
    ProgramError,
    build_program,
    program_spec,
)
from liftdspy.programs.registry import ProgramName

ROOT = Path(__file__).resolve().parents[1]


def test_every_program_name_has_one_spec_with_a_known_metric():
    assert set(PROGRAM_SPECS) == set(get_args(ProgramName))
    for name, spec in PROGRAM_SPECS.items():
        assert spec.name == name
        assert spec.default_metric in get_args(MetricName)
    assert program_spec("pipeline").factory is ForwardPipeline
    assert program_spec("nl_to_ir").default_metric == "ir"
    assert program_spec("ir_to_code").default_metric == "code"
    assert program_spec("pipeline").default_metric == "end_to_end"


def test_examples_take_the_inputs_the_spec_names():
    task = load_tasks([ROOT / "datasets" / "core"])[0]
    assert set(to_example(task, "nl_to_ir").inputs().keys()) == {"prompt"}
    assert set(to_example(task, "ir_to_code").inputs().keys()) == {"ir"}
    repair = to_example(task, "pipeline", with_tests=True)
    assert set(repair.inputs().keys()) == {"prompt", "tests", "test_setup"}
    with pytest.raises(ValueError, match="unknown program 'nope'"):
        to_example(task, "nope")


def test_unknown_build_options_are_refused_naming_the_key():
    with pytest.raises(ProgramError, match=r"program 'nl_to_ir' takes no option 'repair_rounds'"):
        build_program("nl_to_ir", repair_rounds=1)
    with pytest.raises(
        ProgramError, match=r"'repiar_rounds' \(its options: adapter, ir_output, repair_rounds\)"
    ):
        build_program("pipeline", repiar_rounds=1)
    assert build_program("pipeline", "cot", repair_rounds=2).repair_rounds == 2
    assert isinstance(build_program("ir_to_code"), IRToCode)


def test_program_config_builds_through_its_spec():
    pipeline = ProgramConfig(name="pipeline", predictor="cot", repair_rounds=1)
    assert pipeline.options() == {"repair_rounds": 1, "adapter": None, "ir_output": "lean"}
    built = pipeline.build()
    assert isinstance(built, ForwardPipeline) and built.repair_rounds == 1
    assert ProgramConfig(name="nl_to_ir").options() == {"adapter": None, "ir_output": "lean"}
    assert isinstance(ProgramConfig(name="nl_to_ir").build(), AdaptedNLToIR)
    legacy = ProgramConfig(name="nl_to_ir", adapter="json", ir_output="full")
    assert type(legacy.build()) is NLToIR  # today's requests, module source included
    config = ExperimentConfig.model_validate(
        {
            "name": "x",
            "dataset": {"paths": ["datasets/core"]},
            "program": {"name": "ir_to_code"},
            "lm": {"kind": "local", "model": "m"},
            "optimizer": {"preset": "labeled-fewshot"},
        }
    )
    assert config.metric.name == "code"


def test_a_runs_program_config_gives_the_options_of_the_programs_spec():
    # export and evaluate rebuild a run's program from its resolved config's `program` section
    defaults = {"adapter": None, "ir_output": "lean"}
    assert ProgramConfig(name="pipeline", predictor="cot").options() == {
        "repair_rounds": 0,
        **defaults,
    }
    assert ProgramConfig(name="pipeline", repair_rounds=2).options() == {
        "repair_rounds": 2,
        **defaults,
    }
    assert ProgramConfig(name="nl_to_ir").options() == defaults
    assert ProgramConfig(name="ir_to_code", adapter="baml").options() == {"adapter": "baml"}
    with pytest.raises(ValidationError, match="repair_rounds applies to the pipeline program"):
        ProgramConfig(name="nl_to_ir", repair_rounds=1)
    with pytest.raises(ValidationError, match="name"):
        ProgramConfig(name="nope")


def test_the_manifest_records_what_the_caller_built(tmp_path):
    program = build_program("pipeline", "cot", repair_rounds=1)
    manifest = write_export(
        program,
        tmp_path / "out",
        program_name="pipeline",
        predictor="cot",
        program_options={"repair_rounds": 1},
    )
    assert (manifest.program, manifest.predictor_kind) == ("pipeline", "cot")
    assert manifest.program_options == {"repair_rounds": 1, "adapter": None, "ir_output": "lean"}
    assert load_exported_program(tmp_path / "out").repair_rounds == 1
    # Defaults are filled in from the spec; a program exported without a name is not guessed.
    write_export(build_program("pipeline"), tmp_path / "plain", program_name="pipeline")
    assert read_manifest(tmp_path / "plain").program_options == {
        "repair_rounds": 0,
        "adapter": None,
        "ir_output": "lean",
    }
    unnamed = write_export(build_program("pipeline"), tmp_path / "unnamed")
    assert unnamed.program is None and unnamed.program_options == {}
    with pytest.raises(ProgramError, match="takes no option 'repair_rounds'"):
        write_export(
            build_program("nl_to_ir"),
            tmp_path / "bad",
            program_name="nl_to_ir",
            program_options={"repair_rounds": 1},
        )


def test_the_committed_demo_export_still_loads():
    manifest = read_manifest(ROOT / "programs" / "demo")
    assert manifest.program == "nl_to_ir"
    assert manifest.program_options == {"adapter": "compact", "ir_output": "lean"}
    assert isinstance(load_exported_program(ROOT / "programs" / "demo"), AdaptedNLToIR)
