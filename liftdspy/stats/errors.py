"""Errors of the study statistics: bad input, named precisely."""

from __future__ import annotations

from liftdspy.errors import LiftdspyError


class StatsInputError(LiftdspyError, ValueError):
    """Input a statistic cannot use (bad shape, level, p-value, duplicate run...)."""


class ScoreTableError(StatsInputError):
    """The scores do not form complete, unambiguous seeds × examples matrices."""
