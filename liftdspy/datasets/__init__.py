"""Labelled prompt -> IR datasets: the row format, loading and importers."""

from liftdspy.datasets.loader import (
    DatasetError,
    LoadResult,
    RowError,
    load_tasks,
    read_tasks,
    write_tasks,
)
from liftdspy.datasets.row import SPLITS, LabelledTask, Split

__all__ = [
    "SPLITS",
    "DatasetError",
    "LabelledTask",
    "LoadResult",
    "RowError",
    "Split",
    "load_tasks",
    "read_tasks",
    "write_tasks",
]
