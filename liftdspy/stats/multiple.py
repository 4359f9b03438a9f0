"""Multiple-comparison correction across the arms of a study."""

from __future__ import annotations

from collections.abc import Sequence


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm step-down adjusted p-values, in the order given.

    Sort the m p-values ascending; the k-th smallest (k = 1..m) becomes
    ``max_{j <= k} min(1, (m - j + 1) * p_(j))``. Rejecting every hypothesis whose adjusted
    p-value is below alpha controls the family-wise error rate at alpha under any dependence
    between the tests (Holm 1979); it is uniformly more powerful than Bonferroni.
    """
    m = len(p_values)
    for p in p_values:
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"p-values must lie in [0, 1], got {p!r}")
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [0.0] * m
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[index]))
        adjusted[index] = running
    return adjusted
