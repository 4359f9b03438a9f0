"""Power of a planned seeds × examples design, simulated from the sampling distribution of the
study's own test (for planning: `liftdspy.studies.power_plan`).

`stats.power.minimum_detectable_effect` is the textbook ``(t_{1-α/2} + t_{power}) * SE`` with the
Satterthwaite df of the *true* components. A study's test uses the df of its *estimated*
components, and with few seeds the seed mean square has few degrees of freedom: its estimate
swings, and with it the df and the t quantile. At α = 0.05 the formula holds (tests/
test_stats_power.py); at the stricter α a Holm family needs (0.05 / 3 for three arms) the formula
promises about 80% where the study's test delivers about 70% (measured on simulated studies,
tests/test_study_power_plan.py). So the plan simulates the test itself.

Under the two-way random-effects model of `stats.hierarchical` the mean difference and the three
mean squares are independent, each mean square a scaled chi-square::

    mean    ~ N(delta, var_seed/S + var_example/E + var_residual/(S E))
    MS_seed ~ (var_r + E var_seed)    χ²(S-1) / (S-1)
    MS_ex   ~ (var_r + S var_example) χ²(E-1) / (E-1)
    MS_res  ~ var_r                   χ²((S-1)(E-1)) / ((S-1)(E-1))

Each draw estimates the components as the study would (moments, clamped at 0), its standard
error and Satterthwaite df, and rejects when |mean| / SE > t_{df, 1-α/2}: the test that
`crossed_inference`'s calibrated bootstrap approximates. Power is the share of draws rejected; the
MDE is the smallest delta with that share at the target power (common random numbers, bisection).
"""

from __future__ import annotations

import numpy as np

from liftdspy.stats.hierarchical import VarianceComponents

DEFAULT_DRAWS = 20_000


class _Draws:
    """Standard normal and chi-square draws for one design, reused for every delta."""

    def __init__(self, n_seeds: int, n_examples: int, draws: int, seed: int) -> None:
        rng = np.random.default_rng([seed, n_seeds, n_examples])
        self.z = rng.standard_normal(draws)
        s, e = n_seeds, n_examples
        self.chi_seed = rng.chisquare(s - 1, draws) / (s - 1) if s > 1 else None
        self.chi_example = rng.chisquare(e - 1, draws) / (e - 1) if e > 1 else None
        self.chi_residual = (
            rng.chisquare((s - 1) * (e - 1), draws) / ((s - 1) * (e - 1))
            if s > 1 and e > 1
            else None
        )


def _statistic(
    components: VarianceComponents, s: int, e: int, draws: _Draws
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """(noise of the mean, estimated SE, estimated df) per draw, and the true SE."""
    var_s = components.seed or 0.0
    var_e = components.example or 0.0
    var_r = components.residual or 0.0
    if s == 1 or draws.chi_residual is None:
        # One row (seed-free comparison) or one example: one variance, E - 1 (or S - 1) df.
        total = var_s + var_e + var_r
        n = e if s == 1 else s
        chi = draws.chi_example if s == 1 else draws.chi_seed
        true_se = float(np.sqrt(total / n))
        est_se = np.sqrt(total * chi / n) if chi is not None else np.full_like(draws.z, true_se)
        df = np.full_like(draws.z, float(max(n - 1, 1)))
        return draws.z * true_se, est_se, df, true_se
    true_se = float(np.sqrt(var_s / s + var_e / e + var_r / (s * e)))
    ms_s = (var_r + e * var_s) * draws.chi_seed
    ms_e = (var_r + s * var_e) * draws.chi_example
    ms_r = var_r * draws.chi_residual
    v_s = np.maximum(0.0, (ms_s - ms_r) / e)
    v_e = np.maximum(0.0, (ms_e - ms_r) / s)
    est_var = v_s / s + v_e / e + ms_r / (s * e)
    # Satterthwaite, as `effective_df`: clamped terms drop out, the residual's coefficient is
    # 1 - (number of kept terms).
    keep_s, keep_e = v_s > 0, v_e > 0
    coefficient = 1.0 - keep_s - keep_e
    total = np.where(keep_s, ms_s, 0.0) + np.where(keep_e, ms_e, 0.0) + coefficient * ms_r
    denominator = (
        np.where(keep_s, ms_s**2 / (s - 1), 0.0)
        + np.where(keep_e, ms_e**2 / (e - 1), 0.0)
        + (coefficient * ms_r) ** 2 / ((s - 1) * (e - 1))
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        df = np.where(denominator > 0, total**2 / denominator, np.inf)
    return draws.z * true_se, np.sqrt(est_var), df, true_se


class _Test:
    """The study's test of one design on fixed draws: `detects(delta)` is its power at delta."""

    def __init__(
        self,
        components: VarianceComponents,
        n_seeds: int,
        n_examples: int,
        alpha: float,
        draws: int,
        seed: int,
    ) -> None:
        from scipy.special import stdtrit

        # A comparison of two seed-free arms has one row whatever the study's seeds.
        s = n_seeds if (components.n_seeds > 1 or components.seed is not None) else 1
        self.noise, self.est_se, df, self.true_se = _statistic(
            components, s, n_examples, _Draws(s, n_examples, draws, seed)
        )
        self.critical = stdtrit(np.where(np.isfinite(df), df, 1e9), 1.0 - alpha / 2.0)

    def detects(self, delta: float) -> float:
        with np.errstate(divide="ignore", invalid="ignore"):
            t = np.nan_to_num(np.abs(delta + self.noise) / self.est_se, nan=0.0)
        return float(np.mean(t > self.critical))


def simulated_power(
    components: VarianceComponents,
    n_seeds: int,
    n_examples: int,
    delta: float,
    alpha: float,
    *,
    draws: int = DEFAULT_DRAWS,
    seed: int = 0,
) -> float:
    """Probability that the study's two-sided test at `alpha` detects a true gain `delta`."""
    return _Test(components, n_seeds, n_examples, alpha, draws, seed).detects(delta)


def simulated_mde(
    components: VarianceComponents,
    n_seeds: int,
    n_examples: int,
    alpha: float,
    power: float,
    *,
    draws: int = DEFAULT_DRAWS,
    seed: int = 0,
) -> float | None:
    """The smallest gain detected with probability `power` (None: no variance, or none ≤ 2)."""
    test = _Test(components, n_seeds, n_examples, alpha, draws, seed)
    if test.true_se <= 0:
        return None
    low, high = 0.0, 2.0
    if test.detects(high) < power:
        return None
    for _ in range(30):
        mid = (low + high) / 2
        if test.detects(mid) >= power:
            high = mid
        else:
            low = mid
    return high
