"""Every optimizer a preset may name has exactly one builder (no silent fall-through)."""

from __future__ import annotations

import typing

from liftdspy.optimize.builder import BUILDERS
from liftdspy.optimize.presets import OptimizerName


def test_every_optimizer_name_has_a_builder():
    assert set(typing.get_args(OptimizerName)) == set(BUILDERS)
