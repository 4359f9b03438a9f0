"""The floor of a metric: the score of the best constant, content-free answer, computed without
an LM on exactly the examples a run scores.

A 0-1 score only means something next to what no reading of the prompt at all would get. The
floor is the highest mean score, over the examples, of a few *constant* answers (the same answer
to every prompt), all fixed before the examples are looked at:

IR answers (the `ir` field a prediction carries):

- ``content-free``: name ``f``, no parameters, returns ``None``, empty intent, no effects,
  assertions or holes (the smallest schema-valid IR).
- ``modal-shape``: the train split's most common gold *shape* (the tuple of parameter types and
  the return type; ties: first seen), with every content word removed: name ``f``, parameters
  ``arg0, arg1, ...`` of those types, empty intent, no effects, assertions or holes.
- ``medoid-gold``: the one train gold IR that scores highest on average against all train gold
  IRs (the most common gold IR when golds repeat), used verbatim for every prompt.

Code answers (the `code` field): ``def NAME(*args, **kwargs): return C`` with C ``None`` or the
zero value of the train golds' most common return type (``0``, ``''``, ``[]``, ``False``, ...),
run through the real sandbox like any answer. For the code metric (IR -> code) NAME is each
example's entry point, which the program is given in its input (the stub); for the end-to-end
metric NAME is the IR answer's own name (the pair is one constant answer).

The floor is ``max`` over the candidates of their mean score on the examples
(`MetricFloor.floor`; `MetricFloor.winner` names the candidate, `MetricFloor.candidates` holds
every candidate's answer and per-example scores). The floor-normalised score of a score s is
``(s - floor) / (1 - floor)``: 0 at the constant answer, 1 at a perfect one, negative below the
constant answer (`normalised`).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from typing import Any, Literal

import dspy
from pydantic import BaseModel, Field

from liftdspy.ir import IntermediateRepresentation
from liftdspy.metrics.base import BreakdownMetric
from liftdspy.metrics.code_metric import CodeMetric
from liftdspy.metrics.end_to_end import EndToEndMetric
from liftdspy.metrics.fields import read_gold_ir
from liftdspy.metrics.ir_metric import IRMetric, score_ir
from liftdspy.metrics.type_hints import normalise_type_hint
from liftdspy.versioning import Version

logger = logging.getLogger(__name__)

FloorMetric = Literal["ir", "code", "end_to_end"]
MAX_MEDOID_TRAIN = 100  # the medoid compares every pair of train golds: the first 100 (10⁴ pairs)
ENTRY_POINT = "{entry_point}"  # in a code answer: each example's entry point (code metric)

# The zero value of a return type's outer type (the constant a content-free body returns).
_ZERO = {
    "bool": "False",
    "int": "0",
    "float": "0.0",
    "complex": "0j",
    "str": "''",
    "bytes": "b''",
    "list": "[]",
    "dict": "{}",
    "set": "set()",
    "frozenset": "frozenset()",
    "tuple": "()",
}


class FloorCandidate(BaseModel):
    """One constant answer and its score on every example."""

    name: str  # e.g. "content-free", "modal-shape + return None"
    answer: dict[str, Any]  # {"ir": IR JSON} and/or {"code": source}; see ENTRY_POINT
    mean: float
    scores: list[float]  # per example, in `MetricFloor.example_ids` order


class MetricFloor(BaseModel):
    """The floor of a metric on a set of examples (see the module doc)."""

    version: Version = "1"
    metric: FloorMetric
    example_ids: list[str]
    floor: float
    winner: str  # the candidate whose mean is the floor
    candidates: list[FloorCandidate] = Field(default_factory=list)

    @property
    def n(self) -> int:
        return len(self.example_ids)

    def best(self) -> FloorCandidate:
        return next(c for c in self.candidates if c.name == self.winner)

    def scores_by_id(self) -> dict[str, float]:
        """The winning constant answer's score on every example."""
        return dict(zip(self.example_ids, self.best().scores, strict=True))

    def normalised(self, score: float | None) -> float | None:
        return normalised(score, self.floor)

    def restricted(self, ids: Sequence[str]) -> MetricFloor:
        """The floor on the examples `ids` (a subset of `example_ids`): every candidate's mean
        over those examples, the best again (a pair of runs compared on the examples both
        evaluated gets the floor of exactly those)."""
        position = {example_id: i for i, example_id in enumerate(self.example_ids)}
        missing = [i for i in ids if i not in position]
        if missing or not ids:
            raise ValueError(f"the floor has no score for example(s) {missing or '(none given)'}")
        candidates = []
        for c in self.candidates:
            scores = [c.scores[position[i]] for i in ids]
            candidates.append(
                c.model_copy(update={"scores": scores, "mean": sum(scores) / len(scores)})
            )
        best = max(candidates, key=lambda c: c.mean)
        return self.model_copy(
            update={
                "example_ids": list(ids),
                "floor": best.mean,
                "winner": best.name,
                "candidates": candidates,
            }
        )


def normalised(score: float | None, floor: float | None) -> float | None:
    """``(score - floor) / (1 - floor)``; None without a score or floor, or when the floor is 1
    (a constant answer is already perfect: nothing is left to normalise by)."""
    if score is None or floor is None or floor >= 1.0:
        return None
    return (score - floor) / (1.0 - floor)


def metric_kind(metric: BreakdownMetric) -> FloorMetric:
    if isinstance(metric, EndToEndMetric):
        return "end_to_end"
    if isinstance(metric, CodeMetric):
        return "code"
    if isinstance(metric, IRMetric):
        return "ir"
    raise TypeError(f"no floor is defined for metric {type(metric).__name__}")


def _bare_ir(name: str, parameters: list[tuple[str, str]], returns: str) -> dict[str, Any]:
    return IntermediateRepresentation.model_validate(
        {
            "intent": {"summary": ""},
            "signature": {
                "name": name,
                "parameters": [{"name": n, "type_hint": t} for n, t in parameters],
                "returns": {"type_hint": returns},
            },
        }
    ).model_dump(mode="json")


def _shape(ir: IntermediateRepresentation) -> tuple[tuple[str, ...], str]:
    return (
        tuple(normalise_type_hint(p.type_hint) for p in ir.signature.parameters),
        normalise_type_hint(ir.signature.returns.type_hint),
    )


def _modal(values: list[Any]) -> Any:
    """The most common value; ties: the first seen (Counter keeps insertion order)."""
    return Counter(values).most_common(1)[0][0]


def ir_candidates(train_golds: Sequence[IntermediateRepresentation]) -> dict[str, dict[str, Any]]:
    """The constant IR answers (name -> IR JSON), chosen from the train golds only."""
    candidates = {"content-free": _bare_ir("f", [], "None")}
    if not train_golds:
        return candidates
    params, returns = _modal([_shape(g) for g in train_golds])
    candidates["modal-shape"] = _bare_ir(
        "f", [(f"arg{i}", t) for i, t in enumerate(params)], returns
    )
    pool = list(train_golds)[:MAX_MEDOID_TRAIN]
    weights = None  # default weights: the medoid is chosen once, whatever the run's weights

    def centrality(ir: IntermediateRepresentation) -> float:
        return sum(score_ir(g, ir, weights).total for g in pool) / len(pool)

    medoid = max(pool, key=centrality)  # max keeps the first of equals
    candidates["medoid-gold"] = medoid.model_dump(mode="json")
    return candidates


def zero_value(type_hint: str) -> str:
    """The zero value of a type hint's outer type as Python source (``None`` when unknown)."""
    hint = normalise_type_hint(type_hint)
    if "|" in hint:  # an optional / union: None is a member or as good a guess as any
        return "None"
    return _ZERO.get(hint.split("[", 1)[0], "None")


def constant_returns(train_golds: Sequence[IntermediateRepresentation]) -> list[str]:
    """``None`` and the zero value of the train golds' most common return type."""
    values = ["None"]
    if train_golds:
        modal = _modal([normalise_type_hint(g.signature.returns.type_hint) for g in train_golds])
        values.append(zero_value(modal))
    return list(dict.fromkeys(values))


def constant_code(name: str, value: str) -> str:
    return f"def {name}(*args, **kwargs):\n    return {value}\n"


def gold_ir_field(metric: BreakdownMetric) -> str:
    if isinstance(metric, IRMetric):
        return metric.gold_field
    if isinstance(metric, CodeMetric):
        return metric.gold_ir_field
    if isinstance(metric, EndToEndMetric):
        return metric.ir_metric.gold_field
    return "ir"


def _answers(
    kind: FloorMetric, train_golds: list[IntermediateRepresentation]
) -> dict[str, dict[str, Any]]:
    """Every candidate answer of the metric kind: name -> {"ir": ..., "code": ...}."""
    irs = ir_candidates(train_golds)
    returns = constant_returns(train_golds)
    if kind == "ir":
        return {name: {"ir": ir} for name, ir in irs.items()}
    if kind == "code":
        return {f"return {value}": {"code": constant_code(ENTRY_POINT, value)} for value in returns}
    return {
        f"{name} + return {value}": {
            "ir": ir,
            "code": constant_code(ir["signature"]["name"], value),
        }
        for name, ir in irs.items()
        for value in returns
    }


def constant_prediction(answer: dict[str, Any], example: Any, gold_field: str) -> dspy.Prediction:
    """The prediction a constant answer makes for `example` (the entry point filled in)."""
    fields = dict(answer)
    if "ir" in fields:
        fields["ir"] = IntermediateRepresentation.model_validate(fields["ir"])
    code = fields.get("code")
    if code is not None and ENTRY_POINT in code:
        fields["code"] = code.replace(ENTRY_POINT, read_gold_ir(example, gold_field).signature.name)
    return dspy.Prediction(**fields)


def metric_floor(
    metric: BreakdownMetric, train: Sequence[Any], examples: Sequence[Any]
) -> MetricFloor:
    """The floor of `metric` on `examples` (dspy.Examples with an `id` and the gold fields),
    its constant answers chosen from the gold IRs of `train` (none: only ``content-free``, or
    for code only ``return None``). No LM is called; code answers run in the sandbox."""
    if not examples:
        raise ValueError("a floor needs at least one example")
    kind = metric_kind(metric)
    gold_field = gold_ir_field(metric)
    train_golds = [read_gold_ir(example, gold_field) for example in train]
    ids = [str(example.id) for example in examples]
    candidates = []
    for name, answer in _answers(kind, train_golds).items():
        scores = [
            metric.breakdown(example, constant_prediction(answer, example, gold_field)).total
            for example in examples
        ]
        candidates.append(
            FloorCandidate(name=name, answer=answer, mean=sum(scores) / len(scores), scores=scores)
        )
    best = max(candidates, key=lambda c: c.mean)
    logger.info(
        "floor of the %s metric on %d examples: %.3f (%s)", kind, len(ids), best.mean, best.name
    )
    return MetricFloor(
        metric=kind, example_ids=ids, floor=best.mean, winner=best.name, candidates=candidates
    )
