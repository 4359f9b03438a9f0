"""liftdspy.lm imports and fails clearly without the `local` extra (no model needed)."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def test_engine_without_the_local_extra_names_it(tmp_path) -> None:
    fake = tmp_path / "model.gguf"
    fake.write_bytes(b"GGUF")
    script = textwrap.dedent(
        f"""
        import sys
        sys.modules["llama_cpp"] = None
        sys.modules["xgrammar"] = None
        from dspy.lm15 import Message, Request
        from liftdspy.lm.local_engine import LocalEngine
        engine = LocalEngine(model="x", model_path={str(fake)!r})
        try:
            engine.complete(Request(model="local/x", messages=(Message.user("hi"),)))
        except ImportError as exc:
            print(exc)
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert "`local` extra" in out.stdout, out.stderr
