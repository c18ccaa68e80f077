#!/bin/bash
# Every GPU check in one call on a GPU machine: bash scripts/gpu/run.sh (README, "On a GPU").
# It reads .gpu/data.tar.xz (scripts/gpu/pack.py), .whl/ (pydantic and its needs, for an image
# without them) and .gpu/official/ (official_step.py with its official_shims/ from the steering
# folder's bench/, and tree/: `git archive HEAD tribert config train_trimodal.py` of the official
# repository); phases in order: ddp runs bench official (PHASES=...). Runs stopped by the time
# box leave RUN_partial.pt (their best epoch so far); a second call with PHASES=runs on the same
# warm machine resumes them from /tmp/runs/RUN/last.pt.
# Local dry run of each step on the CPU at tiny sizes: QUICK=1 PY=.venv/bin/python NO_WHL=1 bash scripts/gpu/run.sh
set -u
export PYTHONUNBUFFERED=1 OMP_NUM_THREADS=${OMP_NUM_THREADS:-3}
OUT=${OUT:-/tmp/gpu_out}; L=$OUT/logs; mkdir -p "$L"
T0=$(date +%s); el() { echo $(( $(date +%s) - T0 )); }
LIMIT=${LIMIT:-540}           # the call's timeout_s: every run ends before it
Q=${QUICK:-0}; PY=${PY:-python3}
step() { echo "== $(el)s $*" | tee -a "$L/steps.txt"; }

step env
{ nvidia-smi; nproc; free -g; } > "$L/env.txt" 2>&1
if [ "${NO_WHL:-0}" != 1 ] && ls .whl/*.whl > /dev/null 2>&1; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl >> "$L/env.txt" 2>&1 || echo "wheels failed" >> "$L/env.txt"
fi
export PYTHONPATH=${PRE:+$PRE:}/tmp/site:$PWD
$PY -c "import sys, torch; print(sys.version); print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else '-'); import pydantic; print('pydantic', pydantic.VERSION)" >> "$L/env.txt" 2>&1

step unpack   # only where the data came as .gpu/data.tar.xz (scripts/gpu/pack.py); else dvc repro pose_features
if [ -f .gpu/data.tar.xz ]; then
  rm -rf /tmp/pk && mkdir -p /tmp/pk && tar xJf .gpu/data.tar.xz -C /tmp/pk \
    && $PY scripts/gpu/unpack.py /tmp/pk > "$L/unpack.txt" 2>&1 \
    && $PY -m stages.pose_features --params params.yaml >> "$L/unpack.txt" 2>&1 \
    || { step "unpack FAILED"; tail -5 "$L/unpack.txt"; }
fi

variant() {  # variant NAME key=value ...: params_gpu_NAME.yaml, params.yaml with train overrides
  $PY - "$@" <<'PYEOF'
import sys, yaml
name, *sets = sys.argv[1:]
p = yaml.safe_load(open("params.yaml"))
for s in sets:
    k, v = s.split("=", 1)
    p["train"][k] = v if v in ("off", "on") else yaml.safe_load(v)
yaml.safe_dump(p, open(f"params_gpu_{name}.yaml", "w"), sort_keys=False)
PYEOF
}

PHASES=${PHASES:-ddp runs bench official}; W=${WORKERS:-3}
has() { case " $PHASES " in *" $1 "*) return 0;; esac; return 1; }
left() { echo $(( LIMIT - $(el) )); }   # seconds before the call's limit
cap() { local l=$(( $(left) - ${2:-0} )); [ "$1" -lt "$l" ] && echo "$1" || echo $(( l > 5 ? l : 5 )); }

has ddp && { step ddp   # first: a GPU-path failure (bf16, the motion branch, NCCL) shows in seconds
variant ddp epochs=1 steps_per_epoch=6 memory_format=contiguous workers=$W
TRIBERT_DDP=1 timeout $(cap ${DT:-90}) $PY -m torch.distributed.run --standalone --nproc_per_node=1 \
  -m stages.train --params params_gpu_ddp.yaml --out /tmp/ddp/m.pt --checkpoint /tmp/ddp/last.pt \
  --live /tmp/ddp/live --plots /tmp/ddp/plots > "$L/ddp.txt" 2>&1
echo "rc $?" >> "$L/ddp.txt"; }

# The default recipe (params.yaml's train section; amp auto = bf16 autocast on CUDA), seeds 0 and
# 1, and seed 0 in float32, side by side on the one GPU. Each model file comes back for
# `evaluate` on the CPU machine's test split; a run the time box stops gives its best epoch so far.
RUNS=${RUNS:-s0_bf16 s1_bf16 s0_fp32}
has runs && { step runs
XTRA=""; [ "$Q" = 1 ] && XTRA="epochs=1 steps_per_epoch=3"
for r in $RUNS; do
  seed=${r:1:1}; amp=auto; [ "${r#*_}" = fp32 ] && amp=off
  variant $r seed=$seed amp=$amp workers=$W $XTRA
done
RT=$(cap ${RUNS_T:-250} ${AFTER_RUNS:-200})
for r in $RUNS; do
  timeout $RT $PY -m stages.train --params params_gpu_$r.yaml --out "$OUT/$r.pt" \
    --checkpoint /tmp/runs/$r/last.pt --live /tmp/runs/$r/live --plots /tmp/runs/$r/plots \
    > "$L/$r.txt" 2>&1 &
done
wait
step "runs done"
$PY - $OUT $RUNS <<'PYEOF' > "$L/histories.json" 2>> "$L/steps.txt"
import json, os, sys, torch
out, runs = sys.argv[1], sys.argv[2:]
res = {}
for r in runs:
    try:
        ck = torch.load(f"/tmp/runs/{r}/last.pt", map_location="cpu", weights_only=False)
    except FileNotFoundError:
        continue
    res[r] = {k: ck.get(k) for k in ("epoch", "global_step", "best_sdr", "best_epoch", "history",
                                     "memory_format")}
    if not os.path.exists(f"{out}/{r}.pt") and ck.get("best") is not None:
        torch.save(ck["best"], f"{out}/{r}_partial.pt")   # stopped by the time box
print(json.dumps(res))
PYEOF
}

has bench && { step bench
if [ "$Q" = 1 ]; then B="--presets tiny --steps 2 --memory-formats auto+off,auto+bf16"
else B="--presets paper --paper-batch 12 --paper-steps 6 --workers 6 --memory-formats auto+off,auto+auto"; fi
timeout $(cap ${BT:-140} 75) $PY -m pipeline.cli bench train $B --json > "$OUT/bench_train.json" 2> "$L/bench_train.err"
echo "rc $?" >> "$L/bench_train.err"; }

# The official model's step on the same GPU (scripts/gpu/official_cuda.py; .gpu/official holds
# the steering folder's official_step.py and shims and a plain copy of the official tree)
has official && [ -d .gpu/official/tree ] && { step official
OB=12; [ "$Q" = 1 ] && OB=1
timeout $(cap ${OT:-90} 10) $PY scripts/gpu/official_cuda.py --script .gpu/official/official_step.py \
  --repo .gpu/official/tree --batch $OB --steps ${OSTEPS:-6} > "$OUT/official.json" 2> "$L/official.err"
echo "rc $?" >> "$L/official.err"; }
step end
echo "--- bench"; cat "$OUT/bench_train.json" 2>/dev/null | head -c 3000; echo
echo "--- official"; cat "$OUT/official.json" 2>/dev/null; tail -3 "$L/official.err" 2>/dev/null
for f in "$L"/ddp.txt "$L"/s*.txt; do echo "--- $f"; grep -a -v "^\s*$" "$f" | tr '\r' '\n' | grep -a -v "it/s\]$\|s/it\]$" | tail -5; done
cd "$OUT" && tar czf logs.tgz logs && rm -rf logs
