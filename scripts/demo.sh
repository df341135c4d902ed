#!/usr/bin/env bash
# Set everything up, then run the whole pipeline on the bundled sample feeds (offline, embedded
# SQLite instance, local files under ./data unless PODCAST_DATA_DIR says otherwise).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/podcast demo "$@"
