"""The cells of a study: one per (arm, seed, LM); seed-independent arms get one cell per LM.

A cell becomes an ordinary `ExperimentConfig` (optimizer arms) or a fixed-program evaluation.
Paths (dataset files, preset file, recorder store, SQLite tracking store) are made absolute, so
a cell runs the same in a worker process or on a Ray node whose working directory differs.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from pydantic import BaseModel

from liftdspy.experiments.config import ExperimentConfig
from liftdspy.lm.config import LMConfig
from liftdspy.optimize.presets import PRESETS_DIR
from liftdspy.studies.config import (
    ArmConfig,
    StudyConfig,
    arm_hash_material,
    dataset_hash_material,
    lm_hash_material,
    program_hash_material,
)
from liftdspy.tracking import resolve_tracking_uri, sqlite_path


class Cell(BaseModel):
    """Coordinates of one cell. `seed` is None for a seed-independent arm."""

    arm: str
    seed: int | None
    lm: str

    @property
    def id(self) -> str:
        seed = "any" if self.seed is None else str(self.seed)
        return f"{self.arm}/seed={seed}/lm={self.lm}"


def expand_cells(study: StudyConfig) -> list[Cell]:
    """Fixed arms first (constant, zero-shot, random-demos): an optimizer cell's baseline evaluation
    then replays the zero-shot cell's calls. Optimizer arms follow seed by seed (every arm's
    first seed before any arm's second), so a study stopped early has every arm at least once."""
    cells: list[Cell] = []
    fixed = sorted(
        (a for a in study.arms if a.fixed is not None),
        key=lambda a: {"constant": -1, "zero-shot": 0, "random-demos": 1}[
            a.fixed or "random-demos"
        ],
    )
    optimizers = [a for a in study.arms if a.fixed is None]
    for lm_name in study.named_lms():
        for arm in fixed:
            seeds: list[int | None] = list(study.seeds) if arm.seeded else [None]
            cells.extend(Cell(arm=arm.name, seed=seed, lm=lm_name) for seed in seeds)
        for seed in study.seeds:
            cells.extend(Cell(arm=arm.name, seed=seed, lm=lm_name) for arm in optimizers)
    return cells


def absolute_lm(lm: LMConfig, root: Path) -> LMConfig:
    lm = lm.model_copy(deep=True)
    if lm.model_path is not None and not lm.model_path.is_absolute():
        lm.model_path = (root / lm.model_path).resolve()
    lm.recorder.path = lm.recorder.store_path().resolve()
    return lm


def absolute_tracking_uri(uri: str | None) -> str:
    resolved = resolve_tracking_uri(uri)
    path = sqlite_path(resolved)
    if path is not None and not path.is_absolute():
        resolved = f"sqlite:///{path.resolve()}"
    return resolved


def experiment_config(study: StudyConfig, cell: Cell, root: Path) -> ExperimentConfig:
    """The ordinary experiment a cell is: the study's data, program, metric and LM, the arm's
    optimizer and overrides, and the cell's seed (0 for a seed-independent arm)."""
    arm = study.arm(cell.arm)
    lm = absolute_lm(study.named_lms()[cell.lm], root)
    dataset = study.dataset.absolute(root)
    tracking = study.tracking.model_copy()
    tracking.uri = absolute_tracking_uri(study.tracking.uri)
    data = {
        "name": f"{study.name}.{cell.arm}",
        "description": f"study {study.name}, cell {cell.id}",
        "dataset": dataset.model_dump(mode="json"),
        "program": study.arm_program(arm).model_dump(mode="json"),
        "lm": lm.model_dump(mode="json"),
        "reflection_lm": (
            absolute_lm(study.reflection_lm, root).model_dump(mode="json")
            if study.reflection_lm
            else None
        ),
        "optimizer": {
            "preset": preset_path(arm, root),
            "init": arm.init,
            "compile": arm.compile,
        },
        "metric": study.metric.model_dump(mode="json"),
        "seed": cell.seed if cell.seed is not None else 0,
        "num_threads": study.num_threads,
        "tracking": tracking.model_dump(mode="json"),
    }
    return ExperimentConfig.model_validate(data)


def preset_path(arm: ArmConfig, root: Path) -> str:
    """An optimizer arm's preset as an absolute file path; a fixed arm's placeholder preset
    (fixed arms never build an optimizer, the field only has to be valid)."""
    name = arm.preset or "labeled-fewshot"
    path = Path(name)
    if path.suffix not in {".yaml", ".yml"}:
        path = PRESETS_DIR / f"{name}.yaml"
    return str(path if path.is_absolute() else (root / path).resolve())


def cell_hash(study: StudyConfig, cell: Cell, root: Path) -> str:
    """What decides one cell's result: its experiment config minus where things are stored. A
    finished cell with the same hash is skipped on a re-run."""
    config = experiment_config(study, cell, root).model_dump(mode="json")
    config.pop("version", None)  # the config format's version decides no result
    lm_hash_material(config["lm"])
    if config.get("reflection_lm"):
        lm_hash_material(config["reflection_lm"])
    config.pop("tracking", None)
    config.pop("description", None)
    arm = study.arm(cell.arm)
    program_hash_material(config["program"])
    config["arm"] = arm_hash_material(arm.model_dump(mode="json"))
    preset_file = Path(config["optimizer"]["preset"])
    config["optimizer"]["preset"] = preset_file.name
    if arm.preset is not None and preset_file.is_file():
        config["preset_sha256"] = hashlib.sha256(preset_file.read_bytes()).hexdigest()
    config["dataset"]["paths"] = [Path(p).name for p in config["dataset"]["paths"]]
    dataset_hash_material(config["dataset"])
    text = json.dumps(config, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
