"""Fuzzy matching of short texts (effects, assertions, hole descriptions) by token overlap.

The similarity of two texts is the F1 of their token multisets. Tokens are lower-cased words
(identifiers split on `_` and camelCase, a plural `s` dropped from words longer than three
letters, a few English stop words removed), numbers, and runs of operator characters, so the
predicates `len(result) <= len(text)` and `len(text) >= len(result)` share most tokens.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Sequence
from typing import TypeVar

_TOKEN = re.compile(r"[A-Za-z]+|\d+|[^\sA-Za-z0-9_(),\[\]{}'\".:]+")
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
STOP_WORDS = frozenset(
    {"a", "an", "the", "of", "to", "is", "are", "be", "and", "or", "in", "on", "for", "with"}
    | {"by", "it", "its", "as", "that", "this", "if"}
)

T = TypeVar("T")
U = TypeVar("U")


def tokens(text: str) -> list[str]:
    """The comparison tokens of `text` (see the module docstring)."""
    spaced = _CAMEL.sub(" ", text).replace("_", " ")
    out: list[str] = []
    for raw in _TOKEN.findall(spaced):
        word = raw.lower()
        if word in STOP_WORDS:
            continue
        if word.isalpha() and len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
            word = word[:-1]
        out.append(word)
    return out


def text_similarity(a: str, b: str) -> float:
    """Token-multiset F1 of `a` and `b` in [0, 1]; 1.0 when both have no tokens."""
    ta, tb = Counter(tokens(a)), Counter(tokens(b))
    if not ta and not tb:
        return 1.0
    common = sum((ta & tb).values())
    if common == 0:
        return 0.0
    precision = common / sum(tb.values())
    recall = common / sum(ta.values())
    return 2 * precision * recall / (precision + recall)


def greedy_match(
    gold: Sequence[T], predicted: Sequence[U], similarity: Callable[[T, U], float]
) -> list[tuple[int, int | None, float]]:
    """A one-to-one matching of gold to predicted items, best pairs first.

    Returns one `(gold_index, predicted_index or None, similarity)` per gold item, in gold order;
    a predicted item is used at most once, so one generic item cannot cover several gold items.
    """
    pairs = sorted(
        ((similarity(g, p), i, j) for i, g in enumerate(gold) for j, p in enumerate(predicted)),
        key=lambda t: (-t[0], t[1], t[2]),
    )
    chosen: dict[int, tuple[int, float]] = {}
    used: set[int] = set()
    for score, i, j in pairs:
        if i in chosen or j in used or score <= 0.0:
            continue
        chosen[i] = (j, score)
        used.add(j)
    return [(i, *chosen.get(i, (None, 0.0))) for i in range(len(gold))]
