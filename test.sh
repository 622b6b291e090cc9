#!/usr/bin/env bash
# Sets up (system libraries, release build) and runs the whole test suite. No Python needed:
# reference fixtures are committed. DECI_FULL=1 adds the full-size random-weight checks.
set -euo pipefail
cd "$(dirname "$0")"
scripts/setup.sh
# Release build (the model tests run real kernels) with testing enabled for @testable imports.
swift build -c release --build-tests -Xswiftc -enable-testing
swift test -c release --skip-build -Xswiftc -enable-testing
