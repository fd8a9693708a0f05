#!/usr/bin/env bash
# Set up and run the whole test suite, offline, with Prefect in a throwaway home.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export HF_HUB_OFFLINE=1
export PREFECT_SERVER_ANALYTICS_ENABLED=false
PREFECT_HOME="$(mktemp -d -t dreamcore-prefect-XXXXXX)"
export PREFECT_HOME
trap 'rm -rf "$PREFECT_HOME"' EXIT
.venv/bin/python -m pytest -q -p no:cacheprovider "$@"
