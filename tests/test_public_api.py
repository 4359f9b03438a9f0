"""The flat public surface resolves every name lazily; `import liftdspy(.runtime)` stays light."""

from __future__ import annotations

import subprocess
import sys

import pytest

import liftdspy


@pytest.mark.parametrize("name", sorted(liftdspy._LAZY))
def test_every_public_name_resolves_to_its_defining_object(name):
    value = getattr(liftdspy, name)
    assert getattr(value, "__name__", name) == name
    assert name in dir(liftdspy)


def test_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no_such_thing"):
        liftdspy.no_such_thing  # noqa: B018


@pytest.mark.parametrize("module", ["liftdspy", "liftdspy.runtime"])
def test_import_does_not_load_dspy_or_mlflow(module):
    code = (
        f"import sys, {module}; "
        "heavy = sorted(m for m in ('dspy', 'mlflow', 'litellm') if m in sys.modules); "
        "print(','.join(heavy))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.strip() == ""
