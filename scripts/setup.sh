#!/usr/bin/env bash
# Set up liftdspy from scratch in .venv, exactly as uv.lock says: core, the embedded model stack,
# Modal client, dev tools. Idempotent: with unchanged pyproject.toml, uv.lock and these scripts it
# does nothing. Prints the time of each step (stderr).
#
# Environment: LIFTDSPY_VENV (default .venv), PYTHON (default python3, must be CPython 3.11),
# LIFTDSPY_TOOLS (default ~/.cache/liftdspy: the pinned uv and the llama.cpp build settings file),
# UV_CACHE_DIR (uv's cache: downloaded wheels and the built llama-cpp-python wheel, reused by later
# set-ups on the same machine).
set -euo pipefail
cd "$(dirname "$0")/.."

UV_VERSION=0.13.9 # keep equal to the uv pin in pyproject.toml's dev extra
PYTHON=${PYTHON:-python3}
VENV=${LIFTDSPY_VENV:-.venv}
TOOLS=${LIFTDSPY_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/liftdspy}
stamp="$VENV/.liftdspy-setup"
want=$(cat pyproject.toml uv.lock scripts/setup.sh scripts/llama_no_common.cmake | sha256sum | cut -d' ' -f1)

if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi

started=$SECONDS
step_start=$SECONDS
step() { # step NAME: print the time the previous step took
  echo "setup: $1 ($((SECONDS - step_start)) s)" >&2
  step_start=$SECONDS
}
echo "setting up $VENV from uv.lock (the first set-up on a machine compiles llama-cpp-python:" \
  "4 min on 2 quiet cores, far longer on a busy machine; later set-ups reuse the built wheel)" >&2

# 1. uv itself, pinned, in its own small venv outside the project (reused between set-ups).
uv="$TOOLS/uv-$UV_VERSION/bin/uv"
if [ ! -x "$uv" ]; then
  rm -rf "$TOOLS/uv-$UV_VERSION"
  "$PYTHON" -m venv "$TOOLS/uv-$UV_VERSION"
  "$TOOLS/uv-$UV_VERSION/bin/python" -m pip install -q --disable-pip-version-check \
    "uv==$UV_VERSION"
fi
step "uv $UV_VERSION ready"

# uv reads neither pip's configuration nor its constraints file; everything it needs is in
# pyproject.toml ([tool.uv]: the local torch wheel folder) and uv.lock. PYTHONDONTWRITEBYTECODE is
# set on this machine kind, so bytecode is compiled at install time (imports take twice as long
# without it).
export UV_PROJECT_ENVIRONMENT="$VENV" UV_PYTHON_DOWNLOADS=never UV_COMPILE_BYTECODE=1
export UV_PYTHON="$PYTHON"
sync=("$uv" sync --locked --all-extras)

# 2. Everything except llama-cpp-python (an sdist): wheels only, no resolution (--locked fails
# when pyproject.toml and uv.lock disagree).
[ -x "$VENV/bin/python" ] || "$uv" venv -q "$VENV"
"${sync[@]}" -q --no-install-package llama-cpp-python
step "locked packages installed"

# 3. llama-cpp-python, compiled from its sdist with only the parts the Python package loads:
# no llava/mtmd, no `common` (see scripts/llama_no_common.cmake), no tests/examples; and for any
# x86-64 CPU (GGML_NATIVE=OFF: a -march=native build crashed with "Illegal instruction" on another
# CPU, and decodes no faster). The settings
# are build-backend config settings, so uv's cache keys the built wheel on them; the include file
# is copied to a content-addressed path for the same reason.
mkdir -p "$TOOLS"
include="$TOOLS/llama_no_common-$(sha256sum scripts/llama_no_common.cmake | cut -c1-12).cmake"
[ -f "$include" ] || cp scripts/llama_no_common.cmake "$include"
llama=llama-cpp-python
"${sync[@]}" -q \
  --config-settings-package "$llama:cmake.define.GGML_NATIVE=OFF" \
  --config-settings-package "$llama:cmake.define.LLAVA_BUILD=OFF" \
  --config-settings-package "$llama:cmake.define.LLAMA_BUILD_TESTS=OFF" \
  --config-settings-package "$llama:cmake.define.LLAMA_BUILD_EXAMPLES=OFF" \
  --config-settings-package "$llama:cmake.define.CMAKE_PROJECT_INCLUDE=$include"
step "llama-cpp-python installed"

echo "$want" >"$stamp"
echo "setup: done in $((SECONDS - started)) s" >&2
