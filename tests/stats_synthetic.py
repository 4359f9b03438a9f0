"""Synthetic studies with planted effects for the statistics' known-answer tests.

Scores follow the crossed model the statistics assume::

    y[arm, s, e] = base + effect[arm] + difficulty[e] + arm_task[arm, e] + seed[arm, s] + noise

`difficulty` is shared by all arms (what pairing removes); `arm_task` (sd_arm_example) is how
differently each arm handles each task, `seed` (sd_seed) each optimizer run's luck, `noise`
(sd_noise) the seed × example interaction.
"""

from __future__ import annotations

import numpy as np

from liftdspy.stats import ScoreTable


def synthetic_scores(
    rng: np.random.Generator,
    effects: dict[str, float],
    *,
    n_seeds: int = 3,
    n_examples: int = 22,
    sd_difficulty: float = 0.3,
    sd_arm_example: float = 0.15,
    sd_seed: float = 0.03,
    sd_noise: float = 0.1,
    base: float = 0.5,
    seed_free: tuple[str, ...] = (),
) -> dict[str, np.ndarray]:
    """Score matrices (seeds × examples) per arm; `seed_free` arms get one row."""
    difficulty = rng.normal(0.0, sd_difficulty, n_examples)
    out = {}
    for arm, effect in effects.items():
        rows = 1 if arm in seed_free else n_seeds
        out[arm] = (
            base
            + effect
            + difficulty[None, :]
            + rng.normal(0.0, sd_arm_example, n_examples)[None, :]
            + rng.normal(0.0, sd_seed, rows)[:, None]
            + rng.normal(0.0, sd_noise, (rows, n_examples))
        )
    return out


def table_of(matrices: dict[str, np.ndarray]) -> ScoreTable:
    """The tidy ScoreTable of `matrices` (seeds labelled 0.., None for one-row arms)."""
    records = []
    for arm, y in matrices.items():
        seeds = [None] if y.shape[0] == 1 else list(range(y.shape[0]))
        for i, seed in enumerate(seeds):
            for j in range(y.shape[1]):
                records.append(
                    {"arm": arm, "seed": seed, "example": f"task-{j:03d}", "score": float(y[i, j])}
                )
    return ScoreTable.from_records(records)
