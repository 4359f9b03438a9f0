"""Mode values that YAML 1.1 (PyYAML) reads as booleans.

`recorder: {mode: off}` in a config file, and `--set lm.recorder.mode=off` (override values are
YAML scalars too), give the field `False`, not the string "off": YAML 1.1 reads `off`, `no`,
`false` (and `on`, `yes`, `true`) as booleans. `OffWhenFalse` is a pydantic before-validator for
mode fields whose "disabled" value is `off`: it turns `False` back into "off", so every spelling
a user means by it works. `NoBooleans(...)` refuses a boolean for a field where guessing would
be wrong (sandbox isolation), naming the words to write instead.
"""

from __future__ import annotations

from typing import Any

from pydantic import BeforeValidator


def _off_when_false(value: Any) -> Any:
    return "off" if value is False else value


OffWhenFalse = BeforeValidator(_off_when_false)


def NoBooleans(*choices: str) -> BeforeValidator:
    """Refuse a YAML boolean (`off`, `no`, `on`, `yes`, ...) with the words to write instead."""

    def refuse(value: Any) -> Any:
        if isinstance(value, bool):
            words = " or ".join(repr(c) for c in choices)
            raise ValueError(f"YAML read the value as the boolean {value}; write {words}")
        return value

    return BeforeValidator(refuse)
