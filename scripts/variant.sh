#!/usr/bin/env bash
# One variant of the default trained and scored outside DVC: params.yaml with KEY=VALUE changes
# (`tribert params set`, validated, as `dvc exp run -S` makes them) written to runs/NAME/, then
# the train and evaluate stages' commands as dvc.yaml runs them, on the workspace's data
# (data/clips, data/pose: run `dvc repro pose_features` first), and the bench of the CLI.
# docs/experiments.md's runs are this script's (`/work/exp/run.sh NAME ...` there: the same
# commands with runs/ at /work/exp/). Pair two runs with `tribert compare runs/A/evaluate
# runs/B/evaluate`. One variant trains in about as long as the default's train stage.
# Usage (in the activated .venv): bash scripts/variant.sh NAME [key=value ...]
#   BENCH=0 skips `tribert bench separate`; RUNS=DIR puts the run in DIR/NAME instead of runs/NAME;
#   TRAIN_DATA=DIR also trains on DIR/clips and DIR/pose (another `dvc repro pose_features`
#   output whose clips are all in the training split, e.g. more videos of another data.seed,
#   docs/experiments.md sections 43 and 60); val, test and the bench stay the workspace's
set -euo pipefail
[[ $# -ge 1 && $1 != *=* ]] || { echo "usage: bash scripts/variant.sh NAME [key=value ...]" >&2; exit 2; }
name=$1; shift
for d in data/clips data/pose; do
  [[ -d $d ]] || { echo "variant.sh: $d missing: run \`dvc repro pose_features\` first" >&2; exit 1; }
done
X=${RUNS:-runs}/$name
mkdir -p "$X"
tribert params set --out "$X/params.yaml" "$@" >/dev/null
clips=data/clips pose=data/pose
if [[ -n ${TRAIN_DATA:-} ]]; then
  # the training stage reads the workspace's shards and TRAIN_DATA's (renamed shard-1NNN.h5)
  # through links in the run's folder; extra clips outside the training split are refused
  python - "$TRAIN_DATA" <<'PY'
import sys
from pathlib import Path
from pipeline.data import shards
root = Path(sys.argv[1])
for d in ("clips", "pose"):
    if not shards.list_shards(root / d):
        sys.exit(f"variant.sh: {root / d}: no shards (TRAIN_DATA needs clips/ and pose/)")
for path in shards.list_shards(root / "clips"):
    other = sorted(set(shards.read_index(path, ("split",))["split"]) - {"train"})
    if other:
        sys.exit(f"variant.sh: {path}: holds {', '.join(map(str, other))} clips; TRAIN_DATA must be training clips only")
PY
  clips=$X/clips pose=$X/pose
  for d in clips pose; do
    rm -rf "${X:?}/$d"; mkdir -p "$X/$d"
    for f in data/$d/shard-*.h5; do ln -s "$(realpath "$f")" "$X/$d/"; done
    for f in "$TRAIN_DATA"/$d/shard-*.h5; do
      b=$(basename "$f"); ln -s "$(realpath "$f")" "$X/$d/shard-1${b#shard-0}"
    done
  done
fi
stamp() { echo "$1 $(( $(date +%s) - $2 )) s" >> "$X/times"; }
: > "$X/times"
t=$(date +%s)
python -m stages.train --params "$X/params.yaml" --clips "$clips" --pose "$pose" \
  --out "$X/tribert.pt" --checkpoint "$X/last.pt" --live "$X/dvclive" --plots "$X/train" > "$X/train.log" 2>&1
stamp train "$t"
t=$(date +%s)
python -m stages.evaluate --params "$X/params.yaml" --model "$X/tribert.pt" --clips data/clips \
  --pose data/pose --out "$X/evaluate" --subset all > "$X/evaluate.log" 2>&1
stamp evaluate "$t"
if [[ ${BENCH:-1} != 0 ]]; then
  t=$(date +%s)
  # a Sound-of-Pixels package is refused pair by pair (it has no pose per performer): not an error here
  tribert bench separate --checkpoint "$X/tribert.pt" --params "$X/params.yaml" --json > "$X/bench.json" 2> "$X/bench.log" || true
  stamp bench "$t"
fi
python - "$X" <<'PY'
import json, sys
m = json.load(open(f"{sys.argv[1]}/evaluate/metrics.json"))
for s in ("single", "multi"):
    print(f"{sys.argv[1]}: {s} SDR {m[s]['sdr']:.2f}, {m[s]['improvement']:+.2f} dB over the mixture "
          f"[{m[s]['improvement_lo']:.2f}, {m[s]['improvement_hi']:.2f}], swap drop {m[s]['swap_drop']:.1f}")
PY
