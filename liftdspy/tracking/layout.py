"""Where a liftdspy run keeps what it records in MLflow: tag names, artifact paths, metric names.

The one place these names are spelled; `liftdspy.tracking.run_record` writes and reads runs
through them, and everything else (compare, export, evaluate, studies) imports them from here.
Older runs use the same layout, so the names never change once published.
"""

from __future__ import annotations

# Tags.
ROLE_TAG = "liftdspy.role"
EXPERIMENT_TAG = "liftdspy.experiment"
PROGRAM_TAG = "liftdspy.program"
OPTIMIZER_TAG = "liftdspy.optimizer"
OPTIMIZER_NOTES_TAG = "liftdspy.optimizer_notes"
EVAL_IDS_TAG = "liftdspy.eval_ids"
ISOLATION_TAG = "liftdspy.sandbox.isolation"  # "none": an UNSAFE run
# The seed of every bootstrap of a run (its score intervals and its paired comparison), so
# `liftdspy compare` redraws the same resamples.
BOOTSTRAP_SEED_TAG = "liftdspy.bootstrap_seed"
SOURCE_TAG = "liftdspy.source"  # an evaluation run: what it evaluated
SOURCE_RUN_ID_TAG = "liftdspy.source_run_id"  # an evaluation run: the program's run
PARENT_RUN_TAG = "mlflow.parentRunId"
MLFLOW_TAG_PREFIX = "mlflow."
MAX_TAG_CHARS = 5000

# Values of the role tag.
EXPERIMENT_ROLE = "experiment"  # `liftdspy run`, a study cell
CANDIDATE_ROLE = "candidate"  # a child run of an experiment: one program the optimizer tried
EVALUATION_ROLE = "evaluation"  # `liftdspy evaluate`
STUDY_ROLE = "study"  # `liftdspy study run`

# Artifacts.
CONFIG_DIR = "config"  # also holds the experiment's YAML file as given (redacted)
RESOLVED_CONFIG_ARTIFACT = "config/resolved.json"
PRESET_ARTIFACT = "config/preset.json"  # the resolved optimizer preset (runs since RunRecord)
PROGRAM_DIR = "program"
PROGRAM_ARTIFACT = "program/program.json"
EXPORT_DIR = "export"
REPORTS_DIR = "reports"
COMPARISON_ARTIFACT = "reports/comparison.json"
COST_ARTIFACT = "reports/cost.json"
RUNTIME_ARTIFACT = "reports/runtime.json"  # `liftdspy evaluate --runtime`: the parity scores
RESULTS_DIR = "results"

# The evaluation reports a run can hold (`reports/<which>.json`).
REPORT_KINDS = ("baseline", "optimized", "evaluation")


def report_artifact(which: str) -> str:
    """The per-example evaluation report (`EvaluationReport` JSON)."""
    return f"{REPORTS_DIR}/{which}.json"


def results_artifact(which: str) -> str:
    """The same results as an MLflow table (the UI's evaluation view)."""
    return f"{RESULTS_DIR}/{which}.json"


# Metrics.
CANDIDATES_METRIC = "candidates"
CANDIDATE_SCORE_METRIC = "candidate_score"
# The metric's floor: the best constant answer's score on the run's eval examples
# (`liftdspy.metrics.floor`); beside it `<which>_score_normalised` (+ `_ci_low` / `_ci_high`) is
# (score - floor) / (1 - floor).
FLOOR_METRIC = "floor"
COST_PREFIXES = ("lm_", "wall_seconds.")  # the cost metrics of an experiment run

# A study run's per-arm metrics (`arm.<arm>.<what>`, see `liftdspy.studies.metrics`) and its own.
ARM_METRICS = (
    "score",  # mean over seeds and examples
    "score_ci_low",
    "score_ci_high",
    "gain",  # mean paired difference against the baseline arm (not for the baseline itself)
    "ci_low",  # the gain's 95% interval
    "ci_high",
    "p",  # two-sided, unadjusted
    "p_holm",  # Holm-adjusted across the arms
    "mde",  # minimum detectable gain at 80% power
    "cells",
)
STUDY_METRICS = ("study.mde", "study.n_examples", "study.n_seeds", "study.n_arms")


def arm_metric(arm: str, what: str) -> str:
    """`arm.<arm>.<what>`, the arm name kept to what MLflow accepts in a metric name (letters,
    digits, `_ - . /` and spaces; e.g. `mipro@big` becomes `mipro_big`)."""
    safe = "".join(c if c.isalnum() or c in "_-. /" else "_" for c in arm)
    return f"arm.{safe}.{what}"
