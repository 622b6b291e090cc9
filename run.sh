#!/usr/bin/env bash
# Sets up (system libraries, release build) and generates an image. Arguments go to
# `decidiffusion generate`; with no --model the bundled demo model is used.
#   ./run.sh "a red circle on a blue background"
#   ./run.sh "a photo of an astronaut riding a horse" --model Deci/DeciDiffusion-v1-0 --seed 42 -o astronaut.png
set -euo pipefail
cd "$(dirname "$0")"
scripts/setup.sh >&2
if [ $# -eq 0 ]; then set -- "a red circle on a blue background"; fi
exec .build/release/decidiffusion generate "$@"
