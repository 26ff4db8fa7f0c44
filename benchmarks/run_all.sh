#!/usr/bin/env bash
# Run every benchmark on the real data and write JSON results to benchmarks/results/.
# Usage: INTERLEARN_DATA=../shared/data bash benchmarks/run_all.sh [name ...]
# Each benchmark can also be run alone; the exact commands are in BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
DATA=${INTERLEARN_DATA:-../shared/data}
OUT=benchmarks/results
mkdir -p "$OUT"
export OMP_NUM_THREADS=1 MPLBACKEND=Agg
with_data=(transfer feature_cache distill multitask fl_matrix fl_mnist fl_privacy fl_robust fl_fairness fl_compress shakespeare keyboard_words femnist fl_engines fl_lora fit_parallel)
no_data=(mtl_overhead fl_scale fl_secagg)
selected=("$@")
run() {
  local name=$1; shift
  if [ ${#selected[@]} -gt 0 ] && [[ ! " ${selected[*]} " =~ " ${name} " ]]; then return; fi
  echo "== benchmarks/${name}.py"
  "$PY" "benchmarks/${name}.py" "$@" --json "$OUT/${name}.json"
}
for b in "${with_data[@]}"; do run "$b" --data-dir "$DATA"; done
for b in "${no_data[@]}"; do run "$b"; done
"$PY" benchmarks/plots.py
"$PY" benchmarks/assemble.py
