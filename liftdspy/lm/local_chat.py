"""Render a DSPy request's conversation into the prompt text a local model was trained on.

Rendering ourselves (instead of llama.cpp's chat handler) gives token ids whose prefix is the same
from call to call (DSPy's system message and demos), so llama.cpp reuses its KV cache for it.
"""

from __future__ import annotations

from dataclasses import dataclass

from dspy.lm15 import Request

from liftdspy.errors import LiftdspyError
from liftdspy.lm.models import ChatFormat


class UnsupportedContentError(LiftdspyError, ValueError):
    """The request holds content a text-only local model cannot read (images, tool calls...)."""


@dataclass(frozen=True)
class ChatTurn:
    role: str
    text: str


@dataclass(frozen=True)
class ChatTemplate:
    """A chat format: how turns are written and which marker ends the model's turn."""

    format: ChatFormat
    end_of_turn: str

    def render(self, turns: list[ChatTurn]) -> str:
        if self.format == "chatml":
            return _render_chatml(turns)
        return _render_gemma(turns)


CHAT_TEMPLATES: dict[ChatFormat, ChatTemplate] = {
    "chatml": ChatTemplate(format="chatml", end_of_turn="<|im_end|>"),
    "gemma": ChatTemplate(format="gemma", end_of_turn="<end_of_turn>"),
}


def request_turns(request: Request) -> list[ChatTurn]:
    """The system text and messages of `request` as plain-text turns."""
    turns: list[ChatTurn] = []
    if request.system is not None:
        system = request.system
        if not isinstance(system, str):
            system = "".join(_part_text(part, "system") for part in system)
        turns.append(ChatTurn("system", system))
    for index, message in enumerate(request.messages):
        text = "".join(_part_text(part, f"messages[{index}]") for part in message.parts)
        turns.append(ChatTurn(message.role, text))
    return turns


def _part_text(part: object, where: str) -> str:
    if getattr(part, "type", None) == "text":
        return part.text  # type: ignore[attr-defined]
    kind = getattr(part, "type", type(part).__name__)
    raise UnsupportedContentError(f"{where}: the local engine reads text only, got a {kind!r} part")


def _render_chatml(turns: list[ChatTurn]) -> str:
    body = "".join(f"<|im_start|>{turn.role}\n{turn.text}<|im_end|>\n" for turn in turns)
    return body + "<|im_start|>assistant\n"


def _render_gemma(turns: list[ChatTurn]) -> str:
    """Gemma's turn markers; Gemma has no system role, so system text opens the first user turn."""
    system = "\n\n".join(turn.text for turn in turns if turn.role == "system")
    out: list[str] = []
    for turn in turns:
        if turn.role == "system":
            continue
        role = "model" if turn.role == "assistant" else "user"
        text = turn.text
        if system and role == "user":
            text, system = f"{system}\n\n{text}", ""
        out.append(f"<start_of_turn>{role}\n{text}<end_of_turn>\n")
    if system:  # a system message with no user turn after it
        out.insert(0, f"<start_of_turn>user\n{system}<end_of_turn>\n")
    return "".join(out) + "<start_of_turn>model\n"
