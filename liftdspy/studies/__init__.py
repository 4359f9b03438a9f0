"""Studies: arms x seeds (x LMs) of ordinary experiments under one MLflow run, with a plan and
budget, a leakage guard, honest statistics and a report (see `studies/*.yaml`)."""

from liftdspy.studies.config import ArmConfig, StudyConfig, StudyConfigError, load_study
from liftdspy.studies.leakage import LeakageError
from liftdspy.studies.results import CellResult

__all__ = [
    "ArmConfig",
    "CellResult",
    "LeakageError",
    "StudyConfig",
    "StudyConfigError",
    "load_study",
]
