"""The leakage guard: before any LM call, fail if an evaluation example is also a training or
validation example (same id, or the same prompt once normalised), or a demo of a fixed arm."""

from __future__ import annotations

import re
import unicodedata

from liftdspy.datasets import LabelledTask
from liftdspy.errors import LiftdspyError

_SPACE = re.compile(r"\s+")


class LeakageError(LiftdspyError, ValueError):
    """Evaluation examples the program could have seen; the message lists each one."""


def normalise_prompt(text: str) -> str:
    """Case-, width- and whitespace-insensitive form of a prompt."""
    text = unicodedata.normalize("NFKC", text).casefold()
    return _SPACE.sub(" ", text).strip()


def find_leaks(
    eval_tasks: list[LabelledTask],
    seen: dict[str, list[LabelledTask]],
    demos: dict[str, list[str]],
) -> list[str]:
    """One line per leak. `seen` maps a role ('train', 'val') to its tasks; `demos` maps a fixed
    arm's cell to the task ids it shows the model."""
    problems: list[str] = []
    by_role = {
        role: (
            {t.id for t in tasks},
            {normalise_prompt(t.prompt): t.id for t in tasks},
        )
        for role, tasks in seen.items()
    }
    eval_ids = {t.id for t in eval_tasks}
    for task in eval_tasks:
        key = normalise_prompt(task.prompt)
        for role, (ids, prompts) in by_role.items():
            if task.id in ids:
                problems.append(f"eval example {task.id!r} is also in the {role} split (same id)")
            elif key in prompts:
                problems.append(
                    f"eval example {task.id!r} has the same prompt as {role} example "
                    f"{prompts[key]!r} (normalised text)"
                )
    for cell, ids in demos.items():
        for demo_id in sorted(set(ids) & eval_ids):
            problems.append(f"eval example {demo_id!r} is a demo of {cell}")
    return problems


def check_leakage(
    eval_tasks: list[LabelledTask],
    seen: dict[str, list[LabelledTask]],
    demos: dict[str, list[str]],
) -> None:
    problems = find_leaks(eval_tasks, seen, demos)
    if problems:
        shown = "\n".join(f"  {p}" for p in problems[:20])
        more = f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else ""
        raise LeakageError(
            f"leakage guard: {len(problems)} evaluation example(s) the program could have seen; "
            f"fix the splits (dataset.*_split / max_*) or the demos:\n{shown}{more}"
        )
