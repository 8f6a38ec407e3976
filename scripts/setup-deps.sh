#!/usr/bin/env bash
# Installs every Debian 12 package that accsim's build, tests and scripts
# need. Idempotent: when all are installed it does nothing, not even
# `apt-get update`. Run as root, or as a user with sudo.
set -euo pipefail

# The one list. Later issues append here.
PACKAGES=(
  # toolchain
  build-essential cmake ninja-build pkg-config
  # tests, test oracle, benchmarks
  libgtest-dev libgmock-dev libbenchmark-dev libmpfr-dev libgmp-dev libopenblas-dev
  # libraries
  libcli11-dev nlohmann-json3-dev libfmt-dev libspdlog-dev libboost-dev libsystemc-dev libyaml-cpp-dev
  # reading trained networks (ONNX through protobuf)
  libonnx-dev libprotobuf-dev protobuf-compiler
  # reference RTL: lint and simulation, synthesis onto a real cell library, gate-level energy
  verilator yosys iverilog qflow-tech-osu018
  # fuzzing (libFuzzer ships with clang's runtime)
  clang libclang-rt-14-dev
  # Python side (scripts/ run Debian's /usr/bin/python3)
  python3-numpy python3-torch python3-matplotlib python3-onnx
  # Python bindings (python/) and their tests
  pybind11-dev python3-dev python3-pytest
  # data for the shipped networks
  dataset-fashion-mnist
  # sweeps beyond one machine: scripts/slurm/sweep.sh, and the single-node Slurm its test starts
  slurm-wlm munge
)

missing=()
for package in "${PACKAGES[@]}"; do
  status=$(dpkg-query -W -f='${db:Status-Status}' "$package" 2>/dev/null || true)
  [[ "$status" == installed ]] || missing+=("$package")
done

if ((${#missing[@]} == 0)); then
  echo "setup-deps: all ${#PACKAGES[@]} packages are installed"
  exit 0
fi

as_root=()
if [[ $(id -u) -ne 0 ]]; then
  if ! command -v sudo >/dev/null; then
    echo "setup-deps: need root (or sudo) to install: ${missing[*]}" >&2
    exit 1
  fi
  as_root=(sudo)
fi

echo "setup-deps: installing ${missing[*]}"
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}"
