"""A/B in one process: a preset's training step eager against torch.compile (inductor) on some of
its submodules, same inputs, ResNet/U-Net channels-last and VGGish NCHW in both, rounds in
alternating order (docs/experiments.md section 28).

Usage (repository root, activated .venv):
    python scripts/compile_ab.py PRESET BATCH ROUNDS STEPS [MODULES]
MODULES: comma-separated attribute paths of the model to compile (default visual.backbone,unet),
e.g. visual,unet,encoder,audio_embedding. The first compile takes minutes; inductor caches it.
"""
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from model import layout
from model.build import build_model
from pipeline.schema import ModelParams
from pipeline.train import losses
from pipeline.train.bench import make_inputs
from pipeline.malloc import keep_freed_memory

preset, batch, rounds, steps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
which = sys.argv[5].split(",") if len(sys.argv) > 5 else ["visual.backbone", "unet"]
keep_freed_memory(); torch.set_num_threads(2)
params = ModelParams(arch="tribert", preset=preset)
inputs, feats, labels = make_inputs(batch, 2, params)
nets = {}
for mode in ("eager", "compiled"):
    torch.manual_seed(0)
    m = build_model(params).train()
    names = layout.networks(m)
    print(mode, "networks", list(names))
    choice = {n: ("contiguous" if "audio" in n else "channels_last") for n in names}
    layout.apply(m, choice)
    if mode == "compiled":
        for w in which:
            parent, _, last = w.rpartition(".")
            owner = m.get_submodule(parent)
            setattr(owner, last, torch.compile(getattr(owner, last)))
    opt = torch.optim.Adam(m.parameters(), lr=1e-5, fused=True)
    nets[mode] = (m, opt)

def step(mode):
    m, opt = nets[mode]
    t0 = time.perf_counter()
    loss = losses.total_loss(losses.tribert_loss(m(inputs), feats, labels))
    loss.backward(); opt.step(); opt.zero_grad(set_to_none=True)
    return time.perf_counter() - t0, float(loss.detach())

for mode in nets:
    t0 = time.perf_counter(); w = step(mode)
    print(mode, "warm-up", round(time.perf_counter() - t0, 1), "s loss", w[1], flush=True)
res = {k: [] for k in nets}
for r in range(rounds):
    order = list(nets) if r % 2 == 0 else list(nets)[::-1]
    for mode in order:
        ts = [step(mode)[0] for _ in range(steps)]
        res[mode].append(statistics.median(ts))
        print(r, mode, [round(t, 3) for t in ts], flush=True)
for k, v in res.items(): print(k, "median", round(statistics.median(v), 3), [round(x, 3) for x in v])
print("ratio eager/compiled", round(statistics.median(res["eager"]) / statistics.median(res["compiled"]), 3))
