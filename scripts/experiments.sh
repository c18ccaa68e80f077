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
# The variants run one after another from DVC's queue, each in its own temporary copy, so the
# workspace keeps the baseline. Extra arguments go to every `dvc exp run`, and SUFFIX is appended
# to every experiment name, e.g. another seed beside the first:
#   SUFFIX=-seed1 bash scripts/experiments.sh -S train.seed=1
# Usage (in the activated .venv): [SUFFIX=...] bash scripts/experiments.sh [-S key=value ...]
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
)
SUFFIX=${SUFFIX:-}
NAMES=("tribert$SUFFIX")
for v in "${VARIANTS[@]}"; do NAMES+=("${v%% *}$SUFFIX"); done

# experiment names must be unique: a second run replaces the first
dvc exp remove "${NAMES[@]}" >/dev/null 2>&1 || true

dvc exp run -n "tribert$SUFFIX" "$@"
for v in "${VARIANTS[@]}"; do
  read -r name settings <<<"$v"
  set_args=()
  for s in $settings; do set_args+=(-S "$s"); done
  dvc exp run --queue -n "$name$SUFFIX" "${set_args[@]}" "$@" evaluate
done
dvc queue start -j 1
while dvc queue status | grep -qE "Queued|Running"; do sleep 30; done
dvc queue status

KEEP='Experiment|State|model\.(arch|erase|fusion|image_size|sop_crop)$|train\.(frames_pretrain|backbone_lr)$'
KEEP+='|results/evaluate/metrics\.json:(single|multi)\.(sdr|sdr_lo|sdr_hi|sdr_mix|improvement|si_sdr|swap_drop|ibm\.sdr|ratio\.sdr|failures|mixtures)$'
dvc exp show --md --drop '.*' --keep "$KEEP"
