#!/usr/bin/env bash
# Quick start, first command: install the dependencies, build the release
# preset and run the main job, for now `accsim gemm` on the shipped example
# (examples/gemm) with the paper's accumulator. Outputs go to out/gemm/.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

scripts/setup-deps.sh
cmake --preset release
cmake --build --preset release --target accsim

mkdir -p out/gemm
build/release/sim/accsim gemm \
  --a examples/gemm/A.npy --b examples/gemm/B.npy \
  --mul e4m3 \
  --prod M7E4,bias=12,round=rtz,ftz \
  --acc M7E4,bias=10,round=rtz,ftz \
  --order chunked:16 --scale none \
  --out out/gemm/C.npy --report out/gemm/report.json
