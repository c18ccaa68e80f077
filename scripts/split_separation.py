"""Diagnostic (docs/experiments.md, section 6): does a trained model separate the mixtures of
its *training* clips better than those of unseen clips? A large gap means it memorised its
training videos instead of learning the instruments.

Scores the first MIXTURES fixed mixtures (seed 0) of a split with the model in eval mode and,
with --train-mode, again with BatchNorm in training mode (batch statistics), which tells a
train/eval normalisation mismatch apart from memorisation. Prints the mean SDR per variant of
pipeline.separation.metrics.VARIANTS and of the mixture.

Usage (from the repository root, after `dvc repro pose_features`):
    python scripts/split_separation.py MODEL.pt [--split train|val] [--mixtures 32]
        [--weights LAST.pt]   # the weights of a resume checkpoint (e.g. its last epoch)
"""
import argparse

import numpy as np
import torch

from pipeline.separation.metrics import score_estimates
from pipeline.separation.infer import separation_estimates
from pipeline.data.dataset import MixDataset, collate, pose_extra
from pipeline.evaluate.separation import load_model

ap = argparse.ArgumentParser()
ap.add_argument("model")
ap.add_argument("--split", default="val", choices=("train", "val"))
ap.add_argument("--mixtures", type=int, default=32)
ap.add_argument("--weights", help="a resume checkpoint (last.pt) whose weights to score")
ap.add_argument("--train-mode", action="store_true")
ap.add_argument("--clips", default="data/clips")
ap.add_argument("--pose", default="data/pose")
ap.add_argument("--threads", type=int, default=2)
args = ap.parse_args()
torch.set_num_threads(args.threads)
model = load_model(args.model)
if args.weights:
    model.load_state_dict(torch.load(args.weights, map_location="cpu",
                                     weights_only=False)["model"]["state_dict"])
data = MixDataset(args.clips, args.split, seed=0, extra=pose_extra(args.pose))
device = torch.device("cpu")
for mode in ("eval", "train") if args.train_mode else ("eval",):
    model.train(mode == "train")
    sdr = {}
    with torch.no_grad():
        for start in range(0, args.mixtures, 8):
            batch = collate([data[j] for j in range(start, min(start + 8, args.mixtures))])
            feats, out, ests, gap = separation_estimates(model, batch, device, 0.5)
            for scores in score_estimates(batch, feats, ests):
                for name, s in scores.items():
                    sdr.setdefault(name, []).append(s.mean()["sdr"])
                sdr.setdefault("mixture", []).append(scores["model"].mean()["sdr_mix"])
    print(f"{args.split} ({args.mixtures} mixtures, BatchNorm {mode} mode): "
          + ", ".join(f"{k} {np.mean(v):.2f}" for k, v in sdr.items()), flush=True)
