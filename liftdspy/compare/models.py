"""What a comparison of experiment runs reports: one summary per run, one test per pair of runs."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from liftdspy.stats import ConfidenceInterval, PairedComparison
from liftdspy.versioning import Version

ReportKind = Literal["optimized", "baseline"]


class RunSummary(BaseModel):
    """One MLflow experiment run, scored from its per-example report."""

    run_id: str
    name: str
    mlflow_experiment: str
    experiment: str = ""  # the liftdspy experiment config's name (tag `liftdspy.experiment`)
    program: str = ""
    optimizer: str = ""
    status: str = ""
    start_time: int | None = None  # milliseconds since the epoch, as MLflow stores it
    n: int
    errors: int
    truncated_rate: float = 0.0  # share of examples with an answer cut off at max_tokens
    seed: int = 0  # the bootstrap seed used for this run (stored on the run)
    score: ConfidenceInterval  # of the compared report (`Comparison.which`)
    baseline: ConfidenceInterval | None = None  # the unoptimized program, when the run has it
    # The metric's floor on the run's examples (best constant answer; runs before issue 18 have
    # none) and the scores floor-normalised, (score - floor) / (1 - floor).
    floor: float | None = None
    floor_answer: str | None = None  # the winning constant answer (`liftdspy.metrics.floor`)
    score_normalised: ConfidenceInterval | None = None
    baseline_normalised: ConfidenceInterval | None = None
    components: dict[str, float] = Field(default_factory=dict)  # mean of every metric component
    cost: dict[str, float] = Field(default_factory=dict)


class PairwiseResult(BaseModel):
    """Run B against run A on the examples both were evaluated on (B minus A)."""

    run_a: str
    run_b: str
    name_a: str
    name_b: str
    n_a: int
    n_b: int
    n_common: int
    only_in_a: list[str] = Field(default_factory=list)
    only_in_b: list[str] = Field(default_factory=list)
    comparable: bool
    note: str = ""
    test: PairedComparison | None = None  # None when the runs share no example
    floor: float | None = None  # the floor on the examples both evaluated (run A's, else B's)
    difference_normalised: float | None = None  # B - A divided by 1 - floor


class ExampleScores(BaseModel):
    """One example's score in every run (None where the run did not evaluate it)."""

    id: str
    scores: dict[str, float | None]  # run id -> score


class Comparison(BaseModel):
    version: Version = "1"
    tracking_uri: str
    which: ReportKind
    runs: list[RunSummary]
    pairs: list[PairwiseResult]
    examples: list[ExampleScores]
    notes: list[str] = Field(default_factory=list)
