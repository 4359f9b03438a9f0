"""Sampling seeds: a run's seed reaches every sampled LM call, and each sampled call gets its own.

A run (or study cell) seed is put on its LMs as `seed` (`set_sampling_seed`), which DSPy 3.4 maps
to `Request.config.seed`, so it enters the recording key and reaches the engine (the embedded
engine seeds that request's sampling with it). Two rules make that seed mean what it says:

* **Greedy calls are seed-free.** At `temperature == 0` the answer cannot depend on the seed, so
  `canonical_request` drops it: a zero-shot evaluation is one recording for every seed, and
  recordings made before seeds were passed still replay.
* **Each sampled candidate draws its own seed.** DSPy asks a custom engine `n` times with the same
  request for `n=` (COPRO's `n=breadth`), and strips `rollout_id` (MIPROv2's proposer, SIMBA and
  BootstrapFewShot vary it to get fresh samples) before the engine sees the request. With one seed
  those calls would all sample the same text. `engine_request` gives the engine a seed derived
  from (run seed, rollout id, candidate index) instead; the recording key keeps the request as
  DSPy made it (with its rollout id and candidate), so replay is unaffected.
"""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Any

from dspy.lm15 import Request

# A derived seed fits in the 32-bit range every engine (llama.cpp, OpenAI-compatible) accepts.
SEED_RANGE = 2**31 - 1


def set_sampling_seed(lm: Any, seed: int | None) -> Any:
    """Put `seed` on a `dspy.LM`'s default kwargs (its requests' `config.seed`); returns `lm`.

    DSPy copies an LM's kwargs into every copy (`lm.copy(rollout_id=..., temperature=1.0)`), so
    the copies optimizers make for sampling keep the seed."""
    if lm is not None and seed is not None:
        lm.kwargs["seed"] = int(seed)
    return lm


def sampled(request: Request) -> bool:
    """Whether the request samples (temperature unset counts: the engine's default may sample)."""
    temperature = request.config.temperature
    return temperature is None or temperature > 0


def canonical_request(request: Request) -> Request:
    """The request without a seed when it decodes greedily (the seed cannot change its answer)."""
    if request.config.seed is None or sampled(request):
        return request
    return dataclasses.replace(request, config=dataclasses.replace(request.config, seed=None))


def candidate_seed(seed: int | None, rollout_id: Any, candidate: int) -> int:
    """A deterministic seed for one sampled candidate of one rollout of a run seeded `seed`."""
    material = f"{seed!r}|{rollout_id!r}|{candidate}".encode()
    return int.from_bytes(hashlib.sha256(material).digest()[:8], "big") % SEED_RANGE


def engine_request(request: Request, rollout_id: Any, candidate: int) -> Request:
    """What the engine is asked: the request itself, or for a sampled call that is a later
    candidate or carries a rollout id, the same request with that candidate's own seed."""
    if not sampled(request) or (rollout_id is None and candidate == 0):
        return request
    seed = candidate_seed(request.config.seed, rollout_id, candidate)
    return dataclasses.replace(request, config=dataclasses.replace(request.config, seed=seed))
