"""The input of every study statistic: one score per (arm, seed, example) cell.

A study evaluates every arm on the same evaluation examples under every seed, so the scores of
one arm form a complete seeds × examples matrix, and all arms share one example set. A
seed-independent arm (``zero-shot``) runs once: it has a single seed (any label, ``None``
included). `ScoreTable` checks all of this on the way in and refuses bad input with an error
naming the arm, seed and example at fault.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from functools import cached_property
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from liftdspy.stats.errors import ScoreTableError
from liftdspy.validation_errors import validation_problems
from liftdspy.versioning import Version

Seed = int | str | None


class ScoreRecord(BaseModel):
    """One evaluated cell: `arm` under `seed` scored `score` on `example`."""

    model_config = ConfigDict(frozen=True)

    arm: str
    seed: Seed = None
    example: str
    score: float


def _seed_key(seed: Seed) -> tuple[int, str]:
    """Sort ints numerically, then strings, with None (seed-independent) first."""
    if seed is None:
        return (0, "")
    if isinstance(seed, int):
        return (1, f"{seed:+021d}")
    return (2, seed)


def _show(values: Iterable[Any], limit: int = 5) -> str:
    items = [repr(v) for v in values]
    more = f" and {len(items) - limit} more" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more


class ScoreTable(BaseModel):
    """Validated scores of a study: tidy records, one per (arm, seed, example).

    Build it with ``ScoreTable(records=[...])`` or ``ScoreTable.from_records(rows)`` (rows may be
    dicts or `ScoreRecord`). Refused: a duplicate (arm, seed, example), a non-finite score, an arm
    whose seeds do not all cover the same examples (a missing cell is named), arms with different
    example sets (the arm and the examples it lacks or adds are named).
    """

    model_config = ConfigDict(frozen=True)

    version: Version = "1"
    records: tuple[ScoreRecord, ...]

    @classmethod
    def from_records(cls, rows: Iterable[ScoreRecord | Mapping[str, Any]]) -> ScoreTable:
        """Validate `rows`; a table-level problem raises `ScoreTableError` (not wrapped)."""
        records = []
        for index, row in enumerate(rows):
            if isinstance(row, ScoreRecord):
                records.append(row)
                continue
            try:
                records.append(ScoreRecord(**row))
            except ValidationError as error:
                problems = "; ".join(validation_problems(error, root="(record)"))
                raise ScoreTableError(f"score record {index} ({dict(row)!r}): {problems}") from None
        try:
            return cls(records=records)
        except ValidationError as error:
            for detail in error.errors():
                cause = (detail.get("ctx") or {}).get("error")
                if isinstance(cause, ScoreTableError):
                    raise cause from None
            raise

    @model_validator(mode="after")
    def _check_complete(self) -> ScoreTable:
        if not self.records:
            raise ScoreTableError("no scores: a study needs at least one (arm, seed, example)")
        cells: dict[str, dict[Seed, dict[str, float]]] = {}
        for record in self.records:
            if not math.isfinite(record.score):
                raise ScoreTableError(
                    f"arm {record.arm!r}, seed {record.seed!r}, example {record.example!r}: "
                    f"score {record.score!r} is not a finite number"
                )
            by_example = cells.setdefault(record.arm, {}).setdefault(record.seed, {})
            if record.example in by_example:
                raise ScoreTableError(
                    f"duplicate cell: arm {record.arm!r}, seed {record.seed!r}, example "
                    f"{record.example!r} is scored twice ({by_example[record.example]!r} and "
                    f"{record.score!r})"
                )
            by_example[record.example] = record.score
        reference_arm: str | None = None
        reference: set[str] = set()
        for arm, by_seed in cells.items():
            examples = set().union(*(set(v) for v in by_seed.values()))
            for seed, by_example in by_seed.items():
                missing = sorted(examples - set(by_example))
                if missing:
                    raise ScoreTableError(
                        f"missing cell: arm {arm!r}, seed {seed!r} has no score for example "
                        f"{_show(missing)} (other seeds of this arm have one)"
                    )
            if reference_arm is None:
                reference_arm, reference = arm, examples
            elif examples != reference:
                lacks, adds = sorted(reference - examples), sorted(examples - reference)
                parts = []
                if lacks:
                    parts.append(f"lacks example {_show(lacks)}")
                if adds:
                    parts.append(f"adds example {_show(adds)}")
                raise ScoreTableError(
                    f"arm {arm!r} was evaluated on a different example set than arm "
                    f"{reference_arm!r}: it {' and '.join(parts)}; paired statistics need the "
                    "same examples for every arm"
                )
        return self

    @cached_property
    def _layout(self) -> tuple[list[str], list[str], dict[str, list[Seed]], dict[str, np.ndarray]]:
        """Arms, examples, seeds per arm and matrices per arm, built once (the table is frozen)."""
        arms = list(dict.fromkeys(r.arm for r in self.records))
        examples = sorted({r.example for r in self.records})
        seeds: dict[str, set[Seed]] = {arm: set() for arm in arms}
        for r in self.records:
            seeds[r.arm].add(r.seed)
        ordered = {arm: sorted(values, key=_seed_key) for arm, values in seeds.items()}
        col = {e: j for j, e in enumerate(examples)}
        rows = {arm: {s: i for i, s in enumerate(values)} for arm, values in ordered.items()}
        matrices = {arm: np.empty((len(ordered[arm]), len(examples))) for arm in arms}
        for r in self.records:
            matrices[r.arm][rows[r.arm][r.seed], col[r.example]] = r.score
        for matrix in matrices.values():
            matrix.flags.writeable = False
        return arms, examples, ordered, matrices

    @property
    def arms(self) -> list[str]:
        """Arm names in order of first appearance."""
        return list(self._layout[0])

    @property
    def examples(self) -> list[str]:
        """The shared example ids, sorted (the column order of `matrix`)."""
        return list(self._layout[1])

    def seeds(self, arm: str) -> list[Seed]:
        """The seeds of `arm`, sorted (the row order of `matrix`)."""
        self._require_arm(arm)
        return list(self._layout[2][arm])

    def matrix(self, arm: str) -> np.ndarray:
        """Scores of `arm` as a read-only float array of shape (seeds, examples)."""
        self._require_arm(arm)
        return self._layout[3][arm]

    def _require_arm(self, arm: str) -> None:
        if arm not in self._layout[3]:
            raise ScoreTableError(f"unknown arm {arm!r}; the table has {_show(self.arms, 20)}")
