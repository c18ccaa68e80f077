#!/bin/bash
# Every GPU check in one call on a GPU machine: bash scripts/gpu/run.sh (README, "On a GPU")
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

PHASES=${PHASES:-bench ddp runs}; W=${WORKERS:-2}
has() { case " $PHASES " in *" $1 "*) return 0;; esac; return 1; }

has bench && { step bench
if [ "$Q" = 1 ]; then B="--presets tiny --steps 2 --memory-formats auto+off,auto+bf16"
else B="--presets paper,tiny --paper-batch 12 --paper-steps 6 --steps 20 --workers $W --memory-formats auto+off,auto+auto"; fi
timeout ${BT:-170} $PY -m pipeline.cli bench train $B --json > "$OUT/bench_train.json" 2> "$L/bench_train.err"
echo "rc $?" >> "$L/bench_train.err"; }

has ddp && { step ddp
variant ddp epochs=1 steps_per_epoch=6 memory_format=contiguous workers=$W
TRIBERT_DDP=1 timeout ${DT:-120} $PY -m torch.distributed.run --standalone --nproc_per_node=1 \
  -m stages.train --params params_gpu_ddp.yaml --out /tmp/ddp/m.pt --checkpoint /tmp/ddp/last.pt \
  --live /tmp/ddp/live --plots /tmp/ddp/plots > "$L/ddp.txt" 2>&1
echo "rc $?" >> "$L/ddp.txt"; }

has runs && { step runs
E=16; EL=48; [ "$Q" = 1 ] && { E=1; EL=2; }
XTRA=""; [ "$Q" = 1 ] && XTRA="steps_per_epoch=3"
variant s0_bf16 seed=0 epochs=$E workers=$W $XTRA
variant s0_fp32 seed=0 epochs=$E workers=$W amp=off $XTRA
variant s1_bf16 seed=1 epochs=$E workers=$W $XTRA
variant s0_bf16_x3 seed=0 epochs=$EL workers=$W $XTRA
LEFT=$(( LIMIT - 25 - $(el) ))
for r in s0_bf16 s0_fp32 s1_bf16 s0_bf16_x3; do
  timeout $LEFT $PY -m stages.train --params params_gpu_$r.yaml --out "$OUT/$r.pt" \
    --checkpoint /tmp/runs/$r/last.pt --live /tmp/runs/$r/live --plots /tmp/runs/$r/plots \
    > "$L/$r.txt" 2>&1 &
done
wait
step "runs done"; }
$PY - <<'PYEOF' > "$L/histories.json" 2>> "$L/steps.txt"
import json, torch, glob
out = {}
for p in sorted(glob.glob("/tmp/runs/*/last.pt")):
    ck = torch.load(p, map_location="cpu", weights_only=False)
    out[p.split("/")[3]] = {k: ck.get(k) for k in ("epoch", "global_step", "best_sdr", "best_epoch",
                                                   "history", "memory_format")}
print(json.dumps(out))
PYEOF
step end
echo "--- bench"; cat "$OUT/bench_train.json"; echo; for f in "$L"/ddp.txt "$L"/s*.txt; do echo "--- $f"; grep -v "^\s*$" "$f" | tail -4; done
cd "$OUT" && tar czf logs.tgz logs && rm -rf logs
