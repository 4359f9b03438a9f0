"""The result every liftdspy metric returns: a total, its named components and text feedback."""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field

from liftdspy.versioning import Version


class MetricBreakdown(BaseModel):
    """A metric's verdict on one prediction.

    `components` are the weighted parts of `total` (each in [0, 1]); `details` are extra
    diagnostics that do not enter the total (e.g. hole precision and recall); `parts` holds the
    breakdowns of sub-metrics (the end-to-end metric's `ir` and `code`).
    """

    model_config = ConfigDict(extra="forbid")

    total: float = Field(ge=0.0, le=1.0)
    components: dict[str, float] = Field(default_factory=dict)
    details: dict[str, float] = Field(default_factory=dict)
    feedback: str = ""
    parts: dict[str, MetricBreakdown] = Field(default_factory=dict)
    version: Version = "1"

    def flat(self, prefix: str = "") -> dict[str, float]:
        """Every number in the breakdown under a dotted name, e.g. `ir.name`, for logging."""
        out = {f"{prefix}total": self.total}
        out.update({f"{prefix}{k}": v for k, v in self.components.items()})
        out.update({f"{prefix}{k}": v for k, v in self.details.items()})
        for name, part in self.parts.items():
            out.update(part.flat(f"{prefix}{name}."))
        return out


def weighted_total(components: Mapping[str, float], weights: Mapping[str, float]) -> float:
    """The weighted mean of `components` (weights of missing components count as zero)."""
    denominator = sum(weights.values())
    if denominator <= 0:
        raise ValueError("metric weights must not all be zero")
    total = sum(w * components.get(name, 0.0) for name, w in weights.items()) / denominator
    return min(1.0, max(0.0, total))
