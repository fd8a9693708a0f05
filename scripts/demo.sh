#!/usr/bin/env bash
# Set up, build the tiny model and the demo dataset, and run the dreambooth flow on them (offline).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export HF_HUB_OFFLINE=1
export PREFECT_HOME="${PREFECT_HOME:-$PWD/.dreamcore/prefect}"
export PREFECT_SERVER_ANALYTICS_ENABLED=false
exec .venv/bin/dreamcore demo --workdir .dreamcore/demo "$@"
