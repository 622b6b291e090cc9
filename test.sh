#!/usr/bin/env bash
# Sets up (system libraries, release build) and runs the whole test suite. No Python needed for
# model parity: reference fixtures are committed. DECI_FULL=1 adds the full-size random-weight
# checks. Then the service's end-to-end checks (tools/e2e/run.sh): the real `decidiffusion serve`
# on the demo model, driven by headless Chromium and a bounded load test (installs chromium and a
# small selenium venv on first use).
set -euo pipefail
cd "$(dirname "$0")"
scripts/setup.sh
# Release build (the model tests run real kernels) with testing enabled for @testable imports.
swift build -c release --build-tests -Xswiftc -enable-testing
# A throwaway PostgreSQL (as an unprivileged user) for the job queue's SQL tests.
pgdir="/tmp/deci-test-pg-$$"
DECI_TEST_POSTGRES="$(tools/pg/throwaway.sh start "$pgdir" 55431 | tail -1)"
export DECI_TEST_POSTGRES DECI_REQUIRE_POSTGRES=1
trap 'tools/pg/throwaway.sh stop "$pgdir"' EXIT
swift test -c release --skip-build -Xswiftc -enable-testing
# The test build above also rebuilt the CLI with testing enabled; e2e runs that binary.
tools/e2e/run.sh
