"""Diagnostic (docs/experiments.md, section 19): can a frames network trained from random
weights recognise the instrument in a solo clip of a video it has not seen? Sound-of-Pixels
conditions on nothing else, so if this fails its separation cannot work.

Trains a backbone of model.backbone (dilated last stage, as the SoP frames network) and a
linear classifier with cross-entropy on the frames of the training split's solo clips, each
clip's three frames averaged, and prints per epoch the accuracy on the val + test solo clips
(21 classes, chance 0.048) and on 96 training clips.

Usage (from the repository root, after `dvc repro decode`):
    python scripts/frames_probe.py [--size 112] [--backbone resnet_tiny] [--augment]
        [--channel-shuffle] [--pool max|avg] [--epochs 20] [--seed 0] [--save BACKBONE.pt]

The val and test clips are only scored, never used to choose weights: --save keeps the last
epoch's backbone.
"""
import argparse
import time

import h5py
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from model.backbone import make_backbone
from model.visual import prepare_frames
from pipeline.classes import NUM_CLASSES
from pipeline.data.shards import list_shards
from pipeline.train import augment

ap = argparse.ArgumentParser()
ap.add_argument("--clips", default="data/clips")
ap.add_argument("--size", type=int, default=112, help="frame side the network sees")
ap.add_argument("--backbone", default="resnet_tiny")
ap.add_argument("--augment", action="store_true", help="train.augment's crop, flip and jitter")
ap.add_argument("--crop", default="0.6,1.0", help="augmentation crop area share range")
ap.add_argument("--channel-shuffle", action="store_true", help="permute RGB per clip")
ap.add_argument("--pool", default="max", choices=("max", "avg"))
ap.add_argument("--epochs", type=int, default=20)
ap.add_argument("--batch", type=int, default=16)
ap.add_argument("--lr", type=float, default=1e-3)
ap.add_argument("--seed", type=int, default=0)
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--save", help="write the last epoch's backbone here, as a torchvision-named "
                "state_dict that model.backbone_weights loads")
args = ap.parse_args()
torch.manual_seed(args.seed)
torch.set_num_threads(args.threads)


def resized(frames: np.ndarray) -> torch.Tensor:
    """(T, H, W, 3) uint8 -> (T, size, size, 3) uint8."""
    x = torch.from_numpy(frames)
    if x.shape[1] == args.size:
        return x
    x = F.interpolate(x.permute(0, 3, 1, 2).float(), size=(args.size,) * 2, mode="bilinear",
                      antialias=True, align_corners=False)
    return x.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1)


data = {"train": ([], []), "eval": ([], [])}
for path in list_shards(args.clips):
    with h5py.File(path, "r") as f:
        kind, split, label = f["kind"][:], f["split"][:], f["label"][:]
        for i in np.nonzero(kind == b"solo")[0]:
            frames, labels = data["train" if split[i] == b"train" else "eval"]
            frames.append(resized(f["frames"][i]))
            labels.append(int(label[i].argmax()))
x_train, y_train = torch.stack(data["train"][0]), torch.tensor(data["train"][1])
x_eval, y_eval = torch.stack(data["eval"][0]), torch.tensor(data["eval"][1])
print(f"{len(x_train)} training and {len(x_eval)} val+test solo clips at {args.size} px",
      flush=True)

backbone = make_backbone(args.backbone, dilate_last=True)
head = nn.Linear(backbone.out_channels, NUM_CLASSES)
net = nn.ModuleDict({"backbone": backbone, "head": head}).to(memory_format=torch.channels_last)
opt = torch.optim.AdamW(net.parameters(), lr=args.lr, weight_decay=1e-4)
crop = tuple(float(v) for v in args.crop.split(","))


def logits(x: torch.Tensor) -> torch.Tensor:
    """(M, T, H, W, 3) uint8 -> (M, classes), the frames' logits averaged."""
    M, T = x.shape[:2]
    z = prepare_frames(x).reshape(M * T, 3, *x.shape[2:4])
    feats = backbone(z.to(memory_format=torch.channels_last))
    feats = feats.amax(dim=(2, 3)) if args.pool == "max" else feats.mean(dim=(2, 3))
    return head(feats).reshape(M, T, -1).mean(1)


def accuracy(x: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        pred = torch.cat([logits(x[i:i + 32]).argmax(1) for i in range(0, len(x), 32)])
    return (pred == y).float().mean().item()


start = time.time()
for epoch in range(1, args.epochs + 1):
    net.train()
    order, total = torch.randperm(len(x_train)), 0.0
    for b in range(0, len(order), args.batch):
        idx = order[b:b + args.batch]
        x = x_train[idx]
        if args.augment:
            x = augment.frames(x, augment.draw(len(idx), crop, 0.3))
        if args.channel_shuffle:
            x = torch.stack([clip[..., torch.randperm(3)] for clip in x])
        loss = F.cross_entropy(logits(x), y_train[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        total += loss.item() * len(idx)
    net.eval()
    print(f"epoch {epoch}: loss {total / len(x_train):.3f} | train accuracy "
          f"{accuracy(x_train[:96], y_train[:96]):.2f} | val+test accuracy "
          f"{accuracy(x_eval, y_eval):.3f} | {time.time() - start:.0f} s", flush=True)

if args.save:
    torch.save(backbone.state_dict(), args.save)
    print(f"backbone -> {args.save}")
