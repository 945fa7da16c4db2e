#!/usr/bin/env bash
# The next embedded default model (issue 16): examples/train-embedded.toml on 6,000 clips (+ mirrors) of the
# 44-action synthetic corpus, seed 0. Resumable across sessions: the checkpoint committed in training/embedded-v2/
# is copied into a work folder, continued exactly with --resume, and copied back with `save`.
#   scripts/train-embedded-v2.sh corpus        # synthesise the corpus into $EMBEDDED_TRAIN_DIR (/work/runs) if needed
#   scripts/train-embedded-v2.sh run [STEPS]   # synthesise the corpus if needed, then train or resume (background it)
#   scripts/train-embedded-v2.sh save          # copy the latest checkpoint back into training/embedded-v2/
#   scripts/train-embedded-v2.sh ship [DIR]    # make DIR (default: the committed checkpoint) the embedded default:
#                                              # its weights, the index of the corpus and evaluator-v2 into assets/
#   scripts/train-embedded-v2.sh distill [STEPS]  # distil the shipped model into a few-step student (resumes;
#                                                 # examples/distill-embedded.toml) in $work/lcm (background it)
#   scripts/train-embedded-v2.sh ship-student DIR [STEPS]  # ship DIR (a student of the shipped model) as
#                                                 # assets/default/lcm, sampling STEPS steps by default
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
work=${EMBEDDED_TRAIN_DIR:-/work/runs}
run="$work/embedded-v2"
keep="$repo/training/embedded-v2"
mkdir -p "$work"
corpus() {  # the run's corpus, in $work/synth-v2.jsonl (deterministic: made again in each session)
  if [ ! -f "$work/synth-v2.jsonl" ]; then
    motiongpt --quiet data synth -o "$work/synth-v2" --clips 6000 --seed 0 --overwrite
    motiongpt --quiet data prepare --humanml3d "$work/synth-v2" --babel "$work/synth-v2" -o "$work/synth-v2.jsonl" --overwrite
  fi
}
case "${1:-run}" in
  corpus)
    corpus
    ;;
  run)
    corpus
    steps=()
    [ -n "${2:-}" ] && steps=(--steps "$2")
    if [ ! -d "$run/model" ] && [ -f "$keep/model/train_state.json" ]; then
      mkdir -p "$run" && cp -r "$keep/model" "$run/model" && cp "$keep/metrics.jsonl" "$run/metrics.jsonl"
    fi
    if [ -d "$run/model" ]; then
      exec motiongpt --quiet train --data "$work/synth-v2.jsonl" -o "$run" --resume "${steps[@]}" --json
    fi
    exec motiongpt --quiet train --data "$work/synth-v2.jsonl" --config examples/train-embedded.toml -o "$run" \
      "${steps[@]}" --json
    ;;
  save)
    rm -rf "$keep.tmp" && mkdir -p "$keep.tmp/model"
    # the index is rebuilt at every checkpoint: not kept (12 MB)
    cp "$run"/model/{config.json,model.safetensors,normalization.safetensors,length.safetensors,train_state.json,train_state.safetensors} \
      "$keep.tmp/model/"
    # the log up to the checkpoint's step: a resumed run logs the steps after it again
    python - "$run" "$keep.tmp" <<'PY'
import json, sys
run, keep = sys.argv[1], sys.argv[2]
step = json.load(open(f"{run}/model/train_state.json"))["step"]
rows = [line for line in open(f"{run}/metrics.jsonl") if line.strip() and json.loads(line)["step"] <= step]
open(f"{keep}/metrics.jsonl", "w").writelines(rows)
PY
    # everything else kept beside the model (the FID-vs-steps curve, benchmark results) stays
    find "$keep" -maxdepth 1 -type f ! -name metrics.jsonl -exec cp {} "$keep.tmp/" \;
    rm -rf "$keep" && mv "$keep.tmp" "$keep"
    python -c "import json; print('saved step', json.load(open('$keep/model/train_state.json'))['step'])"
    ;;
  ship)
    src="${2:-$keep/model}"
    assets="$repo/src/motiongpt_cli/assets/default"
    new="$assets.new" && rm -rf "$new" && mkdir -p "$new"
    cp "$src"/{model.safetensors,normalization.safetensors,length.safetensors} "$new/"
    python - "$src/config.json" "$new/config.json" <<'PY'
import json, sys
config = json.load(open(sys.argv[1]))
config["name"] = "motiongpt-default-synthetic"
config.pop("sampling", None)  # the measured DDIM default is the new model's to measure (bench_steps.py)
open(sys.argv[2], "w").write(json.dumps(config, indent=2, sort_keys=True) + "\n")
PY
    motiongpt --quiet index build "$work/synth-v2.jsonl" -o "$new/index.npz" --overwrite >/dev/null
    cp -r "$repo/training/evaluator-v2" "$new/evaluator"
    # a student of the previous teacher is dropped with it: distil the new one (`distill`, `ship-student`)
    rm -rf "$assets" && mv "$new" "$assets"
    python -c "import json; print('shipped $src at step', json.load(open('$assets/config.json'))['training']['steps'])"
    ;;
  distill)
    steps=()
    [ -n "${2:-}" ] && steps=(--steps "$2")
    resume=()
    [ -f "$work/lcm/model/train_state.json" ] && resume=(--resume)
    exec motiongpt --quiet train --distill "$repo/src/motiongpt_cli/assets/default" --data "$work/synth-v2.jsonl" \
      --config examples/distill-embedded.toml -o "$work/lcm" "${resume[@]}" "${steps[@]}" --json
    ;;
  ship-student)
    src="${2:?usage: $0 ship-student DIR [STEPS]}"
    assets="$repo/src/motiongpt_cli/assets/default"
    # a student of another teacher would sample something else than the model it ships beside
    python - "$src" "$assets" <<'PY'
import sys
from pathlib import Path
from motiongpt_cli.checkpoint import load_model
from motiongpt_cli.distill import is_consistency_model, teacher_fingerprint
student = load_model(Path(sys.argv[1]))
if not is_consistency_model(student):
    sys.exit(f"{sys.argv[1]} is not a distilled (consistency) model")
teacher, shipped = student.config["consistency"]["teacher_sha256"], teacher_fingerprint(Path(sys.argv[2]))
if teacher != shipped:
    sys.exit(f"{sys.argv[1]} was distilled from another teacher ({teacher}), not the shipped model ({shipped})")
PY
    new="$assets/lcm.new" && rm -rf "$new" && mkdir -p "$new"
    cp "$src"/{model.safetensors,normalization.safetensors,length.safetensors} "$new/"
    # STEPS: the student's default step count, as bench_steps.py measured it on the validation split
    python - "$src/config.json" "$new/config.json" "${3:-}" <<'PY'
import json, sys
config = json.load(open(sys.argv[1]))
config["name"] = "motiongpt-default-synthetic-lcm"
if sys.argv[3]:
    config["consistency"]["steps"] = int(sys.argv[3])
open(sys.argv[2], "w").write(json.dumps(config, indent=2, sort_keys=True) + "\n")
PY
    rm -rf "$assets/lcm" && mv "$new" "$assets/lcm"
    python -c "import json; print('shipped the student at step', json.load(open('$assets/lcm/config.json'))['training']['steps'])"
    ;;
  *) echo "usage: $0 corpus | run [STEPS] | save | ship [DIR] | distill [STEPS] | ship-student DIR [STEPS]" >&2; exit 2 ;;
esac
