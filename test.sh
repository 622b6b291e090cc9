#!/usr/bin/env bash
# Sets up (system libraries, release build) and runs the whole test suite. No Python needed:
# reference fixtures are committed. DECI_FULL=1 adds the full-size random-weight checks.
set -euo pipefail
cd "$(dirname "$0")"
scripts/setup.sh
swift build -c release --build-tests
swift test -c release --skip-build
