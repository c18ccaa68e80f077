"""Mix-and-separate: what one training step computes and what validation scores (paper
Sec. 3.2.1 "Training Objective" and 3.3; REFERENCE.md "Audio front end").

Training: the batch's N=2 scaled source waveforms are mixed, the mixture's warped log magnitude
goes into the model, and the loss is the weighted BCE between the predicted mask logits and the
binary masks ``mag_n > 0.5 mag_mix`` plus the three weakly-supervised classification losses.

Validation (deterministic pairs of the val split): the sigmoid mask is unwarped to 512 bins,
thresholded at 0.5, multiplied with the mixture magnitude and inverted with the mixture phase;
each estimate is scored (SDR/SIR/SAR, :mod:`pipeline.metrics`) against its 1/N-scaled source,
and the mixture itself gives the baseline SDR. Classification accuracy per stream is the share of
sources whose top-scoring class is one of their labels.
"""
from __future__ import annotations

from typing import Optional

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from model import losses
from model.checkpoint import load_weights, package as make_package
from pipeline import metrics
from pipeline import spectrogram as sp

STREAM_SCORES = {"visual": "visual_scores", "pose": "pose_scores", "audio": "audio_logits"}


POSE_FIELDS = {"pose": "pose.features", "boxes": "pose.boxes", "absent": "pose.absent"}


def erased_pose(model, B: int, N: int, device) -> dict:
    """Pose inputs of a dataset without pose features: every person absent (the pose stream
    erased, as in the supplement's Table 1), so the model sees no pose token."""
    kw = getattr(model, "module", model).init_kwargs
    T, P = kw["frames"], kw["persons"]
    return {"pose": torch.zeros(B, N, T, P, kw["pose_channels"], kw["pose_joints"], device=device),
            "boxes": torch.zeros(B, N, T, P, 5, device=device),
            "absent": torch.ones(B, N, T, P, dtype=torch.bool, device=device)}


def model_inputs(model, batch: dict, feats: dict, device: torch.device) -> dict:
    """The model's input dict from a dataset batch (pipeline.dataset.MixDataset, with the pose
    shards attached as ``extra={"pose": ...}``) and its mixture features."""
    # uint8 frames as the shards store them; the model normalises them (model.visual)
    frames = batch["frames"].to(device, non_blocking=True)
    inputs = {"frames": frames, "log_mag_mix": feats["log_mag_mix"]}
    if POSE_FIELDS["pose"] in batch:
        for key, field in POSE_FIELDS.items():
            inputs[key] = batch[field].to(device, non_blocking=True)
        inputs["absent"] = inputs["absent"].bool()
        inputs["pose"] = inputs["pose"].float()
        inputs["boxes"] = inputs["boxes"].float()
    elif "pose_channels" in getattr(model, "module", model).init_kwargs:  # a model with pose
        inputs.update(erased_pose(model, *frames.shape[:2], device))
    return inputs


def forward(model, batch: dict, device: torch.device) -> tuple[dict, dict]:
    """Mixture features (computed in float32 on ``device``) and the model's outputs."""
    with torch.autocast(device.type, enabled=False):
        feats = sp.mixture_features(batch["audio"].to(device, non_blocking=True).float())
    return feats, model(model_inputs(model, batch, feats, device))


def source_mask_gap(mask_logits: torch.Tensor) -> torch.Tensor:
    """Mean |p_n - p_m| between the sources' mask probabilities of a mixture (B, N, F, T): 0
    when the model predicts the same mask for every source, i.e. ignores the video it is
    conditioned on (ideal binary masks of 2 sources differ on most bins)."""
    p = torch.sigmoid(mask_logits.float())
    return (p[:, :, None] - p[:, None]).abs().mean() * p.shape[1] / max(p.shape[1] - 1, 1)


class SeparationTask:
    """The :class:`model.solver.Task` of TriBERT pre-training and fine-tuning.

    weights: the loss weights {"mask", "visual", "pose", "audio"}.
    val_set: the validation dataset (deterministic pairs); ``val_mixtures`` caps how many are
    scored (0 = all). ``label_map``: optional (21 -> k) index list applied to the labels (the
    11-class fine-tuning).
    """

    def __init__(self, weights: dict, val_set: Optional[Dataset], val_mixtures: int = 0,
                 threshold: float = 0.5, batch_size: int = 4, collate=None,
                 label_map: Optional[list[int]] = None):
        self.weights, self.val_set, self.val_mixtures = weights, val_set, val_mixtures
        self.threshold, self.batch_size, self.collate = threshold, batch_size, collate
        self.label_map = label_map

    def labels(self, batch: dict, device) -> torch.Tensor:
        y = batch["label"].to(device).float()                          # (B, N, 21)
        return y[..., self.label_map] if self.label_map is not None else y

    def loss(self, model, batch: dict, device: torch.device):
        feats, out = forward(model, batch, device)
        terms = losses.tribert_loss(out, feats, self.labels(batch, device))
        total = sum(self.weights[k] * terms[k] for k in self.weights)
        return total, {k: float(v.detach()) for k, v in terms.items()}

    # ---- validation ------------------------------------------------------------------------

    def separate(self, out: dict, feats: dict) -> torch.Tensor:
        """Estimated waveforms (B, N, 65280) from the mask logits (REFERENCE.md, inference)."""
        logits = out["mask_logits"].float()                            # (B, N, 256, T)
        B, N = logits.shape[:2]
        masks = sp.unwarp(torch.sigmoid(logits))                       # (B, N, 512, T)
        masks = (masks > self.threshold).float()
        mag = feats["mix_spec"].abs()[:, None]                         # (B, 1, 512, T)
        phase = torch.angle(feats["mix_spec"])[:, None].expand(B, N, -1, -1)
        est = sp.istft((masks * mag).reshape(B * N, *mag.shape[-2:]),
                       phase.reshape(B * N, *mag.shape[-2:]))
        return est.reshape(B, N, -1)

    def validate(self, model, device: torch.device) -> dict[str, float]:
        loader = DataLoader(self.val_set, batch_size=self.batch_size, shuffle=False,
                            collate_fn=self.collate)
        records, loss_sum, n_batches, gap = [], 0.0, 0, 0.0
        hits = {s: [] for s in STREAM_SCORES}
        limit = self.val_mixtures or len(self.val_set)
        for batch in loader:
            feats, out = forward(model, batch, device)
            y = self.labels(batch, device)
            terms = losses.tribert_loss(out, feats, y)
            loss_sum += float(sum(self.weights[k] * terms[k] for k in self.weights))
            gap += float(source_mask_gap(out["mask_logits"]))
            n_batches += 1
            for stream, key in STREAM_SCORES.items():
                if key not in out:      # the SoP baseline has no classifiers
                    continue
                top = out[key].float().argmax(dim=-1, keepdim=True)     # (B, N, 1)
                hits[stream].append(y.gather(-1, top).flatten().cpu())
            est = self.separate(out, feats).double().cpu().numpy()
            refs = batch["audio"][..., :est.shape[-1]].double().numpy()
            mix = feats["mix"][..., :est.shape[-1]].double().cpu().numpy()
            for b in range(est.shape[0]):
                records.append(metrics.separation_metrics(refs[b], est[b], mix[b]))
            if len(records) >= limit:
                break
        scored = [r for r in records[:limit] if not r.skipped]
        out = {"loss": loss_sum / max(n_batches, 1), "mask_gap": gap / max(n_batches, 1),
               "mixtures": float(len(scored)),
               "skipped": float(len(records[:limit]) - len(scored))}
        for m in ("sdr", "sir", "sar", "sdr_mix"):
            out[m] = float(np.mean([r.mean()[m] for r in scored])) if scored else float("nan")
        for stream, h in hits.items():
            if h:
                out[f"acc_{stream}"] = float(torch.cat(h).mean())
        return out

    # ---- checkpoints -----------------------------------------------------------------------

    def package(self, model) -> dict:
        return make_package(model)

    def load_package(self, model, package: dict) -> None:
        load_weights(model, package)
