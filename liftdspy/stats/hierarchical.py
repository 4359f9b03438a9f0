"""Mean of a seeds × examples score matrix: crossed two-level bootstrap and variance components.

The design is *crossed*, not nested: every seed is evaluated on the same examples, so example
``e`` under seed 1 and under seed 2 is the same task, and its difficulty is shared by all seeds.
The model behind every statistic here is the two-way random-effects model without replication::

    y[s, e] = mu + a[s] + b[e] + r[s, e]
    a ~ (0, var_seed)  b ~ (0, var_example)  r ~ (0, var_residual)

where ``r`` is the seed × example interaction (a task that flips between seeds) confounded with
per-cell noise (there is one score per cell). The variance of the grand mean is::

    Var(mean) = var_seed / S + var_example / E + var_residual / (S * E)

**Bootstrap (crossed, "pigeonhole", Owen 2007).** Each replicate draws S seeds with replacement
and, independently, E examples with replacement, and takes the mean of the S × E submatrix of
every drawn seed crossed with every drawn example. Resampling examples *within* each seed
(nested) would be wrong here: it would treat one task's difficulty as independent across seeds
and shrink the example term to var_example / (S * E). The crossed bootstrap is known to be
slightly conservative on the interaction term (its variance counts var_residual / (S * E) about
three times) and, like any bootstrap over very few units, it under-states the seed term by a
factor (S - 1) / S: with 3 seeds and a large seed-to-seed spread the interval is too narrow, and
with one seed it carries no seed-to-seed uncertainty at all (`ArmSummary.n_seeds` says so).
Replicates are computed from multinomial counts, ``w_seed @ Y @ w_example / (S * E)``, all at once.

**Variance components (method of moments, two-way ANOVA).** With the mean squares of the
seed rows, example columns and residual::

    MS_seed = E * sum_s (ybar[s.] - ybar)^2 / (S - 1)        E[MS_seed] = var_r + E * var_seed
    MS_ex   = S * sum_e (ybar[.e] - ybar)^2 / (E - 1)        E[MS_ex]   = var_r + S * var_example
    MS_res  = sum (y - ybar[s.] - ybar[.e] + ybar)^2 / ((S - 1)(E - 1))      E[MS_res] = var_r

the estimates are ``var_seed = (MS_seed - MS_res) / E``, ``var_example = (MS_ex - MS_res) / S``
and ``var_residual = MS_res``, each clamped at 0 (a negative moment estimate means "no detectable
variance"; clamping is noted in `VarianceComponents.clamped`). With one seed the seed and
residual terms cannot be estimated (None) and the example term holds the whole variance across
examples, interaction included; with one example the example and residual terms are None.
"""

from __future__ import annotations

import zlib

import numpy as np
from pydantic import BaseModel

STATS_VERSION = "1"
DEFAULT_RESAMPLES = 2000
DEFAULT_LEVEL = 0.95


class Interval(BaseModel):
    """An estimate with its percentile-bootstrap interval."""

    estimate: float
    low: float
    high: float
    level: float = DEFAULT_LEVEL


class VarianceComponents(BaseModel):
    """Method-of-moments variance components of a seeds × examples matrix (see module doc)."""

    version: str = STATS_VERSION
    n_seeds: int
    n_examples: int
    seed: float | None  # seed-to-seed variance of an arm's mean score over examples
    example: float | None  # example-to-example variance (task difficulty)
    residual: float | None  # seed × example interaction plus noise
    clamped: list[str] = []  # components whose moment estimate was negative and set to 0

    def variance_of_mean(self, n_seeds: int | None = None, n_examples: int | None = None) -> float:
        """Var of the grand mean for a design of `n_seeds` × `n_examples` (default: observed).

        Components that could not be estimated (None) count as 0.
        """
        s = n_seeds or self.n_seeds
        e = n_examples or self.n_examples
        return (self.seed or 0.0) / s + (self.example or 0.0) / e + (self.residual or 0.0) / (s * e)


def variance_components(matrix: np.ndarray) -> VarianceComponents:
    """Two-way random-effects variance components of `matrix` (rows seeds, columns examples)."""
    y = _as_matrix(matrix)
    n_s, n_e = y.shape
    grand = y.mean()
    row = y.mean(axis=1)
    col = y.mean(axis=0)
    clamped: list[str] = []

    def clamp(name: str, value: float) -> float:
        if value < 0:
            clamped.append(name)
            return 0.0
        return float(value)

    if n_s == 1 and n_e == 1:
        return VarianceComponents(n_seeds=1, n_examples=1, seed=None, example=None, residual=None)
    if n_s == 1:
        return VarianceComponents(
            n_seeds=1, n_examples=n_e, seed=None, example=float(y[0].var(ddof=1)), residual=None
        )
    if n_e == 1:
        return VarianceComponents(
            n_seeds=n_s, n_examples=1, seed=float(y[:, 0].var(ddof=1)), example=None, residual=None
        )
    ms_seed = n_e * float(((row - grand) ** 2).sum()) / (n_s - 1)
    ms_example = n_s * float(((col - grand) ** 2).sum()) / (n_e - 1)
    resid = y - row[:, None] - col[None, :] + grand
    ms_residual = float((resid**2).sum()) / ((n_s - 1) * (n_e - 1))
    return VarianceComponents(
        n_seeds=n_s,
        n_examples=n_e,
        seed=clamp("seed", (ms_seed - ms_residual) / n_e),
        example=clamp("example", (ms_example - ms_residual) / n_s),
        residual=max(ms_residual, 0.0),
        clamped=clamped,
    )


def crossed_bootstrap_means(
    matrix: np.ndarray, resamples: int, rng: np.random.Generator
) -> np.ndarray:
    """`resamples` crossed-bootstrap replicates of the grand mean of `matrix` (see module doc).

    The draws depend only on the matrix shape and `rng`, so two matrices of the same shape
    bootstrapped with identically seeded generators use the same resampled seeds and examples.
    """
    y = _as_matrix(matrix)
    n_s, n_e = y.shape
    w_seed = rng.multinomial(n_s, np.full(n_s, 1.0 / n_s), size=resamples).astype(float)
    w_example = rng.multinomial(n_e, np.full(n_e, 1.0 / n_e), size=resamples).astype(float)
    return np.einsum("bs,se,be->b", w_seed, y, w_example, optimize=True) / (n_s * n_e)


def percentile_interval(
    estimate: float, replicates: np.ndarray, level: float = DEFAULT_LEVEL
) -> Interval:
    """Percentile interval of bootstrap `replicates` around `estimate`."""
    tail = (1.0 - level) / 2.0
    low, high = (float(q) for q in np.quantile(replicates, [tail, 1.0 - tail]))
    if high - low <= 1e-12 * max(1.0, abs(estimate)):
        # Constant data: every replicate equals the estimate up to rounding.
        low = high = float(estimate)
    return Interval(estimate=float(estimate), low=low, high=high, level=level)


def generator(seed: int, *labels: str) -> np.random.Generator:
    """A numpy Generator determined by `seed` and `labels` (e.g. the arm name).

    Each arm gets its own stream, so an arm's interval does not change when arms are added,
    removed or reordered.
    """
    return np.random.default_rng([seed, *(zlib.crc32(label.encode()) for label in labels)])


def _as_matrix(matrix: np.ndarray) -> np.ndarray:
    y = np.asarray(matrix, dtype=float)
    if y.ndim != 2 or y.shape[0] < 1 or y.shape[1] < 1:
        raise ValueError(f"expected a non-empty seeds × examples matrix, got shape {y.shape}")
    return y
