"""MLflow tracking: where runs go, and how configs become params."""

from liftdspy.tracking.store import (
    DEFAULT_ARTIFACTS_DIR,
    DEFAULT_DB,
    artifacts_dir,
    configure_tracking,
    flatten_params,
    resolve_tracking_uri,
    sqlite_path,
)

__all__ = [
    "DEFAULT_ARTIFACTS_DIR",
    "DEFAULT_DB",
    "artifacts_dir",
    "configure_tracking",
    "flatten_params",
    "resolve_tracking_uri",
    "sqlite_path",
]
