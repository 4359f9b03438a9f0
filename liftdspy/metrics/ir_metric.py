"""Score a predicted IR against the gold IR, component by component (each in [0, 1]).

- `schema_valid`: 1 if the prediction parses into an IR, else 0 (and every other component 0).
- `name`: 1 if identical; 0.5 if equal ignoring case and `_`; else 0.25 x Jaccard of the words.
- `param_names` (order-aware): 0.5 x F1 of the name sets + 0.5 x (positions holding the same
  name) / max(len gold, len predicted).
- `param_types`: sum of the type scores of the gold parameters / max(len gold, len predicted);
  a gold parameter's counterpart is the predicted one with its name, else the one at its position.
- `arity`: 1 - |len gold - len predicted| / max(len gold, len predicted).
- `return_type`: the type score of the return hints.
- `effects`, `assertions`: soft F1 of a greedy one-to-one matching of gold to predicted items
  by the token F1 of their texts (see `text_similarity`): with S the sum of the matched
  similarities, recall S / gold items, precision S / predicted items, so an item that matches
  nothing (filler) lowers the score. Gold empty: 1 if the prediction has none too, else 0.5.
- `holes`: gold has holes (ambiguous prompt): F1 of matched holes (precision and recall are in
  `details`); a predicted hole matches a gold hole, one-to-one, when kind factor (1 same kind,
  0.5 otherwise) x max(token F1 of identifiers, token F1 of descriptions) >= 0.5. Gold has no
  holes: max(0.5, 1 - 0.25 x predicted holes), a mild penalty.

Type score: 1 when the normalised hints are equal (`List[int]` == `list[int]`, `Optional[int]` ==
`int | None`), 0.5 when only the outer type agrees, else 0 (see `type_hints`). Empty lists on
both sides score 1. The total is the weighted mean of the components (`IRMetricWeights`).
"""

from __future__ import annotations

import logging
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from liftdspy.ir import IntermediateRepresentation, Parameter, TypedHole, coerce_ir
from liftdspy.metrics.base import BreakdownMetric
from liftdspy.metrics.breakdown import MetricBreakdown, weighted_total
from liftdspy.metrics.fields import get_field, has_value, read_gold_ir
from liftdspy.metrics.text_similarity import greedy_match, text_similarity, tokens
from liftdspy.metrics.type_hints import normalise_type_hint, type_hint_similarity
from liftdspy.validation_errors import describe_error

logger = logging.getLogger(__name__)

SPURIOUS_ITEMS_SCORE = 0.5  # effects/assertions predicted where the gold IR has none
HOLE_PENALTY_PER_UNNEEDED = 0.25  # per hole predicted for an unambiguous prompt ...
HOLE_PENALTY_FLOOR = 0.5  # ... down to this score
HOLE_MATCH_THRESHOLD = 0.5
COVERED_THRESHOLD = 0.5  # feedback names gold items whose best match is below this
_SNIPPET = 140


class IRMetricWeights(BaseModel):
    """Weights of the IR metric's components; the total is their weighted mean."""

    model_config = ConfigDict(extra="forbid")

    schema_valid: float = Field(default=0.10, ge=0)
    name: float = Field(default=0.15, ge=0)
    param_names: float = Field(default=0.15, ge=0)
    param_types: float = Field(default=0.10, ge=0)
    arity: float = Field(default=0.05, ge=0)
    return_type: float = Field(default=0.10, ge=0)
    effects: float = Field(default=0.10, ge=0)
    assertions: float = Field(default=0.15, ge=0)
    holes: float = Field(default=0.10, ge=0)

    @model_validator(mode="after")
    def _not_all_zero(self) -> IRMetricWeights:
        if sum(self.model_dump().values()) <= 0:
            raise ValueError("IR metric weights must not all be zero")
        return self


COMPONENTS = tuple(IRMetricWeights.model_fields)


def _snip(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _SNIPPET else text[: _SNIPPET - 3] + "..."


def name_score(gold: str, predicted: str) -> float:
    if gold == predicted:
        return 1.0
    if gold.replace("_", "").lower() == predicted.replace("_", "").lower():
        return 0.5
    g, p = set(tokens(gold)), set(tokens(predicted))
    return 0.25 * len(g & p) / len(g | p) if g | p else 0.0


def param_names_score(gold: list[str], predicted: list[str]) -> float:
    if not gold and not predicted:
        return 1.0
    common = len(set(gold) & set(predicted))
    f1 = 2 * common / (len(gold) + len(predicted)) if common else 0.0
    in_place = sum(g == p for g, p in zip(gold, predicted, strict=False))
    return 0.5 * f1 + 0.5 * in_place / max(len(gold), len(predicted))


def _counterparts(gold: list[Parameter], predicted: list[Parameter]) -> list[Parameter | None]:
    """For each gold parameter, the predicted one with its name, else the one at its position
    (unless that one is the namesake of another gold parameter)."""
    by_name = {p.name: p for p in predicted}
    gold_names = {g.name for g in gold}
    out: list[Parameter | None] = []
    for i, g in enumerate(gold):
        if g.name in by_name:
            out.append(by_name[g.name])
        elif i < len(predicted) and predicted[i].name not in gold_names:
            out.append(predicted[i])
        else:
            out.append(None)
    return out


def param_types_score(gold: list[Parameter], predicted: list[Parameter]) -> float:
    if not gold and not predicted:
        return 1.0
    pairs = zip(gold, _counterparts(gold, predicted), strict=True)
    matched = sum(type_hint_similarity(g.type_hint, p.type_hint) for g, p in pairs if p)
    return matched / max(len(gold), len(predicted))


def arity_score(gold: int, predicted: int) -> float:
    if gold == predicted:
        return 1.0
    return 1.0 - abs(gold - predicted) / max(gold, predicted)


def coverage_score(gold: list[str], predicted: list[str]) -> tuple[float, list[tuple[str, float]]]:
    """Soft F1 of a greedy one-to-one matching of gold to predicted texts (recall: matched
    similarity / gold items; precision: matched similarity / predicted items, so filler items
    cost), and the (text, similarity) of each gold item; see the module docstring for the empty
    cases."""
    if not gold:
        return (1.0 if not predicted else SPURIOUS_ITEMS_SCORE), []
    matches = greedy_match(gold, predicted, text_similarity)
    per_item = [(gold[i], score) for i, _, score in matches]
    matched = sum(s for _, s in per_item)
    if not predicted or matched <= 0:
        return 0.0, per_item
    recall, precision = matched / len(gold), matched / len(predicted)
    return 2 * precision * recall / (precision + recall), per_item


def hole_similarity(gold: TypedHole, predicted: TypedHole) -> float:
    kind_factor = 1.0 if gold.kind == predicted.kind else 0.5
    text = max(
        text_similarity(gold.identifier, predicted.identifier),
        text_similarity(gold.description, predicted.description),
    )
    return kind_factor * text


class HoleMatch(BaseModel):
    score: float
    precision: float
    recall: float
    missed: list[TypedHole]
    unneeded: list[TypedHole]


def holes_score(gold: list[TypedHole], predicted: list[TypedHole]) -> HoleMatch:
    if not gold:
        score = max(HOLE_PENALTY_FLOOR, 1.0 - HOLE_PENALTY_PER_UNNEEDED * len(predicted))
        return HoleMatch(
            score=1.0 if not predicted else score,
            precision=1.0 if not predicted else 0.0,
            recall=1.0,
            missed=[],
            unneeded=list(predicted),
        )
    matches = [
        (i, j)
        for i, j, s in greedy_match(gold, predicted, hole_similarity)
        if j is not None and s >= HOLE_MATCH_THRESHOLD
    ]
    matched_gold = {i for i, _ in matches}
    matched_pred = {j for _, j in matches}
    precision = len(matches) / len(predicted) if predicted else 0.0
    recall = len(matches) / len(gold)
    f1 = 2 * precision * recall / (precision + recall) if matches else 0.0
    return HoleMatch(
        score=f1,
        precision=precision,
        recall=recall,
        missed=[h for i, h in enumerate(gold) if i not in matched_gold],
        unneeded=[h for j, h in enumerate(predicted) if j not in matched_pred],
    )


def _params_text(parameters: list[Parameter]) -> str:
    return "(" + ", ".join(f"{p.name}: {p.type_hint}" for p in parameters) + ")"


def _hole_text(hole: TypedHole) -> str:
    return f"[{hole.kind}] {hole.identifier}: {_snip(hole.description)}"


def _signature_feedback(
    gold: IntermediateRepresentation, pred: IntermediateRepresentation, components: dict[str, float]
) -> list[str]:
    g, p = gold.signature, pred.signature
    lines: list[str] = []
    if components["name"] < 1.0:
        lines.append(f"Function name: expected {g.name!r}, got {p.name!r} (it must match exactly).")
    if components["param_names"] < 1.0 or components["arity"] < 1.0:
        lines.append(
            f"Parameters: expected {len(g.parameters)} in this order {_params_text(g.parameters)}, "
            f"got {len(p.parameters)}: {_params_text(p.parameters)}."
        )
    for gp, pp in zip(g.parameters, _counterparts(g.parameters, p.parameters), strict=True):
        if pp is not None and type_hint_similarity(gp.type_hint, pp.type_hint) < 1.0:
            lines.append(
                f"Parameter {gp.name!r} should be typed {normalise_type_hint(gp.type_hint)!r}, "
                f"got {normalise_type_hint(pp.type_hint)!r}."
            )
    if components["return_type"] < 1.0:
        lines.append(
            f"Return type: expected {normalise_type_hint(g.returns.type_hint)!r}, "
            f"got {normalise_type_hint(p.returns.type_hint)!r}."
        )
    return lines


def _coverage_feedback(
    label: str, per_item: list[tuple[str, float]], gold_count: int, predicted: list[str]
) -> list[str]:
    if gold_count == 0 and predicted:
        listed = "; ".join(_snip(t) for t in predicted)
        return [f"{label.capitalize()}: the function has none, but the IR lists: {listed}."]
    missing = [text for text, score in per_item if score < COVERED_THRESHOLD]
    return [f"Missing {label[:-1]}: {_snip(text)}" for text in missing]


def _holes_feedback(gold: list[TypedHole], match: HoleMatch) -> list[str]:
    if not gold:
        if not match.unneeded:
            return []
        listed = "; ".join(_hole_text(h) for h in match.unneeded)
        return [f"The prompt is unambiguous, so no typed holes are needed; the IR has: {listed}."]
    lines = [f"Missed ambiguity (typed hole) {_hole_text(h)}" for h in match.missed]
    lines += [f"Typed hole not in the gold IR: {_hole_text(h)}" for h in match.unneeded]
    return lines


def _invalid(message: str, weights: IRMetricWeights) -> MetricBreakdown:
    logger.debug("predicted IR scored 0: %s", message)
    components = dict.fromkeys(COMPONENTS, 0.0)
    return MetricBreakdown(
        total=weighted_total(components, weights.model_dump()),
        components=components,
        feedback=f"Score 0.00. The predicted IR is invalid, so nothing else was scored: {message}",
    )


def score_ir(
    gold: IntermediateRepresentation, predicted: Any, weights: IRMetricWeights | None = None
) -> MetricBreakdown:
    """Score `predicted` (an IR, a dict or a JSON string) against `gold`; never raises on a bad
    prediction (it scores 0 `schema_valid` and the feedback says why)."""
    weights = weights or IRMetricWeights()
    try:
        pred = coerce_ir(predicted)
    except ValueError as exc:
        return _invalid(describe_error(exc), weights)

    g, p = gold.signature, pred.signature
    effects, effect_items = coverage_score(
        [e.description for e in gold.effects], [e.description for e in pred.effects]
    )
    assertions, assertion_items = coverage_score(
        [a.predicate for a in gold.assertions], [a.predicate for a in pred.assertions]
    )
    holes = holes_score(gold.holes, pred.holes)
    components = {
        "schema_valid": 1.0,
        "name": name_score(g.name, p.name),
        "param_names": param_names_score(
            [x.name for x in g.parameters], [x.name for x in p.parameters]
        ),
        "param_types": param_types_score(g.parameters, p.parameters),
        "arity": arity_score(len(g.parameters), len(p.parameters)),
        "return_type": type_hint_similarity(g.returns.type_hint, p.returns.type_hint),
        "effects": effects,
        "assertions": assertions,
        "holes": holes.score,
    }
    total = weighted_total(components, weights.model_dump())
    lines = _signature_feedback(gold, pred, components)
    lines += _coverage_feedback(
        "effects", effect_items, len(gold.effects), [e.description for e in pred.effects]
    )
    lines += _coverage_feedback(
        "assertions", assertion_items, len(gold.assertions), [a.predicate for a in pred.assertions]
    )
    lines += _holes_feedback(gold.holes, holes)
    weak = ", ".join(f"{k} {v:.2f}" for k, v in components.items() if v < 1.0)
    head = f"Score {total:.2f}." + (f" Weak components: {weak}." if weak else "")
    body = (
        "\n".join(f"- {line}" for line in lines)
        or "- The IR matches the gold IR on every component."
    )
    return MetricBreakdown(
        total=total,
        components=components,
        details={"hole_precision": holes.precision, "hole_recall": holes.recall},
        feedback=f"{head}\n{body}",
    )


class IRMetric(BreakdownMetric):
    """The IR metric as a DSPy metric: gold IR from `example.<gold_field>`, predicted IR from
    `prediction.<prediction_field>` (an IR, a dict or a JSON string)."""

    def __init__(
        self,
        weights: IRMetricWeights | None = None,
        *,
        gold_field: str = "ir",
        prediction_field: str = "ir",
        bootstrap_threshold: float | None = None,
    ):
        self.weights = weights or IRMetricWeights()
        self.gold_field = gold_field
        self.prediction_field = prediction_field
        self.bootstrap_threshold = bootstrap_threshold

    def breakdown(self, example: Any, prediction: Any) -> MetricBreakdown:
        gold = read_gold_ir(example, self.gold_field)
        value = get_field(prediction, self.prediction_field)
        if not has_value(value) or value is None:
            error = get_field(prediction, "error")
            reason = (
                f"no IR ({error})"
                if has_value(error) and error
                else f"the prediction has no field {self.prediction_field!r}"
            )
            return _invalid(reason, self.weights)
        return score_ir(gold, value, self.weights)
