"""Choice of DSPy predictor (Predict or ChainOfThought) for a signature."""

from __future__ import annotations

from typing import Literal

import dspy

PredictorKind = Literal["predict", "cot"]


def make_predictor(signature: type[dspy.Signature], kind: PredictorKind) -> dspy.Module:
    """`dspy.Predict` or `dspy.ChainOfThought` for `signature`."""
    if kind == "predict":
        return dspy.Predict(signature)
    if kind == "cot":
        return dspy.ChainOfThought(signature)
    raise ValueError(f"unknown predictor kind {kind!r}: expected 'predict' or 'cot'")


def predict_of(module: dspy.Module) -> dspy.Predict:
    """The `dspy.Predict` that calls the LM: `module` itself, or a ChainOfThought's `predict`."""
    return module if isinstance(module, dspy.Predict) else module.predict
