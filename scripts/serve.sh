#!/usr/bin/env bash
# The serve command (README): installs missing packages, builds a release binary and serves the
# example model repository (or whatever `apus serve` flags you pass, e.g. --port 9000).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build-release.sh apus
exec .build/release/apus serve "$@"
