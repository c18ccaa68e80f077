"""Instrument-classification pre-training of a frames backbone on the training split's solo clips
(``train.frames_pretrain`` epochs, before mix-and-separate; docs/experiments.md section 19).

Sound-of-Pixels conditions its masks on the frames alone. Trained from random weights on the
embedded data its frames network memorises the 351 training videos and recognises 7-46% of
unseen ones, and SoP then separates barely above the mixture; the original SoP starts from
ImageNet weights, which cannot be downloaded here. This trains the same backbone (dilated last
stage) with a linear classifier and cross-entropy on the instrument labels of the training solo
clips (each clip's frames averaged), with ``train.augment``'s crop, flip and colour jitter and a
random permutation of the RGB channels per clip, at the side the model sees. Only training-split
clips and labels are read: the labels are the ones TriBERT's classification losses train on.

``scripts/frames_probe.py`` runs the same training and prints the accuracy on the val and test
solo clips per epoch (the diagnostic); :func:`pretrain_cached` is what ``stages/train.py`` calls.
"""
from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Callable, Optional

import h5py
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from model.crop import MIN_SIDE, playing_area
from model.visual import prepare_frames
from pipeline.classes import NUM_CLASSES
from pipeline.data.shards import list_shards
from pipeline.atomic import atomic_path
from pipeline.train import augment

# the recipe of docs/experiments.md section 19 (AdamW, batch 16, crop area 0.6-1, jitter 0.3)
LR, WEIGHT_DECAY, BATCH, CROP, JITTER = 1e-3, 1e-4, 16, (0.6, 1.0), 0.3


def resized(frames: np.ndarray, size: int) -> torch.Tensor:
    """(T, H, W, 3) uint8 -> (T, size, size, 3) uint8 (bilinear, antialiased)."""
    x = torch.from_numpy(frames)
    if x.shape[1] == size and x.shape[2] == size:
        return x
    x = F.interpolate(x.permute(0, 3, 1, 2).float(), size=(size, size), mode="bilinear",
                      antialias=True, align_corners=False)
    return x.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1)


def solo_clips(clips: str | Path, size: int, unseen: bool = True,
               pose: str | Path | None = None) -> dict[str, tuple[torch.Tensor, ...]]:
    """The solo clips' frames resized to ``size`` and their class indices, as
    ``{"train": (x, y), "eval": (x, y)}``; eval holds the val and test splits (read only with
    ``unseen``). With ``pose`` (the pose shards' directory) the frames keep the shards' side
    and each part also holds the clips' keypoints, ``(x, y, keypoints)``, for playing-area
    crops (:mod:`model.crop`)."""
    data = {"train": ([], [], []), "eval": ([], [], [])}
    for path in list_shards(clips):
        g = h5py.File(Path(pose) / path.name, "r") if pose is not None else None
        with h5py.File(path, "r") as f:
            kind, split, label = f["kind"][:], f["split"][:], f["label"][:]
            if g is not None and len(g["keypoints"]) != len(kind):
                raise ValueError(f"{g.filename}: {len(g['keypoints'])} rows, {path} has "
                                 f"{len(kind)}")
            for i in np.nonzero(kind == b"solo")[0]:
                part = "train" if split[i] == b"train" else "eval"
                if part == "eval" and not unseen:
                    continue
                frames, labels, keypoints = data[part]
                labels.append(int(label[i].argmax()))
                if g is None:
                    frames.append(resized(f["frames"][i], size))
                else:
                    frames.append(torch.from_numpy(f["frames"][i]))
                    keypoints.append(torch.from_numpy(g["keypoints"][i].astype(np.float32)))
        if g is not None:
            g.close()
    out = {}
    for part, (frames, labels, keypoints) in data.items():
        if frames:
            out[part] = (torch.stack(frames), torch.tensor(labels)) + (
                (torch.stack(keypoints),) if keypoints else ())
    if "train" not in out:
        raise ValueError(f"{clips}: no training solo clips to pre-train the frames backbone on")
    return out


class FramesClassifier(nn.Module):
    """A backbone, its feature map pooled over space and the frames' logits averaged. With
    ``crop`` (a margin, :mod:`model.crop`) each clip is first cut to its playing area and resized
    to ``size``."""

    def __init__(self, backbone: nn.Module, pool: str = "max", crop: float | None = None,
                 size: int | None = None):
        super().__init__()
        assert crop is None or size is not None, "crops need the side to resize to"
        self.backbone, self.pool, self.crop, self.size = backbone, pool, crop, size
        self.head = nn.Linear(backbone.out_channels, NUM_CLASSES)

    def forward(self, x: torch.Tensor, keypoints: torch.Tensor | None = None) -> torch.Tensor:
        """(M, T, H, W, 3) uint8 (and with crops their (M, T, P, 68, 3) keypoints) ->
        (M, classes)."""
        M, T = x.shape[:2]
        z = prepare_frames(x)
        if self.crop is not None:
            z = playing_area(z, keypoints, self.crop, self.size)
        z = z.reshape(M * T, 3, *z.shape[-2:])
        feats = self.backbone(z.to(memory_format=torch.channels_last))
        feats = feats.amax(dim=(2, 3)) if self.pool == "max" else feats.mean(dim=(2, 3))
        return self.head(feats).reshape(M, T, -1).mean(1)


def accuracy(net: FramesClassifier, x: torch.Tensor, y: torch.Tensor,
             keypoints: torch.Tensor | None = None) -> float:
    net.eval()
    with torch.no_grad():
        pred = torch.cat([net(x[i:i + 32], None if keypoints is None else keypoints[i:i + 32])
                          .argmax(1) for i in range(0, len(x), 32)])
    return (pred == y).float().mean().item()


def train(net: FramesClassifier, x: torch.Tensor, y: torch.Tensor, epochs: int, *,
          augment_frames: bool = True, crop: tuple[float, float] = CROP,
          channel_shuffle: bool = True, lr: float = LR, batch: int = BATCH,
          keypoints: torch.Tensor | None = None,
          after_epoch: Optional[Callable[[int, float], None]] = None) -> None:
    """Train ``net`` in place for ``epochs`` on (x, y) (with crops, the clips' keypoints,
    moved with the augmentation), drawing from torch's global RNG; ``after_epoch(epoch, mean
    loss)`` is called after each epoch."""
    if (net.crop is None) != (keypoints is None):
        raise ValueError("crops need the clips' keypoints, and keypoints only go with crops")
    net.to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=WEIGHT_DECAY)
    for epoch in range(1, epochs + 1):
        net.train()
        order, total = torch.randperm(len(x)), 0.0
        for b in range(0, len(order), batch):
            idx = order[b:b + batch]
            xb = x[idx]
            kb = keypoints[idx] if keypoints is not None else None
            if augment_frames:
                p = augment.draw(len(idx), crop, JITTER)
                xb = augment.frames(xb, p)
                if kb is not None:
                    kb = augment.points(kb, p, xb.shape[3], xb.shape[2])
            if channel_shuffle:
                xb = torch.stack([clip[..., torch.randperm(3)] for clip in xb])
            loss = F.cross_entropy(net(xb, kb), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        if after_epoch is not None:
            after_epoch(epoch, total / len(x))


def pretrain_cached(backbone: nn.Module, clips: str | Path, size: int, epochs: int, seed: int,
                    cache: str | Path, data_fingerprint: list,
                    log: Callable[[str], None] = print, crop: float | None = None,
                    pose: str | Path | None = None) -> None:
    """Pre-train ``backbone`` in place for ``epochs`` on the training solo clips of ``clips``
    at side ``size`` (with ``crop``, on their playing areas, from the keypoints in ``pose``:
    :mod:`model.crop`), or load the result of the same pre-training from ``cache`` (an
    interrupted or re-run train stage does not pay for it twice). The cache is written
    atomically with a fingerprint of the settings, the backbone's shapes and the data."""
    shapes = {k: list(v.shape) for k, v in backbone.state_dict().items()}
    settings = [epochs, seed, size, LR, WEIGHT_DECAY, BATCH, CROP, JITTER]
    if crop is not None:   # (so caches written without crops keep their key)
        settings += ["crop", crop, MIN_SIDE]
        if pose is None:
            raise ValueError("frames pre-training with crops needs the pose shards' keypoints")
    key = hashlib.sha256(json.dumps(settings + [shapes, data_fingerprint]).encode()).hexdigest()
    cache = Path(cache)
    if cache.exists():
        try:
            saved = torch.load(cache, map_location="cpu", weights_only=True)
            if saved.get("fingerprint") == key:
                backbone.load_state_dict(saved["backbone"])
                log(f"frames backbone: pre-trained weights of the same settings read from {cache}")
                return
        except Exception as e:  # noqa: BLE001 - an unreadable cache is only redone
            log(f"frames backbone: {cache} is unreadable ({type(e).__name__}); pre-training again")
    x, y, *kp = solo_clips(clips, size, unseen=False,
                           pose=pose if crop is not None else None)["train"]
    log(f"frames backbone: pre-training {epochs} epochs on the {len(x)} training solo clips at "
        f"{size} px (instrument labels{'' if crop is None else ', playing-area crops'})")
    rng = torch.get_rng_state()
    torch.manual_seed(seed)
    start = time.time()
    net = FramesClassifier(backbone, crop=crop, size=size)
    train(net, x, y, epochs, keypoints=kp[0] if kp else None, after_epoch=lambda e, loss: log(
        f"frames backbone: epoch {e}/{epochs} loss {loss:.3f} ({time.time() - start:.0f} s)"))
    torch.set_rng_state(rng)       # the separation training draws as without pre-training
    backbone.to(memory_format=torch.contiguous_format)
    backbone.zero_grad(set_to_none=True)
    with atomic_path(cache) as tmp:
        torch.save({"fingerprint": key, "backbone": backbone.state_dict()}, tmp)
