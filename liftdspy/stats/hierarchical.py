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
and shrink the example term to var_example / (S * E). Replicates are computed from resampling
counts, ``w_seed @ Y @ w_example / (S * E)``, all at once.

**Calibration (expanded percentile, Hesterberg 2015).** The raw crossed bootstrap has the right
shape but the wrong scale with few units: it counts the residual term about three times and
shrinks the seed term by (S - 1) / S, and a percentile interval uses normal quantiles where a
t quantile is due (with 22 examples a raw 95% interval covers about 93%). So the replicates are
first rescaled about the estimate to the moment standard error ``SE = sqrt(Var(mean))`` from the
variance components, and the interval is then read at the expanded level whose normal quantile
equals the t quantile with the Satterthwaite degrees of freedom of that SE
(`effective_df`). The two-sided p-value of "mean = 0" comes from the same rescaled replicates:
the share k of the B replicates on the far side of 0 gives ``p_z = min(1, 2 (k + 1) / (B + 1))``,
mapped through the same normal-to-t correction, so ``p < 1 - level`` exactly when the interval
excludes 0 (up to Monte-Carlo rounding). Few seeds with a large seed-to-seed spread give few
degrees of freedom and, honestly, a wide interval; one seed carries no seed-to-seed
uncertainty at all (`VarianceComponents.seed` is None then).

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

import math
import zlib
from statistics import NormalDist

import numpy as np
from pydantic import BaseModel

from liftdspy.stats.errors import StatsInputError
from liftdspy.versioning import Version

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

    version: Version = "1"
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


def effective_df(
    components: VarianceComponents, n_seeds: int | None = None, n_examples: int | None = None
) -> float | None:
    """Satterthwaite degrees of freedom of `variance_of_mean` for an S × E design.

    Var(mean) * S * E is the combination ``MS_seed + MS_example - MS_residual`` of mean squares
    (the terms of clamped or unestimable components left out), each with its own degrees of
    freedom (S - 1, E - 1, (S - 1)(E - 1)); the expected mean squares come from `components`.
    None when there is no variance (the normal limit).
    """
    s = n_seeds or components.n_seeds
    e = n_examples or components.n_examples
    var_seed, var_example = components.seed or 0.0, components.example or 0.0
    var_residual = components.residual or 0.0
    terms = []  # (coefficient * expected mean square, degrees of freedom)
    if var_seed > 0:
        terms.append((var_residual + e * var_seed, s - 1))
    if var_example > 0:
        terms.append((var_residual + s * var_example, e - 1))
    residual_coefficient = 1 - len(terms)
    if var_residual > 0 and residual_coefficient != 0:
        terms.append((residual_coefficient * var_residual, (s - 1) * (e - 1)))
    total = sum(value for value, _ in terms)
    if total <= 0 or any(df <= 0 for _, df in terms):
        return None
    return total**2 / sum(value**2 / df for value, df in terms)


class MeanInference(BaseModel):
    """The mean of a matrix with its calibrated crossed-bootstrap interval and p-value vs 0."""

    interval: Interval
    p_value: float  # two-sided, of "the mean is 0"
    standard_error: float
    df: float | None  # Satterthwaite degrees of freedom; None: no variance


def crossed_inference(
    matrix: np.ndarray,
    *,
    resamples: int = DEFAULT_RESAMPLES,
    rng: np.random.Generator,
    level: float = DEFAULT_LEVEL,
) -> MeanInference:
    """Calibrated crossed-bootstrap interval and p-value of the grand mean (see module doc)."""
    if not 0 < level < 1:
        raise StatsInputError(f"level must lie in (0, 1), got {level!r}")
    if resamples < 100:
        raise StatsInputError(f"resamples must be at least 100, got {resamples!r}")
    y = _as_matrix(matrix)
    estimate = float(y.mean())
    components = variance_components(y)
    se = math.sqrt(components.variance_of_mean())
    df = effective_df(components)
    replicates = crossed_bootstrap_means(y, resamples, rng)
    spread = float(replicates.std(ddof=1))
    tolerance = 1e-12 * max(1.0, abs(estimate))
    if se <= tolerance or spread <= tolerance:
        # No variance: a point interval; a nonzero constant is as far from 0 as B replicates can
        # show (callers floor this by what the number of units can support).
        interval = Interval(estimate=estimate, low=estimate, high=estimate, level=level)
        p_value = 1.0 if abs(estimate) <= tolerance else 2.0 / (resamples + 1.0)
        return MeanInference(interval=interval, p_value=p_value, standard_error=0.0, df=df)
    scaled = estimate + (se / spread) * (replicates - estimate)
    normal = NormalDist()
    if df is None:
        tail = (1.0 - level) / 2.0
    else:
        tail = normal.cdf(-t_quantile(1.0 - (1.0 - level) / 2.0, df))
    low, high = (float(q) for q in np.quantile(scaled, [tail, 1.0 - tail]))
    interval = Interval(estimate=estimate, low=low, high=high, level=level)
    if estimate == 0:
        return MeanInference(interval=interval, p_value=1.0, standard_error=se, df=df)
    far = scaled < 0 if estimate > 0 else scaled > 0
    k = float(far.sum()) + 0.5 * float((scaled == 0).sum())
    p_normal = min(1.0, 2.0 * (k + 1.0) / (resamples + 1.0))
    p_value = p_normal if df is None else _normal_p_to_t(p_normal, df)
    return MeanInference(interval=interval, p_value=p_value, standard_error=se, df=df)


def t_quantile(q: float, df: float) -> float:
    from scipy.special import stdtrit  # scipy comes with mlflow; scipy.stats imports slowly

    return float(stdtrit(df, q))


def _normal_p_to_t(p_normal: float, df: float) -> float:
    """The two-sided t(df) p-value of the statistic whose two-sided normal p-value is p_normal."""
    from scipy.special import stdtr

    if p_normal >= 1.0:
        return 1.0
    z = NormalDist().inv_cdf(1.0 - p_normal / 2.0)
    return float(min(1.0, 2.0 * stdtr(df, -z)))


def crossed_bootstrap_means(
    matrix: np.ndarray, resamples: int, rng: np.random.Generator
) -> np.ndarray:
    """`resamples` crossed-bootstrap replicates of the grand mean of `matrix` (see module doc).

    The draws depend only on the matrix shape and `rng`, so two matrices of the same shape
    bootstrapped with identically seeded generators use the same resampled seeds and examples.
    """
    y = _as_matrix(matrix)
    n_s, n_e = y.shape
    w_seed = _resample_counts(n_s, resamples, rng)
    w_example = _resample_counts(n_e, resamples, rng)
    return ((w_seed @ y) * w_example).sum(axis=1) / (n_s * n_e)


def _resample_counts(n: int, resamples: int, rng: np.random.Generator) -> np.ndarray:
    """How often each of n units is drawn in each of `resamples` draws of n with replacement."""
    draws = rng.integers(0, n, size=(resamples, n)) + n * np.arange(resamples)[:, None]
    return np.bincount(draws.ravel(), minlength=resamples * n).reshape(resamples, n).astype(float)


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
        raise StatsInputError(f"expected a non-empty seeds × examples matrix, got shape {y.shape}")
    return y
