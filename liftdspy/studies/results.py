"""What a cell leaves behind (`study/cell.json` in its MLflow run), and a study's results."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, Field

from liftdspy.metrics.floor import MetricFloor
from liftdspy.studies.cells import Cell
from liftdspy.versioning import Version

if TYPE_CHECKING:
    from liftdspy.lm.recorder import RecorderStats

CELL_ARTIFACT = "study/cell.json"

CellStatus = Literal["finished", "failed", "budget", "not-run"]


class CellCost(BaseModel):
    """The cost of a cell's own work (for optimizer arms the baseline phase, which replays the
    zero-shot arm, is left out). `requests` counts live calls and replays alike."""

    requests: int = 0
    live_calls: int = 0
    replayed: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    live_output_tokens: int = 0
    lm_seconds: float = Field(0.0, description="live seconds + recorded seconds of replays")
    wall_seconds: float = 0.0

    @classmethod
    def from_stats(cls, stats: RecorderStats, wall_seconds: float) -> CellCost:
        """The cost of the work a recorder counted (`RecorderStats.since` a snapshot)."""
        return cls(
            requests=stats.requests,
            live_calls=stats.calls,
            replayed=stats.hits,
            input_tokens=stats.input_tokens,
            output_tokens=stats.output_tokens,
            live_output_tokens=stats.live_output_tokens,
            lm_seconds=round(stats.lm_seconds, 3),
            wall_seconds=round(wall_seconds, 3),
        )


class CellResult(BaseModel):
    version: Version = "1"
    cell: Cell
    cell_hash: str
    run_id: str | None = None
    status: CellStatus
    error: str | None = None
    eval_ids: list[str] = Field(default_factory=list)
    scores: list[float] = Field(default_factory=list)
    components: dict[str, float] = Field(default_factory=dict)
    selected_val_score: float | None = Field(
        None, description="optimizer arms: the chosen candidate's score during optimization"
    )
    candidates: int = 0
    demo_ids: list[list[str]] = Field(default_factory=list)
    cost: CellCost = Field(default_factory=CellCost)
    lm_identity: dict[str, str] = Field(
        default_factory=dict, description="the engine's identity (model file hash, ...)"
    )
    floor: MetricFloor | None = Field(
        None, description="the metric's floor on the cell's eval examples (cells since issue 18)"
    )

    @property
    def mean(self) -> float:
        return sum(self.scores) / len(self.scores) if self.scores else 0.0


class ParityResult(BaseModel):
    """The best arm's program scored in DSPy and through its exported prompt pack (runtime)."""

    version: Version = "1"
    arm: str
    cell: str
    run_id: str
    eval_ids: list[str]
    dspy_scores: list[float]
    runtime_scores: list[float]
    identical_requests: int = Field(description="runtime requests byte-identical to DSPy's")
    requests: int
    errors: list[str] = Field(default_factory=list)
