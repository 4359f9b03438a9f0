"""Export parity (stanfordnlp/dspy#8042): score a program in DSPy and through its exported prompt
pack with `liftdspy.runtime` (no DSPy) on the same examples, with the same recorded LM.

`EngineEndpoint` stands in for the runtime's HTTP `ChatEndpoint`: it turns the Chat Completions
body the runtime builds into the `dspy.lm15.Request` an engine takes and sends it through the same
`RecordingEngine` as DSPy's calls, so the embedded model (which has no HTTP server) can be the
target and the calls are recorded and replayed like every other. The runtime still renders the
prompts and parses the answers itself. `RequestLog` remembers the canonical request of every
call, to count how many runtime requests were byte-identical to DSPy's.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from typing import Any

import dspy
from dspy.lm15 import Config, Message, Request, Response
from pydantic import BaseModel, Field

from liftdspy.experiments.evaluation import FATAL_LM_ERRORS, EvaluationReport, evaluate_program
from liftdspy.lm.config import LMConfig, build_engine, build_lm, recorder_of
from liftdspy.lm.recorder import IdentifiedEngine
from liftdspy.lm.store import canonical_json, request_json
from liftdspy.metrics import BreakdownMetric
from liftdspy.programs.adapters import build_adapter
from liftdspy.tracking.layout import EXPORT_DIR
from liftdspy.versioning import Version

logger = logging.getLogger(__name__)


class RequestLog:
    """Between `dspy.LM` and the recorder: digests of every request, then passes it on."""

    def __init__(self, inner: Any):
        self.inner = inner
        self.digests: list[str] = []
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def __deepcopy__(self, memo: dict[int, Any]) -> RequestLog:
        return self

    def complete(self, request: Request) -> Response:
        digest = hashlib.sha256(canonical_json(request_json(request)).encode()).hexdigest()
        with self._lock:
            self.digests.append(digest)
        return self.inner.complete(request)


def logged_lm(config: LMConfig, engine: IdentifiedEngine) -> tuple[dspy.LM, RequestLog]:
    """A recorded `dspy.LM` like `build_lm`'s, with a `RequestLog` in front of its recorder."""
    recorded = build_lm(config, engine=engine)
    log = RequestLog(recorder_of(recorded))
    lm = dspy.LM(
        recorded.model,
        engine=log,
        cache=False,
        temperature=config.temperature,
        max_tokens=config.max_tokens,
        callbacks=list(recorded.callbacks),
        num_retries=0,
    )
    return lm, log


def chat_request(model: str, body: dict[str, Any]) -> Request:
    """The engine request for a Chat Completions body (messages, sampling, response_format)."""
    system: str | None = None
    messages: list[Message] = []
    for message in body["messages"]:
        role, content = message["role"], message["content"]
        if role == "system":
            system = content if system is None else f"{system}\n\n{content}"
        elif role == "user":
            messages.append(Message.user(content))
        else:
            messages.append(Message.assistant(content))
    response_format = body.get("response_format")
    if response_format and response_format.get("type") == "json_schema":
        response_format = {"type": "json_schema", **response_format["json_schema"]}
    config = Config(
        max_tokens=body.get("max_tokens"),
        temperature=body.get("temperature"),
        response_format=response_format,
        # DSPy's ingest of LM keywords passes `metadata` (the JSON layout) verbatim.
        extensions={"metadata": body["metadata"]} if body.get("metadata") else None,
    )
    return Request(model=model, messages=tuple(messages), system=system, config=config)


class EngineEndpoint:
    """What `PromptRuntime` needs from an endpoint (`message_text(body)`), over an engine."""

    def __init__(self, engine: Any, model: str):
        self.engine = engine
        self.model = model

    def message_text(self, body: dict[str, Any]) -> str:
        from liftdspy.lm.recorder import _SCOPE, _CallScope

        # The recorder numbers repeated identical requests inside one DSPy call scope; a runtime
        # call is one scope of its own, like a DSPy call.
        token = _SCOPE.set(_CallScope(call_id="runtime", rollout_id=None, parent=None))
        try:
            response = self.engine.complete(chat_request(self.model, body))
        finally:
            _SCOPE.reset(token)
        if response.finish_reason == "length":
            # As the HTTP endpoint does, and as DSPy's evaluation scores it: a cut-off answer is
            # not parsed (a closed fragment would score as an answer in the runtime only).
            from liftdspy.runtime.endpoint import TruncatedAnswerError

            tokens = getattr(response.usage, "output_tokens", None)
            raise TruncatedAnswerError(
                f"{self.model}: answer truncated at {tokens} tokens (finish_reason length, "
                f"max_tokens={body.get('max_tokens')}); a cut-off answer is not parsed",
                output_tokens=tokens,
            )
        return response.text or ""


class ParityScores(BaseModel):
    version: Version = "1"
    eval_ids: list[str]
    dspy_scores: list[float]
    runtime_scores: list[float]
    identical_requests: int
    requests: int
    errors: list[str] = Field(default_factory=list)
    dspy_report: EvaluationReport | None = Field(None, exclude=True)


def runtime_prediction(runtime, program_name: str, example: dspy.Example) -> dspy.Prediction:
    """Run one example through the runtime and shape the answer like the DSPy program's."""
    from liftdspy.ir import IntermediateRepresentation

    if program_name == "nl_to_ir":
        predictor = runtime._find({"prompt"}, "ir")
        outputs = runtime.run(predictor.name, prompt=example.prompt)
        return dspy.Prediction(ir=IntermediateRepresentation.model_validate(outputs["ir"]))
    if program_name == "ir_to_code":
        from liftdspy.code_check import extract_code
        from liftdspy.ir import render_stub

        predictor = runtime._find({"function_stub"}, "code")
        outputs = runtime.run(predictor.name, function_stub=render_stub(example.ir))
        return dspy.Prediction(code=extract_code(outputs["code"]))
    result = runtime.run_pipeline(example.prompt)
    from liftdspy.sandbox import run_tests

    execution = run_tests(result.code, list(example.tests), setup=example.test_setup)
    return dspy.Prediction(
        ir=IntermediateRepresentation.model_validate(result.ir),
        code=result.code,
        execution=execution,
    )


def score_parity(
    program: dspy.Module,
    export_dir,
    program_name: str,
    examples: list[dspy.Example],
    metric: BreakdownMetric,
    lm_config: LMConfig,
    engine: IdentifiedEngine | None = None,
) -> ParityScores:
    """Score `program` in DSPy and its export through the runtime, one engine for both."""
    from liftdspy.runtime import PromptRuntime
    from liftdspy.runtime.pack import load_pack

    engine = engine if engine is not None else build_engine(lm_config)
    lm, log = logged_lm(lm_config, engine)
    with dspy.context(lm=lm, adapter=build_adapter(load_pack(export_dir).adapter)):
        report = evaluate_program(program, examples, metric, label="dspy")
    dspy_digests = set(log.digests)
    log.digests.clear()
    runtime = PromptRuntime(load_pack(export_dir), EngineEndpoint(log, lm.model))  # type: ignore[arg-type]
    scores, errors = [], []
    for example in examples:
        try:
            prediction = runtime_prediction(runtime, program_name, example)
        except FATAL_LM_ERRORS:
            raise
        except Exception as exc:  # an unusable answer scores 0, as in DSPy's evaluation
            errors.append(f"{example.id}: {type(exc).__name__}: {exc}"[:300])
            scores.append(0.0)
            continue
        scores.append(metric.breakdown(example, prediction).total)
    identical = sum(1 for d in log.digests if d in dspy_digests)
    return ParityScores(
        eval_ids=[str(e.id) for e in examples],
        dspy_scores=report.scores(),
        runtime_scores=scores,
        identical_requests=identical,
        requests=len(log.digests),
        errors=errors,
        dspy_report=report,
    )


def run_study_parity(prepared, engine_factory=None):
    """Parity for the study's best arm (highest mean over its cells), on its best cell's
    export; logged to the study run as `study/parity.json`."""
    import tempfile
    from pathlib import Path

    from mlflow.tracking import MlflowClient

    from liftdspy.experiments.examples import to_examples
    from liftdspy.experiments.metric_factory import make_metric
    from liftdspy.export import load_exported_program
    from liftdspy.studies.cells import absolute_lm
    from liftdspy.studies.report import PARITY_ARTIFACT
    from liftdspy.studies.results import ParityResult
    from liftdspy.studies.tracking import find_study_run, finished_cells

    config = prepared.config
    client = MlflowClient(tracking_uri=prepared.tracking_uri)
    parent = find_study_run(client, config.name, config.identity_hash())
    results = list(finished_cells(client, parent).values()) if parent else []
    if not results:
        return None
    by_arm: dict[str, list] = {}
    for result in results:
        if config.arm(result.cell.arm).fixed == "constant":
            continue  # the floor's constant answer has no program to export
        by_arm.setdefault(result.cell.arm, []).append(result)
    if not by_arm:
        return None
    best_arm = max(by_arm, key=lambda a: sum(r.mean for r in by_arm[a]) / len(by_arm[a]))
    cell = max(by_arm[best_arm], key=lambda r: r.mean)
    lm_config = absolute_lm(config.named_lms()[cell.cell.lm], prepared.root)
    engine = (engine_factory or build_engine)(lm_config)
    examples = to_examples(prepared.splits.eval, config.program.name)
    with tempfile.TemporaryDirectory() as tmp:
        export_dir = Path(client.download_artifacts(cell.run_id, EXPORT_DIR, tmp))
        program = load_exported_program(export_dir)
        scores = score_parity(
            program,
            export_dir,
            config.program.name,
            examples,
            make_metric(config.metric),
            lm_config,
            engine,
        )
    parity = ParityResult(
        arm=best_arm, cell=cell.cell.id, run_id=cell.run_id or "", **scores.model_dump()
    )
    client.log_text(parent.info.run_id, parity.model_dump_json(indent=2), PARITY_ARTIFACT)
    return parity
