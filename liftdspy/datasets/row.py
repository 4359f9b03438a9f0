"""One labelled task: a natural-language prompt, its gold IR and executable tests."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from liftdspy.ir import IntermediateRepresentation
from liftdspy.versioning import Version

Split = Literal["train", "dev", "test"]
SPLITS: tuple[Split, ...] = ("train", "dev", "test")

TaskId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_./-]*$", max_length=80)]


class LabelledTask(BaseModel):
    """A row of a labelled dataset (one JSON object per line of a JSONL file).

    `tests` are Python statements (usually `assert ...`) run after the function's definition and
    `test_setup`; each entry is one test case.
    """

    model_config = ConfigDict(extra="forbid")

    id: TaskId
    prompt: Annotated[str, StringConstraints(min_length=1)]
    ir: IntermediateRepresentation
    tests: list[Annotated[str, StringConstraints(min_length=1)]] = Field(min_length=1)
    test_setup: str = ""
    reference: str | None = None
    tags: list[str] = Field(default_factory=list)
    split: Split
    version: Version = "1"

    @property
    def entry_point(self) -> str:
        """The name of the function the tests call."""
        return self.ir.signature.name

    @property
    def is_ambiguous(self) -> bool:
        return bool(self.ir.holes)
