"""The official TriBERT training step on a CUDA GPU, timed like `tribert bench train` times ours.

Usage (scripts/gpu/run.sh): python scripts/gpu/official_cuda.py --script DIR/official_step.py \
    --repo OFFICIAL_TREE --batch 12 --steps 6
The steering folder's official_step.py builds the official model unchanged (its model, config,
optimizer and random batch); it times on the CPU, where it turns ``.cuda()`` into a no-op. Here
``.cuda()`` stays real (the official NetWrapper moves each input to the GPU itself, as in its
training loop), and every phase ends with ``torch.cuda.synchronize()`` so a phase's time is its
kernels' time. One JSON object on stdout: the medians of forward, backward, optimizer and step.
"""
import argparse
import contextlib
import importlib.util
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--script", required=True, type=Path, help="official_step.py")
    ap.add_argument("--repo", required=True, help="a plain copy of the official tree (tribert/, "
                    "config/, train_trimodal.py)")
    ap.add_argument("--batch", type=int, default=12)
    ap.add_argument("--steps", type=int, default=6)
    args = ap.parse_args()
    spec = importlib.util.spec_from_file_location("official_step", args.script)
    off = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(off)
    import torch
    if not torch.cuda.is_available():
        raise SystemExit("official_cuda.py: no CUDA device")
    tmp = Path(tempfile.mkdtemp(prefix="tribert-official-"))
    try:
        for name in off.OFFICIAL_PATHS:   # a plain copy (inside a git work tree, git would
            src = Path(args.repo) / name    # answer for the enclosing repository)
            (shutil.copytree if src.is_dir() else shutil.copy2)(src, tmp / name)
        sys.path[:0] = [str(off.SHIMS), str(tmp)]
        torch.manual_seed(42)
        with contextlib.redirect_stdout(sys.stderr):
            model, config, optimizer = off.build(tmp, 2)
            batch = off.make_batch(args.batch, config, 42)
            model.train()

            def step():
                data = off.fresh(batch)
                model.zero_grad()
                marks = [time.perf_counter()]
                loss, _ = model.forward(data, config)
                torch.cuda.synchronize(); marks.append(time.perf_counter())
                loss.backward()
                loss.item()
                torch.cuda.synchronize(); marks.append(time.perf_counter())
                optimizer.step()
                optimizer.zero_grad()
                torch.cuda.synchronize(); marks.append(time.perf_counter())
                return [b - a for a, b in zip(marks, marks[1:])]

            step()
            times = [step() for _ in range(args.steps)]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    fwd, bwd, opt = (statistics.median(t[i] for t in times) for i in range(3))
    params = sum(p.numel() for p in model.parameters())
    json.dump({"model": "official TriBERT, paper config",                "device": torch.cuda.get_device_name(0), "torch": torch.__version__,
               "batch": args.batch, "sources": 2, "steps": args.steps, "params": params,
               "params_match": params == off.EXPECTED_PARAMS,
               "step_forward_s": fwd, "step_backward_s": bwd, "step_optimizer_s": opt,
               "step_total_s": fwd + bwd + opt,
               "samples_per_s": args.batch / (fwd + bwd + opt),
               "peak_gpu_memory_gb": torch.cuda.max_memory_allocated() / 1e9,
               "step_times_s": [[round(x, 4) for x in t] for t in times]}, sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
