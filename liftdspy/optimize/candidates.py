"""The candidate programs an optimizer tried, in one shape for every optimizer."""

from __future__ import annotations

import logging
from typing import Any

import dspy
from pydantic import BaseModel, ConfigDict

logger = logging.getLogger(__name__)

MAX_INSTRUCTION_CHARS = 500
# dspy.Evaluate reports a score as a percentage (`round(100 * ncorrect / ntotal, 2)`); MIPROv2,
# COPRO and random search keep that number in `candidate_programs` / `mb_candidate_programs`.
# Candidates carry the metric's own 0-1 scale, like every evaluation report, so a selected
# candidate's validation score can be set against its evaluation score (winner's curse).
EVALUATE_PERCENT = 100.0


class PredictorSnapshot(BaseModel):
    name: str
    instructions: str
    demos: int


class Candidate(BaseModel):
    model_config = ConfigDict(arbitrary_types_allowed=True)

    index: int
    score: float | None  # on the metric's 0-1 scale
    full_eval: bool = True
    predictors: list[PredictorSnapshot]
    program: Any = None  # the dspy.Module, when the optimizer kept it


def snapshot(program: dspy.Module) -> list[PredictorSnapshot]:
    return [
        PredictorSnapshot(
            name=name,
            instructions=predictor.signature.instructions,
            demos=len(predictor.demos),
        )
        for name, predictor in program.named_predictors()
    ]


def _from_entry(index: int, entry: Any) -> Candidate | None:
    """A `candidate_programs` entry (its score a `dspy.Evaluate` percentage) as a Candidate."""
    if isinstance(entry, dict) and isinstance(entry.get("program"), dspy.Module):
        program = entry["program"]
        score = entry.get("score")
        return Candidate(
            index=index,
            score=float(score) / EVALUATE_PERCENT if score is not None else None,
            full_eval=bool(entry.get("full_eval", True)),
            predictors=snapshot(program),
            program=program,
        )
    if isinstance(entry, tuple) and entry and isinstance(entry[-1], dspy.Module):
        program = entry[-1]
        return Candidate(
            index=index,
            score=float(entry[0]) / EVALUATE_PERCENT,
            predictors=snapshot(program),
            program=program,
        )
    return None


def extract_candidates(compiled: dspy.Module) -> list[Candidate]:
    """Candidates recorded on the compiled program by MIPROv2, COPRO, random search, SIMBA
    (`candidate_programs`, `mb_candidate_programs`) or GEPA (`detailed_results`). Optimizers that
    keep none (BootstrapFewShot, LabeledFewShot) yield the compiled program alone. Scores are on
    the metric's 0-1 scale (GEPA's already are; the others' percentages are divided by 100)."""
    candidates: list[Candidate] = []
    for attribute, full in (("candidate_programs", True), ("mb_candidate_programs", False)):
        for entry in getattr(compiled, attribute, None) or []:
            candidate = _from_entry(len(candidates), entry)
            if candidate is not None:
                candidate.full_eval = candidate.full_eval and full
                candidates.append(candidate)
    results = getattr(compiled, "detailed_results", None)
    if results is not None and not candidates:
        scores = list(getattr(results, "val_aggregate_scores", []) or [])
        for i, program in enumerate(getattr(results, "candidates", []) or []):
            if isinstance(program, dspy.Module):
                score = float(scores[i]) if i < len(scores) else None
                candidates.append(
                    Candidate(index=i, score=score, predictors=snapshot(program), program=program)
                )
    if not candidates:
        candidates.append(
            Candidate(index=0, score=None, predictors=snapshot(compiled), program=compiled)
        )
    return candidates
