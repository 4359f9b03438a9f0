"""Observed runtime types -> type hints: the pure merging and the sandboxed observation."""

from __future__ import annotations

import pytest

from liftdspy.datasets.importers.derive import (
    DerivationError,
    derive_assertions,
    derive_signature,
    find_entry_point,
    fit_text,
)
from liftdspy.datasets.importers.observe import Observations, instrument, read_observations
from liftdspy.datasets.importers.type_shapes import UnionShape
from liftdspy.sandbox import run_tests


@pytest.mark.parametrize(
    ("shapes", "hint"),
    [
        (["int"], "int"),
        (["int", "float"], "int | float"),
        (["str", "None"], "str | None"),
        ([["list", ["int"]], ["list", []]], "list[int]"),  # an empty list adds nothing
        ([["list", []]], "list[Any]"),
        ([["list", ["int", "str"]]], "list[Any]"),  # heterogeneous
        ([["list", ["int", "float"]]], "list[int | float]"),
        ([["dict", ["str"], ["int"]]], "dict[str, int]"),
        ([["tuple", ["int", "str"]]], "tuple[int, str]"),
        ([["tuple", ["int", "int", "int"]]], "tuple[int, ...]"),
        ([["tuple", ["int"]], ["tuple", ["int", "str"]]], "tuple[Any, ...]"),
        ([["vartuple", ["str"]]], "tuple[str, ...]"),
        (["int", "str", "float", "bool"], "Any"),
        ([], "Any"),
        (
            [["list", [["list", [["list", [["list", [["list", ["int"]]]]]]]]]]],
            "list[list[list[list[Any]]]]",
        ),
    ],
)
def test_shapes_render_as_type_hints(shapes: list, hint: str) -> None:
    assert UnionShape.of(*shapes).to_hint() == hint


def _observed(reference: str, entry: str, tests: list[str]) -> Observations:
    result = run_tests(instrument(reference, entry), tests)
    assert result.passed == len(tests), result
    return read_observations(result.stdout)


def test_observation_records_argument_types_before_mutation_and_return_types() -> None:
    reference = (
        "def drain(items, label=None):\n"
        "    while items:\n"
        "        items.pop()\n"
        "    return {label: 0} if label else None\n"
    )
    tests = ["assert drain([1, 2]) is None", "assert drain([3], 'x') == {'x': 0}"]
    signature = derive_signature(reference, "drain", _observed(reference, "drain", tests))
    hints = {p.name: p.type_hint for p in signature.parameters}
    assert hints == {"items": "list[int]", "label": "str | None"}
    assert signature.returns.type_hint == "dict[str, int] | None"


def test_annotations_win_and_recursion_records_only_the_outer_call() -> None:
    reference = "def fact(n: int, *rest):\n    return 1 if n <= 1 else n * fact(n - 1)\n"
    tests = ["assert fact(5) == 120", "assert fact(3, 'a', 'b') == 6"]
    observed = _observed(reference, "fact", tests)
    assert observed.calls == 2
    signature = derive_signature(reference, "fact", observed)
    assert [(p.name, p.type_hint) for p in signature.parameters] == [("n", "int"), ("rest", "str")]
    assert signature.returns.type_hint == "int"


def test_entry_point_is_the_function_the_tests_call() -> None:
    reference = "def helper(x):\n    return x\n\ndef main(x):\n    return helper(x)\n"
    assert (
        find_entry_point(reference, ["assert main(1) == helper(1)", "assert main(2) == 2"])
        == "main"
    )
    with pytest.raises(DerivationError, match="call no top-level function"):
        find_entry_point(reference, ["assert len([]) == 0"])


def test_assertions_are_bounded_and_spread_over_the_tests() -> None:
    tests = [f"assert f({i}) == {i}, 'message'" for i in range(20)] + ["x = 1"]
    predicates = [a.predicate for a in derive_assertions(tests)]
    assert len(predicates) == 8
    assert predicates[0] == "f(0) == 0" and predicates[-1] == "f(19) == 19"
    assert derive_assertions([f"assert f('{'x' * 300}')"]) == []  # too long for the IR


def test_fit_text_cuts_at_a_sentence_end() -> None:
    text = "The first sentence, long enough to keep. " + "word " * 100
    assert fit_text(text, 80) == "The first sentence, long enough to keep."
    assert len(fit_text("word " * 200, 50)) <= 50
