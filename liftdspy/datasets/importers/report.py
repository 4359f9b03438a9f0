"""What an import did: rows written, rows left out and why."""

from __future__ import annotations

from pydantic import BaseModel, Field


class SkippedRow(BaseModel):
    source_id: str = Field(description="The benchmark's own id of the problem, e.g. 'mbpp/12'.")
    reason: str


class InSandboxVerdict(BaseModel):
    """A test of a kept problem whose judgement was (partly) the sandbox's, and why."""

    source_id: str
    test: int = Field(description="The test's index in the problem's test list.")
    reason: str


class ImportReport(BaseModel):
    """The yield of one import. Every problem read is either written or listed in `skipped`."""

    source: str = Field(description="The benchmark, e.g. 'mbpp' or 'humaneval'.")
    read: int = 0
    written: int = 0
    skipped: list[SkippedRow] = Field(default_factory=list)
    in_sandbox: list[InSandboxVerdict] = Field(
        default_factory=list,
        description="Tests of the written problems not wholly decided in the parent "
        "(verdict in-sandbox), with the reason.",
    )
    out: str | None = None

    @property
    def yield_rate(self) -> float:
        return self.written / self.read if self.read else 0.0

    def summary(self) -> str:
        return (
            f"{self.source}: {self.written}/{self.read} problems imported "
            f"({self.yield_rate:.1%}), {len(self.skipped)} skipped, "
            f"{len(self.in_sandbox)} in-sandbox verdicts"
        )
