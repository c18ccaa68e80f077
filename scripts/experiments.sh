#!/usr/bin/env bash
# The paper's comparisons as DVC experiments of the current pipeline and data (README,
# "Comparisons"): the baseline runs the whole pipeline; each variant changes one model setting
# (or the few that make one baseline) and re-runs train + evaluate on the same data, seed and
# budget:
#   sop              Sound-of-Pixels baseline (paper Table 1): 224 px crops of each clip's playing
#                    area (the arms and hands, from the keypoints), augmented, its frames
#                    backbone pre-trained on the training clips' instrument labels, then trained
#                    at a tenth of the learning rate and on the labels as TriBERT's visual stream
#                    is (docs/experiments.md sections 19, 20 and 26); -S model.sop_crop=null
#                    gives it whole frames
#   sop-scratch      Sound-of-Pixels from random weights at the tiny preset's 112 px
#   erase-visual     the visual stream erased (supplement Table 1)
#   erase-pose       the pose stream erased (supplement Table 1)
#   fusion-multiply  multiplicative instead of concatenated fusion (supplement Table 2)
#   motion-off       no time-varying conditioning from the pose trajectory (model.motion=0)
# The variants run one after another from DVC's queue, each in its own temporary copy, so the
# workspace keeps the baseline. Extra arguments go to every `dvc exp run`, and SUFFIX is appended
# to every experiment name, e.g. another seed beside the first:
#   SUFFIX=-seed1 bash scripts/experiments.sh -S train.seed=1
# ONLY="name ..." runs only those variants (after the baseline); POLL is the seconds between
# looks at the queue (30).
# Usage (in the activated .venv): [SUFFIX=...] [ONLY=...] bash scripts/experiments.sh [-S key=value ...]
# Both training seeds, as the README reports them:
#   bash scripts/experiments.sh && SUFFIX=-seed1 bash scripts/experiments.sh -S train.seed=1
set -euo pipefail
export DVC_NO_ANALYTICS=1

VARIANTS=(
  "sop model.arch=sop model.image_size=224 train.augment=true model.sop_classifier=true train.frames_pretrain=40 train.backbone_lr=0.1 model.sop_crop=0.25"
  "sop-scratch model.arch=sop"
  "erase-visual model.erase=visual"
  "erase-pose model.erase=pose"
  "fusion-multiply model.fusion=multiply"
  "motion-off model.motion=0"
)
SUFFIX=${SUFFIX:-}
POLL=${POLL:-30}
if [[ -n ${ONLY:-} ]]; then
  chosen=()
  for name in $ONLY; do
    found=""
    for v in "${VARIANTS[@]}"; do [[ ${v%% *} == "$name" ]] && found=$v; done
    [[ -n $found ]] || { echo "experiments.sh: no variant named '$name'" >&2; exit 2; }
    chosen+=("$found")
  done
  VARIANTS=("${chosen[@]}")
fi
NAMES=("tribert$SUFFIX")
for v in "${VARIANTS[@]}"; do NAMES+=("${v%% *}$SUFFIX"); done

# experiment names must be unique: a second run replaces the first (one name at a time: `dvc exp
# remove` removes nothing when any one of its names is unknown)
for name in "${NAMES[@]}"; do dvc exp remove "$name" >/dev/null 2>&1 || true; done

dvc exp run -n "tribert$SUFFIX" "$@"

# A queued experiment is a copy of the git tree, and the baseline's dvc.lock and its small
# uncached outputs (results/stgcn/*.json, ...) are not in git: without them each copy would
# render, decode and train the ST-GCN again (persistent outputs are not restored from DVC's run
# cache). Staged files travel with the queued copies, so stage them while queueing, then put
# the index back as it was.
BASELINE_FILES=(dvc.lock results dvclive dvclive_finetune)
present=()
for f in "${BASELINE_FILES[@]}"; do
  if [[ -e $f ]] && [[ -z $(git diff --cached --name-only -- "$f") ]]; then present+=("$f"); fi
done
unstage() { if ((${#present[@]})); then git reset -q -- "${present[@]}"; fi; }
trap unstage EXIT
if ((${#present[@]})); then git add -- "${present[@]}"; fi
for v in "${VARIANTS[@]}"; do
  read -r name settings <<<"$v"
  set_args=()
  for s in $settings; do set_args+=(-S "$s"); done
  dvc exp run --queue -n "$name$SUFFIX" "${set_args[@]}" "$@" evaluate
done
unstage
trap - EXIT
dvc queue start -j 1
# the whole status is read before it is searched: `dvc queue status | grep -q` would stop
# reading at the first match, dvc would die of SIGPIPE and, under pipefail, the loop would end
# while the queue still runs (it did)
while :; do
  status=$(dvc queue status 2>&1 || true)
  grep -qE "Queued|Running" <<<"$status" || break
  sleep "$POLL"
done
dvc queue status

KEEP='Experiment|State|model\.(arch|erase|fusion|image_size|sop_crop)$|train\.(frames_pretrain|backbone_lr)$'
KEEP+='|results/evaluate/metrics\.json:(single|multi)\.(sdr|sdr_lo|sdr_hi|sdr_mix|improvement|si_sdr|swap_drop|ibm\.sdr|ratio\.sdr|failures|mixtures)$'
dvc exp show --md --drop '.*' --keep "$KEEP"
