"""A liftdspy run as one typed, versioned record: what `liftdspy run`, a study cell and
`liftdspy evaluate` store in MLflow.

`open_run` starts the MLflow run of a record and returns a `RunWriter` that logs each part as it
is done (an interrupted run keeps what finished); `log_run` logs a whole record at once;
`read_run` reads a run back. The record is a typed view of the MLflow layout named in
`liftdspy.tracking.layout` (params, tags, metrics, artifacts), not a layout of its own: runs
logged before it read back, and the MLflow UI shows what it always showed.
"""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel, Field, ValidationError

from liftdspy.experiments.config import ExperimentConfig
from liftdspy.experiments.evaluation import EvaluationReport
from liftdspy.lm.recorder import RecorderMode, RecorderStats
from liftdspy.optimize.candidates import Candidate, PredictorSnapshot
from liftdspy.optimize.presets import OptimizerPreset
from liftdspy.redaction import redact_data, redact_text, redact_url
from liftdspy.stats import PairedComparison
from liftdspy.tracking import layout
from liftdspy.tracking.runs import RunLookupError
from liftdspy.tracking.store import flatten_params, resolve_tracking_uri
from liftdspy.versioning import Version

if TYPE_CHECKING:
    import dspy
    from mlflow.tracking import MlflowClient


logger = logging.getLogger(__name__)

MAX_INSTRUCTION_PARAM_CHARS = 500

# The cost totals, in the order they are logged.
_COST_TOTALS = (
    "lm_calls",
    "lm_cache_hits",
    "lm_cache_misses",
    "lm_input_tokens",
    "lm_output_tokens",
    "lm_truncated",
    "lm_live_seconds",
    "lm_saved_seconds",
)
# RoleCost field -> the metric it is logged as (`<metric>.<role>`).
_ROLE_METRICS = {
    "calls": "lm_calls",
    "cache_hits": "lm_cache_hits",
    "output_tokens": "lm_output_tokens",
}
_WALL = "wall_seconds"
_WALL_TOTAL = "total"


class RunRecordError(RunLookupError):
    """A run that is not a liftdspy run, or lacks what was asked of it; names the run."""


class RoleCost(BaseModel):
    """The cost of one LM of a run (`task`, `reflection`)."""

    calls: float | None = None  # live calls
    cache_hits: float | None = None  # replayed from the recorder
    output_tokens: float | None = None  # live + replayed


class RunCost(BaseModel):
    """What a run's LMs cost (every LM it built, summed and per role) and its wall time.

    A typed view of the cost metrics (`lm_calls`, `lm_calls.task`, `wall_seconds.compile`, ...);
    `metrics()` gives them back under those names. Totals a run did not log stay None.
    """

    lm_calls: float | None = None
    lm_cache_hits: float | None = None
    lm_cache_misses: float | None = None
    lm_input_tokens: float | None = None
    lm_output_tokens: float | None = None
    lm_truncated: float | None = None
    lm_live_seconds: float | None = None
    lm_saved_seconds: float | None = None
    roles: dict[str, RoleCost] = Field(default_factory=dict)
    wall_seconds: dict[str, float] = Field(default_factory=dict)  # per phase, and "total"
    other: dict[str, float] = Field(default_factory=dict)  # cost metrics of another shape

    @classmethod
    def from_stats(cls, stats: Mapping[str, RecorderStats], wall: Mapping[str, float]) -> RunCost:
        """The cost from each LM's recorder counters (by role) and the wall time per phase."""
        totals = dict.fromkeys(_COST_TOTALS, 0.0)
        roles: dict[str, RoleCost] = {}
        for role, s in stats.items():
            output_tokens = float(s.output_tokens)
            totals["lm_calls"] += s.calls
            totals["lm_cache_hits"] += s.hits
            totals["lm_cache_misses"] += s.misses
            totals["lm_input_tokens"] += s.input_tokens
            totals["lm_output_tokens"] += output_tokens
            totals["lm_truncated"] += s.truncated
            totals["lm_live_seconds"] += s.live_seconds
            totals["lm_saved_seconds"] += s.saved_seconds
            roles[role] = RoleCost(
                calls=float(s.calls), cache_hits=float(s.hits), output_tokens=output_tokens
            )
        seconds = dict(wall)
        seconds[_WALL_TOTAL] = sum(wall.values())
        return cls(**totals, roles=roles, wall_seconds=seconds)

    def metrics(self) -> dict[str, float]:
        """The flat metrics, as logged (and as `reports/cost.json` holds them)."""
        out: dict[str, float] = {
            name: value for name in _COST_TOTALS if (value := getattr(self, name)) is not None
        }
        for role, cost in self.roles.items():
            for field, metric in _ROLE_METRICS.items():
                if (value := getattr(cost, field)) is not None:
                    out[f"{metric}.{role}"] = value
        phases = {k: v for k, v in self.wall_seconds.items() if k != _WALL_TOTAL}
        out.update({f"{_WALL}.{phase}": seconds for phase, seconds in phases.items()})
        if _WALL_TOTAL in self.wall_seconds:
            out[f"{_WALL}.{_WALL_TOTAL}"] = self.wall_seconds[_WALL_TOTAL]
        out.update(self.other)
        return out

    @classmethod
    def from_metrics(cls, metrics: Mapping[str, float]) -> RunCost:
        """The cost metrics among a run's metrics (names starting with `layout.COST_PREFIXES`)."""
        data: dict[str, Any] = {}
        roles: dict[str, dict[str, float]] = {}
        wall: dict[str, float] = {}
        other: dict[str, float] = {}
        by_metric = {metric: field for field, metric in _ROLE_METRICS.items()}
        for name, value in metrics.items():
            if not name.startswith(layout.COST_PREFIXES):
                continue
            head, _, tail = name.partition(".")
            if name in _COST_TOTALS:
                data[name] = value
            elif head == _WALL and tail:
                wall[tail] = value
            elif head in by_metric and tail:
                roles.setdefault(tail, {})[by_metric[head]] = value
            else:
                other[name] = value
        return cls(
            **data,
            roles={role: RoleCost(**values) for role, values in roles.items()},
            wall_seconds=wall,
            other=other,
        )


class CandidateSummary(BaseModel):
    """One program the optimizer tried (a child run of the experiment run)."""

    index: int
    score: float | None = None
    full_eval: bool = True  # scored on the full validation set (not a minibatch)
    predictors: list[PredictorSnapshot] = Field(default_factory=list)
    run_id: str = ""  # set when read back

    @classmethod
    def of(cls, candidate: Candidate) -> CandidateSummary:
        return cls(
            index=candidate.index,
            score=candidate.score,
            full_eval=candidate.full_eval,
            predictors=candidate.predictors,
        )


class RunRecord(BaseModel):
    """What a liftdspy run stores. Written with `open_run` / `log_run`, read with `read_run`.

    The logged params are the flattened `config` (and `preset`, prefixed `preset.`) plus
    `params` (data sizes, versions, ...); a run without a preset (a fixed program, an evaluation)
    has no `optimizer.preset` param. Read back, `params` holds the params the config and preset
    do not account for (all of them when the config is missing).
    """

    version: Version = "1"
    run_id: str = ""  # the fields up to `start_time` are MLflow's, set when read back
    run_name: str = ""
    experiment_id: str = ""
    status: str = ""
    start_time: int | None = None  # milliseconds since the epoch
    config: ExperimentConfig | None = None  # `config/resolved.json` (redacted)
    preset: OptimizerPreset | None = None  # `config/preset.json`: the preset with the overrides
    params: dict[str, str] = Field(default_factory=dict)
    tags: dict[str, str] = Field(default_factory=dict)  # liftdspy's (and a study's), not mlflow.*
    reports: dict[str, EvaluationReport] = Field(default_factory=dict)  # by `layout.REPORT_KINDS`
    comparison: PairedComparison | None = None  # optimized against baseline
    cost: RunCost = Field(default_factory=RunCost)
    candidates: list[CandidateSummary] = Field(default_factory=list)
    has_program: bool = False  # `program/program.json` is logged
    problems: list[str] = Field(default_factory=list)  # artifacts that did not read, and why

    @property
    def role(self) -> str:
        return self.tags.get(layout.ROLE_TAG, "")

    @property
    def name(self) -> str:
        return self.run_name or self.run_id

    def describe(self) -> str:
        return f"run {self.run_name!r} ({self.run_id})" if self.run_name else f"run {self.run_id}"

    def bootstrap_seed(self, default: int = 0) -> int:
        """The seed of the run's bootstraps (tag; else the `seed` of older runs)."""
        seed = self.config.seed if self.config is not None else self.params.get("seed")
        for value in (self.tags.get(layout.BOOTSTRAP_SEED_TAG), seed):
            try:
                return int(value)  # type: ignore[arg-type]
            except (TypeError, ValueError):
                continue
        return default

    def _problem(self, artifact: str) -> str:
        found = [p for p in self.problems if p.startswith(artifact)]
        return f" ({found[0]})" if found else ""

    def require_report(self, which: str) -> EvaluationReport:
        report = self.reports.get(which)
        if report is not None:
            return report
        artifact = layout.report_artifact(which)
        problem = self._problem(artifact)
        if problem:
            raise RunRecordError(
                f"{self.describe()}: {artifact} is not an evaluation report{problem}"
            )
        raise RunRecordError(
            f"run {self.run_name!r} ({self.run_id}, status {self.status}) has no {artifact} "
            f"artifact; it may have stopped before the {which} evaluation (try --which baseline) "
            "or not be a liftdspy experiment run"
        )

    def require_config(self) -> ExperimentConfig:
        if self.config is None:
            artifact = layout.RESOLVED_CONFIG_ARTIFACT
            reason = self._problem(artifact) or " (not logged)"
            raise RunRecordError(f"{self.describe()} has no readable {artifact}{reason}")
        return self.config

    def logged_params(self) -> dict[str, str]:
        """Every param the run logs."""
        params = _derived_params(self.config, self.preset)
        params.update(self.params)
        return params


def _derived_params(
    config: ExperimentConfig | None, preset: OptimizerPreset | None
) -> dict[str, str]:
    params: dict[str, str] = {}
    if config is not None:
        params.update(flatten_params(config.model_dump(mode="json")))
        if preset is None:
            params.pop("optimizer.preset", None)
    if preset is not None:
        params.update(flatten_params(preset.model_dump(mode="json"), "preset."))
    return params


class RunWriter:
    """Logs the parts of a record to its MLflow run (the active run) as each is done."""

    def __init__(self, run_id: str, work_dir: Path):
        self.run_id = run_id
        self.work_dir = work_dir
        # The experiment file's own recorder mode (no --recorder/--set), for the export.
        self.file_recorder_mode: RecorderMode | None = None

    def header(self, record: RunRecord, config_path: Path | None = None) -> None:
        """Params, the experiment's YAML file as given, the resolved config and preset."""
        import mlflow

        mlflow.log_params(record.logged_params())
        if config_path is not None:
            raw = self.work_dir / layout.CONFIG_DIR / Path(config_path).name
            raw.parent.mkdir(exist_ok=True)
            text = Path(config_path).read_text(encoding="utf-8")
            raw.write_text(redact_text(text), "utf-8")
            mlflow.log_artifact(str(raw), layout.CONFIG_DIR)
            from liftdspy.export.lm_config import file_recorder_mode

            self.file_recorder_mode = file_recorder_mode(text)
        if record.config is not None:
            config = redact_data(record.config.model_dump(mode="json"))
            mlflow.log_dict(config, layout.RESOLVED_CONFIG_ARTIFACT)
        if record.preset is not None:
            preset = redact_data(record.preset.model_dump(mode="json"))
            mlflow.log_dict(preset, layout.PRESET_ARTIFACT)

    def report(self, report: EvaluationReport, which: str | None = None) -> None:
        """Scores with their interval, components, the results table and the report."""
        import mlflow

        which = which or report.label
        metrics = {
            f"{which}_score": report.score.mean,
            f"{which}_score_ci_low": report.score.low,
            f"{which}_score_ci_high": report.score.high,
            f"{which}_seconds": report.seconds,
            f"{which}_errors": float(sum(1 for r in report.results if r.error)),
            f"{which}_truncated_rate": report.truncated_rate,
        }
        normalised = report.score_normalised
        if report.floor is not None:
            metrics[layout.FLOOR_METRIC] = report.floor.floor
        if normalised is not None:
            metrics[f"{which}_score_normalised"] = normalised.mean
            metrics[f"{which}_score_normalised_ci_low"] = normalised.low
            metrics[f"{which}_score_normalised_ci_high"] = normalised.high
        for name, value in report.components.items():
            metrics[f"{which}.{name}"] = value
        mlflow.log_metrics(metrics)
        mlflow.log_table(data=report.table(), artifact_file=layout.results_artifact(which))
        mlflow.log_dict(report.model_dump(mode="json"), layout.report_artifact(which))

    def cost(self, cost: RunCost) -> None:
        """The cost so far, as metrics (logged again as the run goes on)."""
        import mlflow

        mlflow.log_metrics(cost.metrics())

    def cost_artifact(self, cost: RunCost) -> None:
        """The final cost as `reports/cost.json`."""
        import mlflow

        mlflow.log_dict(cost.metrics(), layout.COST_ARTIFACT)

    def program(self, program: dspy.Module) -> None:
        """The program's saved state as `program/program.json`."""
        import mlflow

        path = self.work_dir / Path(layout.PROGRAM_ARTIFACT).name
        program.save(str(path))
        mlflow.log_artifact(str(path), layout.PROGRAM_DIR)

    def candidates(
        self,
        candidates: Sequence[CandidateSummary],
        *,
        preset_name: str,
        programs: Mapping[int, dspy.Module] | None = None,
    ) -> int:
        """One child run per candidate (role `candidate`), with its program when given."""
        import mlflow

        for candidate in candidates:
            with mlflow.start_run(run_name=f"candidate-{candidate.index:02d}", nested=True):
                params = {
                    "candidate.index": str(candidate.index),
                    "candidate.full_eval": str(candidate.full_eval),
                    "optimizer.preset": preset_name,
                }
                for predictor in candidate.predictors:
                    params[f"{predictor.name}.demos"] = str(predictor.demos)
                    params[f"{predictor.name}.instructions"] = predictor.instructions[
                        :MAX_INSTRUCTION_PARAM_CHARS
                    ]
                mlflow.log_params(params)
                if candidate.score is not None:
                    mlflow.log_metric(layout.CANDIDATE_SCORE_METRIC, candidate.score)
                mlflow.set_tag(layout.ROLE_TAG, layout.CANDIDATE_ROLE)
                program = (programs or {}).get(candidate.index)
                if program is not None:
                    path = self.work_dir / f"candidate-{candidate.index:02d}.json"
                    program.save(str(path))
                    mlflow.log_artifact(str(path), layout.PROGRAM_DIR)
        mlflow.log_metric(layout.CANDIDATES_METRIC, float(len(candidates)))
        return len(candidates)

    def comparison(self, comparison: PairedComparison) -> None:
        """Optimized against baseline: the gain with its interval, p-value, wins/losses/ties."""
        import mlflow

        mlflow.log_metrics(
            {
                "gain": comparison.difference.mean,
                "gain_ci_low": comparison.difference.low,
                "gain_ci_high": comparison.difference.high,
                "gain_p_value": comparison.p_value,
                "wins": float(comparison.wins),
                "losses": float(comparison.losses),
                "ties": float(comparison.ties),
            }
        )
        mlflow.log_dict(comparison.model_dump(mode="json"), layout.COMPARISON_ARTIFACT)

    def export(self, program: dspy.Module, config: ExperimentConfig) -> None:
        """The production export (`liftdspy.export`) under `export/`: the program as `config`
        built it (name, predictor, options) with its LM (its recorder mode the experiment
        file's own: `liftdspy.export.lm_config`)."""
        import mlflow

        from liftdspy.export import write_export

        export_dir = self.work_dir / layout.EXPORT_DIR
        write_export(
            program,
            export_dir,
            lm_config=config.lm,
            program_name=config.program.name,
            predictor=config.program.predictor,
            program_options=config.program.options(),
            recorder_mode=self.file_recorder_mode,
        )
        mlflow.log_artifacts(str(export_dir), layout.EXPORT_DIR)

    def artifact(self, data: Any, path: str) -> None:
        """Another JSON artifact (a study's `study/demos.json`, `reports/runtime.json`)."""
        import mlflow

        mlflow.log_dict(data, path)

    def metrics(self, metrics: Mapping[str, float]) -> None:
        import mlflow

        mlflow.log_metrics(dict(metrics))


@contextmanager
def open_run(
    record: RunRecord,
    *,
    run_name: str,
    parent_run_id: str | None = None,
    config_path: Path | None = None,
    on_started: Callable[[str], None] | None = None,
) -> Iterator[RunWriter]:
    """Start the record's MLflow run (tagged with `record.tags`, in the current tracking store
    and experiment: `configure_tracking` first), log its header and yield its writer. The run
    ends FAILED when the block raises, with what was logged kept."""
    import mlflow

    with (
        mlflow.start_run(
            run_name=run_name, parent_run_id=parent_run_id, tags=record.tags or None
        ) as run,
        tempfile.TemporaryDirectory() as tmp,
    ):
        if on_started is not None:
            on_started(run.info.run_id)
        writer = RunWriter(run.info.run_id, Path(tmp))
        writer.header(record, config_path)
        yield writer


def log_run(
    record: RunRecord,
    *,
    run_name: str | None = None,
    parent_run_id: str | None = None,
    config_path: Path | None = None,
    program: dspy.Module | None = None,
) -> str:
    """Log a whole record as one run (in the current tracking store and experiment); its id."""
    name = run_name or record.run_name or (record.config.name if record.config else "run")
    with open_run(
        record, run_name=name, parent_run_id=parent_run_id, config_path=config_path
    ) as writer:
        for which, report in record.reports.items():
            writer.report(report, which)
        if program is not None:
            writer.program(program)
        if record.candidates:
            preset = record.config.optimizer.preset if record.config else ""
            writer.candidates(record.candidates, preset_name=preset)
        if record.comparison is not None:
            writer.comparison(record.comparison)
        writer.cost(record.cost)
        writer.cost_artifact(record.cost)
        return writer.run_id


M = TypeVar("M", bound=BaseModel)


class _Artifacts:
    """The artifacts of one run, listed once per folder and downloaded on demand."""

    def __init__(self, client: MlflowClient, run_id: str, work_dir: Path):
        self.client, self.run_id, self.work_dir = client, run_id, work_dir
        self._listed: dict[str, set[str]] = {}

    def exists(self, artifact: str) -> bool:
        folder = artifact.rpartition("/")[0]
        if folder not in self._listed:
            from mlflow.exceptions import MlflowException

            try:
                items = self.client.list_artifacts(self.run_id, folder)
            except (MlflowException, OSError) as exc:
                logger.debug("%s: cannot list %s: %s", self.run_id, folder, exc)
                items = []
            self._listed[folder] = {item.path for item in items}
        return artifact in self._listed[folder]

    def download(self, artifact: str, dst: Path | None = None) -> Path | None:
        if not self.exists(artifact):
            return None
        return Path(
            self.client.download_artifacts(self.run_id, artifact, str(dst or self.work_dir))
        )

    def model(self, artifact: str, model: type[M], problems: list[str]) -> M | None:
        path = self.download(artifact)
        if path is None:
            return None
        try:
            return model.model_validate(json.loads(path.read_text(encoding="utf-8")))
        except (ValidationError, ValueError) as exc:
            problems.append(f"{artifact}: {exc}")
            logger.warning(
                "run %s: %s is not a valid %s: %s", self.run_id, artifact, model.__name__, exc
            )
            return None


def _client(tracking_uri: str | None, client: MlflowClient | None) -> MlflowClient:
    if client is not None:
        return client
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=resolve_tracking_uri(tracking_uri))


def _candidates(client: MlflowClient, experiment_id: str, run_id: str) -> list[CandidateSummary]:
    children = client.search_runs(
        [experiment_id],
        f"tags.`{layout.PARENT_RUN_TAG}` = '{run_id}' "
        f"and tags.`{layout.ROLE_TAG}` = '{layout.CANDIDATE_ROLE}'",
        max_results=5000,
    )
    found: list[CandidateSummary] = []
    for child in children:
        params = child.data.params
        predictors: dict[str, dict[str, Any]] = {}
        for key, value in params.items():
            name, _, field = key.rpartition(".")
            if field in ("demos", "instructions") and name and not name.startswith("candidate"):
                predictors.setdefault(name, {})[field] = value
        try:
            index = int(params.get("candidate.index", ""))
        except ValueError:
            continue
        found.append(
            CandidateSummary(
                index=index,
                score=child.data.metrics.get(layout.CANDIDATE_SCORE_METRIC),
                full_eval=params.get("candidate.full_eval", "True") == "True",
                predictors=[
                    PredictorSnapshot(
                        name=name,
                        instructions=fields.get("instructions", ""),
                        demos=int(fields.get("demos", 0)),
                    )
                    for name, fields in predictors.items()
                ],
                run_id=child.info.run_id,
            )
        )
    return sorted(found, key=lambda c: c.index)


def read_run(
    run_id: str, tracking_uri: str | None = None, *, client: MlflowClient | None = None
) -> RunRecord:
    """The record of the liftdspy run `run_id` (runs logged before the record read the same).

    Raises `RunRecordError` naming the run when it is not in the store or is not a liftdspy run
    (no `liftdspy.role` tag). Parts a run lacks stay empty (a run interrupted after its baseline
    has no optimized report); an artifact that does not validate is left out and named in
    `problems`, and `require_report` / `require_config` raise with it.
    """
    from mlflow.exceptions import MlflowException

    client = _client(tracking_uri, client)
    where = redact_url(str(client.tracking_uri))
    try:
        run = client.get_run(run_id)
    except MlflowException as exc:
        raise RunRecordError(f"run {run_id} is not in {where}: {exc.message}") from None
    info, data = run.info, run.data
    label = f"run {info.run_name!r} ({run_id})" if info.run_name else f"run {run_id}"
    if layout.ROLE_TAG not in data.tags:
        raise RunRecordError(
            f"{label} in {where} is not a liftdspy run: it has no {layout.ROLE_TAG} tag "
            f"(liftdspy runs carry it with {layout.RESOLVED_CONFIG_ARTIFACT}, "
            f"{layout.report_artifact('optimized')}, ...)"
        )
    problems: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        artifacts = _Artifacts(client, run_id, Path(tmp))
        config = artifacts.model(layout.RESOLVED_CONFIG_ARTIFACT, ExperimentConfig, problems)
        preset = artifacts.model(layout.PRESET_ARTIFACT, OptimizerPreset, problems)
        reports = {
            which: report
            for which in layout.REPORT_KINDS
            if (
                report := artifacts.model(layout.report_artifact(which), EvaluationReport, problems)
            )
            is not None
        }
        comparison = artifacts.model(layout.COMPARISON_ARTIFACT, PairedComparison, problems)
        has_program = artifacts.exists(layout.PROGRAM_ARTIFACT)
    derived = _derived_params(config, preset)
    return RunRecord(
        run_id=run_id,
        run_name=info.run_name or "",
        experiment_id=info.experiment_id,
        status=info.status,
        start_time=info.start_time,
        config=config,
        preset=preset,
        params={k: v for k, v in data.params.items() if k not in derived},
        tags={k: v for k, v in data.tags.items() if not k.startswith(layout.MLFLOW_TAG_PREFIX)},
        reports=reports,
        comparison=comparison,
        cost=RunCost.from_metrics(data.metrics),
        candidates=_candidates(client, info.experiment_id, run_id),
        has_program=has_program,
        problems=problems,
    )


def download_program(
    record: RunRecord,
    dst: Path,
    tracking_uri: str | None = None,
    *,
    client: MlflowClient | None = None,
) -> Path:
    """Download the run's `program/program.json` into `dst`; fails naming the run without one."""
    if not record.has_program:
        raise RunRecordError(
            f"run {record.run_id} has no {layout.PROGRAM_ARTIFACT} artifact (did the compile "
            "phase finish?)"
        )
    client = _client(tracking_uri, client)
    return Path(client.download_artifacts(record.run_id, layout.PROGRAM_ARTIFACT, str(dst)))
