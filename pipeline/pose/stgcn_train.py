"""Stage ``stgcn_train``: re-train ST-GCN on the train split's keypoint sequences to classify the
instrument (paper Sec. 3.1: "re-train their model on our dataset"), multi-label over the 21
classes (duets have two), and measure it on the val split.

Training samples are random windows of ``window`` frames (zero-padded when a video is shorter),
``windows_per_video`` per video per epoch; AdamW, cosine learning rate,
BCE on the logits. Evaluation covers each val video with consecutive windows, averages their
sigmoid scores per video, and reports (BatchNorm statistics are re-estimated with the final
weights before, see :func:`recalibrate_bn`):
  accuracy  share of videos whose top-n classes are exactly their n labels (n = 1 solo, 2 duet)
  top1      share of videos whose best class is one of their labels
  loss      mean BCE of the video-level scores
plus ``train_loss``, the last epoch's mean training loss (with dropout).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from pipeline import atomic
from pipeline.data import manifest
from pipeline.classes import CLASSES, multi_hot
from pipeline.pose import keypoints as kpio
from pipeline.schema import StgcnParams
from pipeline.pose.stgcn import STGCN, drop_hands, save_checkpoint, to_input


@dataclass(frozen=True)
class Sequence:
    """One video's network input (3, T, V, M) and multi-hot label (21,)."""

    video_id: str
    x: np.ndarray
    y: np.ndarray


def load_sequences(manifest_path: str | Path, keypoint_dir: str | Path, split: str,
                   hands: bool = True) -> list[Sequence]:
    """The keypoint sequences of one split's usable videos (those with a keypoint file); body
    joints only without ``hands``."""
    keypoint_dir = Path(keypoint_dir)
    out = []
    for row in manifest.read(manifest_path):
        path = keypoint_dir / f"{row.video_id}.npz"
        if row.split != split or not row.ok or not path.exists():
            continue
        k = kpio.load(path)
        x = to_input(k["keypoints"], k["boxes"])
        out.append(Sequence(row.video_id, x if hands else drop_hands(x),
                            np.asarray(multi_hot(row.classes), np.float32)))
    return out


def window_at(x: np.ndarray, start: int, length: int) -> np.ndarray:
    """Frames [start, start + length) of (3, T, V, M), zero-padded past the end."""
    out = np.zeros((x.shape[0], length) + x.shape[2:], np.float32)
    part = x[:, start:start + length]
    out[:, :part.shape[1]] = part
    return out


def sample_batches(seqs: list[Sequence], p: StgcnParams, rng: np.random.Generator):
    """One epoch of (x (B, 3, W, V, M), y (B, 21)) batches of random windows."""
    items = [(i, int(rng.integers(0, max(1, seqs[i].x.shape[1] - p.window + 1))))
             for i in range(len(seqs)) for _ in range(p.windows_per_video)]
    order = rng.permutation(len(items))
    for b in range(0, len(order), p.batch_size):
        chosen = [items[j] for j in order[b:b + p.batch_size]]
        x = np.stack([window_at(seqs[i].x, s, p.window) for i, s in chosen])
        y = np.stack([seqs[i].y for i, _ in chosen])
        yield torch.from_numpy(x), torch.from_numpy(y)


@torch.no_grad()
def video_scores(model: STGCN, x: np.ndarray, window: int, batch_size: int = 16) -> np.ndarray:
    """Sigmoid class scores of one video (3, T, V, M): the mean over consecutive windows."""
    model.eval()
    starts = list(range(0, max(1, x.shape[1] - window // 2), window)) or [0]
    wins = np.stack([window_at(x, s, window) for s in starts])
    logits = torch.cat([model(torch.from_numpy(wins[i:i + batch_size]))
                        for i in range(0, len(wins), batch_size)])
    return torch.sigmoid(logits).mean(0).numpy()


def evaluate(model: STGCN, seqs: list[Sequence], window: int) -> dict:
    """accuracy / top1 / loss over videos (module docstring); NaN when ``seqs`` is empty."""
    if not seqs:
        return {"accuracy": float("nan"), "top1": float("nan"), "loss": float("nan"), "videos": 0}
    exact, top1, losses = [], [], []
    for s in seqs:
        p = video_scores(model, s.x, window)
        n = int(s.y.sum())
        best = set(np.argsort(-p)[:n].tolist())
        exact.append(best == set(np.flatnonzero(s.y).tolist()))
        top1.append(bool(s.y[int(np.argmax(p))]))
        q = np.clip(p, 1e-6, 1 - 1e-6)
        losses.append(float(-(s.y * np.log(q) + (1 - s.y) * np.log(1 - q)).mean()))
    return {"accuracy": float(np.mean(exact)), "top1": float(np.mean(top1)),
            "loss": float(np.mean(losses)), "videos": len(seqs)}


@torch.no_grad()
def recalibrate_bn(model: STGCN, batches) -> None:
    """Re-estimate every BatchNorm's running statistics with the final weights, as the plain
    average over ``batches``: a short run leaves the momentum-0.1 estimates far from the data's
    (the frame-normalised coordinates have a variance near 1e-3, the initial estimate is 1)."""
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None  # cumulative average
    model.train()
    for x, _ in batches:
        model(x)
    for bn in bns:
        bn.momentum = 0.1
    model.eval()


def train(train_seqs: list[Sequence], val_seqs: list[Sequence], p: StgcnParams,
          log=print) -> tuple[STGCN, dict]:
    """Train a fresh ST-GCN; return it (eval mode) and its final metrics."""
    if not train_seqs:
        raise ValueError("stgcn_train: no training sequences (is the keypoints stage output empty?)")
    torch.manual_seed(p.seed)
    rng = np.random.default_rng(p.seed)
    model = STGCN(num_classes=len(CLASSES), width=p.width, dropout=p.dropout)
    model.hands = p.hands
    opt = torch.optim.AdamW(model.parameters(), lr=p.lr, weight_decay=p.weight_decay)
    steps_per_epoch = math.ceil(len(train_seqs) * p.windows_per_video / p.batch_size)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, p.epochs * steps_per_epoch)
    loss_fn = nn.BCEWithLogitsLoss()
    for epoch in range(p.epochs):
        model.train()
        total, n = 0.0, 0
        for x, y in sample_batches(train_seqs, p, rng):
            loss = loss_fn(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total, n = total + float(loss.detach()) * len(x), n + len(x)
        log(f"stgcn epoch {epoch + 1}/{p.epochs}: train loss {total / n:.4f}")
    recalibrate_bn(model, sample_batches(train_seqs, p, rng))
    metrics = {f"val_{k}": v for k, v in evaluate(model, val_seqs, p.window).items()}
    metrics.update(train_loss=total / n, train_videos=len(train_seqs))
    log(f"stgcn val accuracy {metrics['val_accuracy']:.3f} top1 {metrics['val_top1']:.3f} "
        f"({metrics['val_videos']} videos)")
    return model, metrics


def run(manifest_path, keypoint_dir, model_path, metrics_path, p: StgcnParams, log=print) -> dict:
    """The stage: train on the train split, write the checkpoint and metrics.json atomically."""
    torch.set_num_threads(p.threads)
    train_seqs = load_sequences(manifest_path, keypoint_dir, "train", p.hands)
    val_seqs = load_sequences(manifest_path, keypoint_dir, "val", p.hands)
    log(f"stgcn: {len(train_seqs)} train and {len(val_seqs)} val videos"
        f"{'' if p.hands else ', body joints only (stgcn.hands: false)'}")
    model, metrics = train(train_seqs, val_seqs, p, log)
    save_checkpoint(model, model_path, {"classes": list(CLASSES), "window": p.window,
                                        "metrics": metrics})
    atomic.write_json(metrics_path, {k: (None if isinstance(v, float) and math.isnan(v) else v)
                                     for k, v in metrics.items()})
    return metrics
