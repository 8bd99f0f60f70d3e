#!/usr/bin/env bash
# Runtime benchmark on this machine's CPU: Visage (eager and optimised) and
# onnxruntime-node measured in the same run, same threads and shapes.
# Usage: bench/runtime.sh [out-dir] [extra visage bench options...]
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-out/bench}
shift || true
mkdir -p "$out"
threads=${VISAGE_BENCH_THREADS:-2}
./build/visage bench runtime --device cpu --threads "$threads" --json "$out/visage_cpu.json" "$@"
./build/visage bench runtime --list > "$out/models.tsv"
node bench/ort_peer.mjs --visage "$out/visage_cpu.json" --list "$out/models.tsv" --threads "$threads" \
  --json "$out/runtime_cpu_vs_ort.json"
