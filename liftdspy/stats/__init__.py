"""Statistics for comparing programs: bootstrap confidence intervals and paired tests."""

from liftdspy.stats.bootstrap import (
    ConfidenceInterval,
    PairedComparison,
    bootstrap_ci,
    paired_bootstrap,
)

__all__ = ["ConfidenceInterval", "PairedComparison", "bootstrap_ci", "paired_bootstrap"]
