"""`dataset.imports`: benchmark files (real MBPP rows from ../shared/data/mbpp) imported when a
dataset loads, cached by content, never committed; errors name the file."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from liftdspy.datasets import imports as dataset_imports
from liftdspy.datasets.imports import DatasetImport, DatasetImportError
from liftdspy.experiments.config import DatasetConfig

ROOT = Path(__file__).resolve().parents[1]
MBPP_DIR = Path(os.environ.get("LIFTDSPY_MBPP_DIR", ROOT.parent / "shared" / "data" / "mbpp"))
VALIDATION = MBPP_DIR / "validation.jsonl"


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    where = tmp_path / "import-cache"
    monkeypatch.setenv(dataset_imports.CACHE_ENV, str(where))
    return where


def _first_rows(tmp_path: Path, n: int) -> Path:
    if not VALIDATION.is_file():
        pytest.skip(f"MBPP validation file not found in {MBPP_DIR} (development data)")
    lines = VALIDATION.read_text(encoding="utf-8").splitlines()[:n]
    path = tmp_path / "mbpp-sample.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_an_import_adds_its_tasks_after_the_paths_in_the_split_it_names(tmp_path, cache):
    source = _first_rows(tmp_path, 3)
    config = DatasetConfig(
        paths=[ROOT / "datasets" / "core"],
        imports=[{"importer": "mbpp", "path": source, "split": "test"}],
    )
    tasks = config.load_tasks()
    core = [t for t in tasks if not t.id.startswith("mbpp")]
    imported = tasks[len(core) :]
    assert len(core) > 0 and all(not t.id.startswith("mbpp") for t in core)
    ids = [json.loads(line)["task_id"] for line in source.read_text().splitlines()]
    assert [t.id for t in imported] == [f"mbpp/{i}" for i in ids]
    assert {t.split for t in imported} == {"test"}  # MBPP's own range would say dev
    assert all(t.ir.signature.name and t.tests for t in imported)
    assert len(list(cache.glob("mbpp-*.jsonl"))) == 1


def test_the_second_load_reads_the_cache_and_a_changed_file_imports_again(
    tmp_path, cache, monkeypatch
):
    source = _first_rows(tmp_path, 2)
    spec = DatasetImport(importer="mbpp", path=source, split="test")
    first = dataset_imports.imported_tasks(spec)

    def no_import(*args, **kwargs):
        raise AssertionError("imported again although the cache holds this import")

    monkeypatch.setattr(dataset_imports, "_run_import", no_import)
    assert dataset_imports.imported_tasks(spec) == first
    source.write_text(source.read_text().splitlines()[0] + "\n", encoding="utf-8")
    with pytest.raises(AssertionError, match="imported again"):
        dataset_imports.imported_tasks(spec)


def test_a_missing_file_is_a_clear_error_naming_it(tmp_path, cache):
    missing = tmp_path / "nowhere" / "validation.jsonl"
    config = DatasetConfig(
        paths=[ROOT / "datasets" / "core"], imports=[{"importer": "mbpp", "path": missing}]
    )
    with pytest.raises(DatasetImportError, match=r"nowhere/validation\.jsonl: no such file"):
        config.load_tasks()
    with pytest.raises(DatasetImportError, match="`path` is required"):
        dataset_imports.imported_tasks(DatasetImport(importer="mbpp"))


def test_an_unknown_key_or_importer_is_refused_by_the_config():
    with pytest.raises(ValueError, match=r"imports\.0\.importer"):
        DatasetConfig(paths=["datasets/core"], imports=[{"importer": "apps", "path": "x"}])
    with pytest.raises(ValueError, match=r"imports\.0\.spilt"):
        DatasetConfig(paths=["datasets/core"], imports=[{"importer": "mbpp", "spilt": "test"}])


def test_the_same_task_twice_is_refused(tmp_path, cache):
    source = _first_rows(tmp_path, 1)
    twice = [{"importer": "mbpp", "path": source}, {"importer": "mbpp", "path": source}]
    config = DatasetConfig(paths=[ROOT / "datasets" / "core"], imports=twice)
    with pytest.raises(DatasetImportError, match="task ids appear more than once: mbpp/"):
        config.load_tasks()


def test_absolute_resolves_import_paths_under_the_root(tmp_path):
    config = DatasetConfig(
        paths=["datasets/core"], imports=[{"importer": "mbpp", "path": "../shared/x.jsonl"}]
    )
    out = config.absolute(tmp_path / "checkout")
    assert out.paths == [(tmp_path / "checkout" / "datasets" / "core").resolve()]
    assert out.imports[0].path == (tmp_path / "shared" / "x.jsonl").resolve()
    assert config.imports[0].path == Path("../shared/x.jsonl")  # the original is untouched
