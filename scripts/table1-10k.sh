#!/usr/bin/env bash
# The paper's Table 1 at issue 16's budget: bench_table1.py with 10,000 training steps for every run and two training
# seeds, on the embedded model's corpus (6,000 clips + mirrors, seed 0). Five runs of 10,000 steps take about 16 h of
# one core, so they are trained across sessions: each run's latest checkpoint is committed in training/table1-10k/
# (the AdamW state only while it is unfinished) and continued exactly with --resume.
#   scripts/table1-10k.sh train RUN[,RUN]  # restore, then train or resume to 10,000 steps (one core; background it)
#   scripts/table1-10k.sh save             # copy every run's latest checkpoint into training/table1-10k/
#   scripts/table1-10k.sh table [ARGS]     # the evaluations and the table, once every run is at 10,000 steps
# The dual seed-0 run is the embedded model's own run: the same config, seed and data, and the learning rate is
# constant after warm-up, so its first 10,000 steps do not depend on the budget. It starts from the embedded run's
# step-6,000 checkpoint (commit f4a72cf) instead of from scratch.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
work=${EMBEDDED_TRAIN_DIR:-/work/runs}
runs="$work/table1-10k"
keep="$repo/training/table1-10k"
data="$work/synth-v2.jsonl"
steps=10000
plan=(--data "$data" --runs "$runs" --train-steps "$steps" --train-seeds 0,1)
mkdir -p "$runs"

corpus() {  # the embedded model's corpus, made by its own script
  EMBEDDED_TRAIN_DIR="$work" scripts/train-embedded-v2.sh corpus
}

restore() {  # RUN: the committed checkpoint into the work folder, unless the work folder is further on
  local run=$1
  [ -d "$runs/$run/model" ] && return
  if [ -f "$keep/$run/model/train_state.json" ]; then
    mkdir -p "$runs/$run" && cp -r "$keep/$run/model" "$runs/$run/model"
    cp "$keep/$run/metrics.jsonl" "$runs/$run/metrics.jsonl"
    [ -f "$keep/$run.toml" ] && cp "$keep/$run.toml" "$runs/$run.toml"
  elif [ "$run" = dual ]; then
    mkdir -p "$runs/dual/model"
    for f in config.json model.safetensors normalization.safetensors length.safetensors train_state.json \
             train_state.safetensors; do
      git show "f4a72cf:training/embedded-v2/model/$f" > "$runs/dual/model/$f"
    done
    git show f4a72cf:training/embedded-v2/metrics.jsonl > "$runs/dual/metrics.jsonl"
  fi
}

case "${1:-}" in
  train)
    corpus
    IFS=, read -ra names <<< "${2:?usage: $0 train RUN[,RUN]}"
    for run in "${names[@]}"; do restore "$run"; done
    exec env OMP_NUM_THREADS=1 python benchmarks/bench_table1.py "${plan[@]}" --train-only "$2"
    ;;
  save)
    mkdir -p "$keep"
    for dir in "$runs"/*/model; do
      [ -f "$dir/train_state.json" ] || continue
      run=$(basename "$(dirname "$dir")")
      rm -rf "$keep/$run.tmp" && mkdir -p "$keep/$run.tmp/model"
      step=$(python -c "import json, sys; print(json.load(open(sys.argv[1]))['step'])" "$dir/train_state.json")
      files=(config.json model.safetensors normalization.safetensors length.safetensors train_state.json)
      [ "$step" -lt "$steps" ] && files+=(train_state.safetensors)  # the optimiser state: only to resume
      for f in "${files[@]}"; do [ -f "$dir/$f" ] && cp "$dir/$f" "$keep/$run.tmp/model/"; done
      python - "$runs/$run/metrics.jsonl" "$step" "$keep/$run.tmp/metrics.jsonl" <<'PY'
import json, sys
# up to the checkpoint's step; a resumed run logs the steps after its checkpoint again: the last row of each step
rows = {json.loads(line)["step"]: line for line in open(sys.argv[1]) if line.strip()}
open(sys.argv[3], "w").writelines(rows[s] for s in sorted(rows) if s <= int(sys.argv[2]))
PY
      [ -f "$runs/$run.toml" ] && cp "$runs/$run.toml" "$keep/"
      rm -rf "${keep:?}/$run" && mv "$keep/$run.tmp" "$keep/$run"
      echo "saved $run at step $step"
    done
    ;;
  table)
    corpus
    for run in high concat dual concat-seed1 dual-seed1; do
      restore "$run"
      # a committed run keeps no index (12 MB): the retrieval row needs it, rebuilt from the same corpus
      if [ -d "$runs/$run/model" ] && [ ! -f "$runs/$run/model/index.npz" ]; then
        motiongpt --quiet index build "$data" -o "$runs/$run/model/index.npz" --overwrite >/dev/null
      fi
    done
    shift
    exec python benchmarks/bench_table1.py "${plan[@]}" "$@"
    ;;
  *) echo "usage: $0 train RUN[,RUN] | save | table [ARGS]" >&2; exit 2 ;;
esac
