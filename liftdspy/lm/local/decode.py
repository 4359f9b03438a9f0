"""One sequence's decoding: grammar mask, sampling, jump-forward and the budget-aware end.

`SequenceDecoder` is the loop of one answer turned inside out so that a scheduler can drive many
at once (`liftdspy.lm.local.batch`): `start()` returns the tokens to feed after the prompt,
`step(logits)` takes the logits of the last token fed and returns the next tokens to feed, and
either returns None when the answer has ended. It never touches llama.cpp itself.

- Greedy at temperature 0 (argmax, the first of equal maxima), else sampling with the sequence's
  own `numpy` generator seeded from its request (`Sampling.seed`): what other requests sample
  never moves this one's random stream.
- Jump-forward: text the grammar forces (keys, quotes, braces, indentation) is tokenized and fed
  in one go instead of sampled token by token (all but its last token, which the model samples so
  it can merge with what follows, as its tokenizer would).
- Budget-aware end: before taking a token, the decoder checks that the shortest close of the
  answer from the new state still fits in the budget; if not, it feeds that close instead and
  stops (`finish_reason="length"`, `budget_closed=True`: parseable but cut, never complete).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dspy.lm15 import InvalidRequestError

from liftdspy.lm.grammar import GrammarState

if TYPE_CHECKING:
    import numpy as np

    from liftdspy.lm.local.model import LoadedModel

PROVIDER = "local"


@dataclass
class Generation:
    """What one call produced, with the numbers behind usage and timing."""

    text: str
    prompt_tokens: int
    reused_tokens: int
    output_tokens: int
    finish_reason: str
    prompt_seconds: float
    decode_seconds: float
    mask_seconds: float
    grammar: str | None
    forced_tokens: int = 0
    budget_closed: bool = False
    min_tokens: int | None = None

    def timing(self) -> dict[str, Any]:
        return {
            "prompt_tokens_evaluated": self.prompt_tokens - self.reused_tokens,
            "prompt_seconds": round(self.prompt_seconds, 4),
            "decode_seconds": round(self.decode_seconds, 4),
            "decode_tokens_per_second": (
                round(self.output_tokens / self.decode_seconds, 2)
                if self.decode_seconds > 0
                else None
            ),
            "grammar": self.grammar,
            # Tokens the grammar forced (jump-forward and budget close), fed without sampling.
            "forced_tokens": self.forced_tokens,
            "budget_closed": self.budget_closed,
            "min_tokens": self.min_tokens,
            "mask_ms_per_token": (
                round(1000 * self.mask_seconds / self.output_tokens, 4)
                if self.grammar and self.output_tokens
                else None
            ),
        }


@dataclass(frozen=True)
class Sampling:
    """How one request picks its tokens."""

    temperature: float = 0.0
    top_p: float = 1.0
    top_k: int = 0
    seed: int = 0
    stop: tuple[str, ...] = ()


class SequenceDecoder:
    """The decoding state of one answer: its grammar, random stream, output and how it ended."""

    def __init__(
        self,
        model: LoadedModel,
        prompt: list[int],
        state: GrammarState | None,
        *,
        max_tokens: int,
        sampling: Sampling,
        jump_forward: bool = True,
        budget_close: bool = True,
        name: str = "",
    ) -> None:
        import numpy as np

        self.model = model
        self.prompt = prompt
        self.state = state
        self.max_tokens = max_tokens
        self.sampling = sampling
        self.jump_forward = jump_forward
        self.name = name or model.located.name
        self.rng = np.random.default_rng(sampling.seed)
        self.pieces = model.pieces() if state is not None else []
        self.stop_ids = set(model.stop_token_ids)
        self.closing = budget_close and state is not None
        self.out: list[int] = []
        self.forced = 0
        self.finish = "length"
        self.budget_closed = False
        self.done = False
        self._pending: list[int] = []

    # -- what the scheduler calls --------------------------------------------------------

    def start(self) -> list[int] | None:
        """Tokens to feed after the prompt (forced opening text, often none), or None if the
        answer ended without needing the model (everything forced or closed)."""
        return self._advance()

    def step(self, logits: np.ndarray) -> list[int] | None:
        """Take one token from the logits of the last token fed; the next tokens to feed, or
        None when the answer has ended."""
        import numpy as np

        state = self.state
        logits = np.array(logits, dtype=np.float32, copy=True)
        if state is not None:
            state.mask.fill()
            state.mask.apply(logits)
        token = _choose(
            logits, self.sampling.temperature, self.sampling.top_p, self.sampling.top_k, self.rng
        )
        if token in self.stop_ids:
            return self._end("stop")
        if state is not None:
            if self.closing and not self._fits(1, self.pieces[token]):
                return self._close_now()
            if not state.accept(token, self.pieces[token]):
                raise InvalidRequestError(
                    f"local model {self.name}: the grammar rejected token {token}",
                    provider=PROVIDER,
                )
        self.out.append(token)
        self._pending = [token]
        if self.sampling.stop and self._ends_with_stop():
            return self._end("stop")
        return self._advance()

    def generation(
        self, *, reused: int, prompt_seconds: float, decode_seconds: float
    ) -> Generation:
        text = self.model.detokenize(self.out).decode("utf-8", errors="replace")
        if self.sampling.stop:
            text = _cut_at_stop(text, self.sampling.stop)
        return Generation(
            text=text,
            prompt_tokens=len(self.prompt),
            reused_tokens=reused,
            output_tokens=len(self.out),
            finish_reason=self.finish,
            prompt_seconds=prompt_seconds,
            decode_seconds=decode_seconds,
            mask_seconds=self.state.mask.mask_seconds if self.state is not None else 0.0,
            grammar=None,
            forced_tokens=self.forced,
            budget_closed=self.budget_closed,
        )

    # -- the loop's top half: what happens before the model is asked -----------------------

    def _advance(self) -> list[int] | None:
        state = self.state
        if state is not None:
            if state.mask.is_completed() and _only_stop_allowed(state, self.stop_ids):
                return self._end("stop")
            jump = self._jump_tokens(state)
            if jump:
                text = b"".join(self.pieces[t] for t in jump)
                if self.closing and not self._fits(len(jump), text):
                    return self._close_now()
                for token in jump:
                    state.accept(token, self.pieces[token])
                self.out.extend(jump)
                self._pending.extend(jump)
                self.forced += len(jump)
        if len(self.out) >= self.max_tokens:
            return self._end("length")
        feed, self._pending = self._pending, []
        return feed

    def _end(self, finish: str) -> None:
        self.finish = finish
        self.done = True
        return None

    def _jump_tokens(self, state: GrammarState) -> list[int]:
        """Tokens of the text the grammar forces next, less the last one.

        The last token is left to the model: the text after the forced part may merge with it
        into one token (`": "` then `"` is the token ` "` in SmolLM2's vocabulary), and a model
        fed a split it was never trained on writes worse answers.
        """
        if not self.jump_forward:
            return []
        text = state.mask.forced_text()
        if not text:
            return []
        return self.model.tokenize_text(text.encode("utf-8"))[:-1]

    def _fits(self, extra: int, after: bytes) -> bool:
        """After `extra` more tokens whose text is `after`, can the answer still close?"""
        assert self.state is not None
        rest = self.state.bytes.closing_text(after)
        if rest is None:
            return False
        return len(self.out) + extra + len(self.model.tokenize_text(rest)) <= self.max_tokens

    def _close_now(self) -> None:
        """Feed the close computed from the current state; it fits by the loop's invariant."""
        assert self.state is not None
        text = self.state.bytes.closing_text() or b""
        for token in self.model.tokenize_text(text):
            if not self.state.accept(token, self.pieces[token]):
                raise InvalidRequestError(
                    f"local model {self.name}: the grammar rejected its own closing text {text!r}",
                    provider=PROVIDER,
                )
            self.out.append(token)
            self.forced += 1
        self.budget_closed = True
        return self._end("length")

    def _ends_with_stop(self) -> bool:
        tail = self.model.detokenize(self.out[-16:]).decode("utf-8", errors="ignore")
        return any(s in tail for s in self.sampling.stop)


def _only_stop_allowed(state: GrammarState, stop_ids: set[int]) -> bool:
    import numpy as np

    state.mask.fill()
    allowed = state.mask.allowed()
    return all(int(t) in stop_ids for t in np.flatnonzero(allowed))


def _choose(logits: Any, temperature: float, top_p: float, top_k: int, rng: Any) -> int:
    """Greedy (argmax, the first of equal maxima) at temperature 0, else seeded sampling."""
    import numpy as np

    if temperature <= 0.0:
        return int(np.argmax(logits))
    candidates = np.flatnonzero(np.isfinite(logits))
    values = logits[candidates].astype(np.float64) / temperature
    if top_k and top_k < len(candidates):
        keep = np.argsort(-values, kind="stable")[:top_k]
        candidates, values = candidates[keep], values[keep]
    probs = np.exp(values - values.max())
    probs /= probs.sum()
    if top_p < 1.0:
        order = np.argsort(-probs, kind="stable")
        cumulative = np.cumsum(probs[order])
        keep = order[: int(np.searchsorted(cumulative, top_p)) + 1]
        candidates, probs = candidates[keep], probs[keep] / probs[keep].sum()
    return int(rng.choice(candidates, p=probs))


def _cut_at_stop(text: str, stop: tuple[str, ...]) -> str:
    cut = min((i for i in (text.find(s) for s in stop) if i >= 0), default=len(text))
    return text[:cut]
