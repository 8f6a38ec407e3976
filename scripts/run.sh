#!/usr/bin/env bash
# Quick start, first command: install the dependencies, build the release
# preset and run the main job: `accsim run` on the shipped ResNet-8 trace
# (traces/fmnist_resnet, 2000 Fashion-MNIST test images), FP32 beside the
# paper's 12-bit accumulator (docs/run.md). The report goes to out/run/.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

scripts/setup-deps.sh
cmake --preset release
cmake --build --preset release --target accsim

mkdir -p out/run
build/release/sim/accsim run --report out/run/report.json
