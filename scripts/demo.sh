#!/usr/bin/env bash
# Set up (if needed) and run the main job: the demo optimization experiment on the embedded model.
# Extra arguments go to `liftdspy run` (e.g. --recorder record to call the model afresh).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/liftdspy datasets validate datasets/core
exec .venv/bin/liftdspy run experiments/demo.yaml "$@"
