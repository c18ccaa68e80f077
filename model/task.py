"""Mix-and-separate: what one training step computes and what validation scores (paper
Sec. 3.2.1 "Training Objective" and 3.3; REFERENCE.md "Audio front end").

Training: the batch's N=2 scaled source waveforms are mixed, the mixture's warped log magnitude
goes into the model, and the loss is the weighted BCE between the predicted mask logits and the
binary masks ``mag_n > 0.5 mag_mix`` plus the three weakly-supervised classification losses.

Validation (deterministic pairs of the val split): the sigmoid mask is unwarped to 512 bins,
used as a ratio mask (``mask="ratio"``, the default) or thresholded at 0.5 (``"binary"``, the
paper's output), multiplied with the mixture magnitude and inverted with the mixture phase;
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


def source_mask_gap(mask_logits: torch.Tensor, per_mixture: bool = False) -> torch.Tensor:
    """Mean |p_n - p_m| between the sources' mask probabilities of a mixture (B, N, F, T): 0
    when the model predicts the same mask for every source, i.e. ignores the video it is
    conditioned on (ideal binary masks of 2 sources differ on most bins). A scalar, or (B,)
    with ``per_mixture``."""
    p = torch.sigmoid(mask_logits.float())
    gap = (p[:, :, None] - p[:, None]).abs().mean(dim=(1, 2, 3, 4))
    gap = gap * p.shape[1] / max(p.shape[1] - 1, 1)
    return gap if per_mixture else gap.mean()


def masks_to_waveforms(masks: torch.Tensor, feats: dict,
                       threshold: Optional[float]) -> torch.Tensor:
    """Warped masks (B, N, 256, T) in [0, 1] -> waveforms (B, N, 65280) (REFERENCE.md,
    inference): unwarped to 512 bins, thresholded (``None``: used as a ratio mask), multiplied
    with the mixture magnitude and inverted with the mixture phase."""
    B, N = masks.shape[:2]
    masks = sp.unwarp(masks.float())                                   # (B, N, 512, T)
    if threshold is not None:
        masks = (masks > threshold).float()
    mag = feats["mix_spec"].abs()[:, None]                             # (B, 1, 512, T)
    phase = torch.angle(feats["mix_spec"])[:, None].expand(B, N, -1, -1)
    est = sp.istft((masks * mag).reshape(B * N, *mag.shape[-2:]),
                   phase.reshape(B * N, *mag.shape[-2:]))
    return est.reshape(B, N, -1)


SWAPPED = ("frames",) + tuple(POSE_FIELDS) + tuple(POSE_FIELDS.values())


def swap_videos(batch: dict) -> dict:
    """The batch (a dataset batch or the model's inputs) with the order of each mixture's
    videos (frames and pose) reversed: source n is then conditioned on the video of source
    N-1-n, its audio unchanged."""
    return {k: (v.flip(1) if k in SWAPPED else v) for k, v in batch.items()}


MASKS = ("ratio", "binary")   # how predicted mask probabilities become estimates


def mask_threshold(mask: str, threshold: float) -> Optional[float]:
    """The ``threshold`` argument of :func:`masks_to_waveforms` for an output ``mask`` kind."""
    if mask not in MASKS:
        raise ValueError(f"mask: expected one of {MASKS}, got {mask!r}")
    return threshold if mask == "binary" else None


def separation_estimates(model, batch: dict, device: torch.device, threshold: float,
                         swap: bool = True, mask: str = "ratio",
                         ) -> tuple[dict, dict, dict, np.ndarray]:
    """Everything a separation table scores for one batch: (feats, outputs, estimates, mask
    gap per mixture), the estimates as float64 numpy arrays (B, N, L) per variant
    (:data:`pipeline.metrics.VARIANTS`: the thresholded masks, the ratio masks, the model's
    output = the one of them that ``mask`` names (the same array), the model's output with the
    videos swapped, the ideal binary masks)."""
    feats, out = forward(model, batch, device)
    probs = torch.sigmoid(out["mask_logits"].float())
    ests = {"binary": masks_to_waveforms(probs, feats, threshold),
            "ratio": masks_to_waveforms(probs, feats, None),
            "ibm": masks_to_waveforms(feats["masks"], feats, 0.5)}
    if swap:
        swapped = torch.sigmoid(model(model_inputs(model, swap_videos(batch), feats, device))[
            "mask_logits"].float())
        ests["swap"] = masks_to_waveforms(swapped, feats, mask_threshold(mask, threshold))
    ests = {k: v.double().cpu().numpy() for k, v in ests.items()}
    ests["model"] = ests[mask]
    gap = source_mask_gap(out["mask_logits"], per_mixture=True).cpu().numpy()
    return feats, out, ests, gap


def score_estimates(batch: dict, feats: dict, ests: dict, backend: str = "fast",
                    cached: Optional[list] = None) -> list[dict]:
    """Per mixture of the batch: {variant: Scores} against the 1/N-scaled sources, the mixture
    baseline computed once (:func:`pipeline.metrics.separation_metrics_many`). ``cached``: per
    mixture, {variant: Scores} already known (the val set's fixed ideal-mask scores), reused
    instead of recomputed. The ``model`` entry, the same array as one variant's, reuses that
    variant's scores."""
    L = next(iter(ests.values())).shape[-1]
    refs = batch["audio"][..., :L].double().numpy()
    mix = feats["mix"][..., :L].double().cpu().numpy()
    alias = [n for n, e in ests.items() if n != "model" and e is ests.get("model")]
    out = []
    for b in range(refs.shape[0]):
        known = dict(cached[b]) if cached else {}
        todo = {n: e[b] for n, e in ests.items()
                if n not in known and not (n == "model" and alias)}
        scores = {**known, **metrics.separation_metrics_many(refs[b], todo, mix[b], backend)}
        if alias:
            scores["model"] = scores[alias[0]]
        out.append(scores)
    return out


class SeparationTask:
    """The :class:`model.solver.Task` of TriBERT pre-training and fine-tuning.

    weights: the loss weights {"mask", "visual", "pose", "audio"}.
    val_set: the validation dataset (deterministic pairs); ``val_mixtures`` caps how many are
    scored (0 = all). ``label_map``: optional (21 -> k) index list applied to the labels (the
    11-class fine-tuning).
    """

    def __init__(self, weights: dict, val_set: Optional[Dataset], val_mixtures: int = 0,
                 threshold: float = 0.5, batch_size: int = 4, collate=None,
                 label_map: Optional[list[int]] = None, mask: str = "ratio"):
        self.weights, self.val_set, self.val_mixtures = weights, val_set, val_mixtures
        self.threshold, self.batch_size, self.collate = threshold, batch_size, collate
        self.mask = mask
        mask_threshold(mask, threshold)   # an unknown mask kind fails here, not at val
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
        return masks_to_waveforms(torch.sigmoid(out["mask_logits"].float()), feats,
                                  mask_threshold(self.mask, self.threshold))

    def validate(self, model, device: torch.device) -> dict[str, float]:
        """The val table of one epoch over the fixed val mixtures: loss, the model's
        SDR/SIR/SAR/SI-SDR (failures counted, never dropped), the mixture, the ideal binary
        mask (scored once, then reused), the model with the videos swapped, the mask gap and
        the classification accuracies. ``sdr`` chooses the checkpoint."""
        loader = DataLoader(self.val_set, batch_size=self.batch_size, shuffle=False,
                            collate_fn=self.collate)
        records, loss_sum, n_batches, gaps = [], 0.0, 0, []
        hits = {s: [] for s in STREAM_SCORES}
        limit = self.val_mixtures or len(self.val_set)
        cache = getattr(self, "_val_cache", {})
        for batch in loader:
            feats, out, ests, gap = separation_estimates(model, batch, device, self.threshold,
                                                         mask=self.mask)
            for other in MASKS:        # val keeps to what chooses and checks the model
                if other != self.mask:
                    ests.pop(other)
            y = self.labels(batch, device)
            terms = losses.tribert_loss(out, feats, y)
            loss_sum += float(sum(self.weights[k] * terms[k] for k in self.weights))
            gaps.extend(gap.tolist())
            n_batches += 1
            for stream, key in STREAM_SCORES.items():
                if key not in out:      # the SoP baseline has no classifiers
                    continue
                top = out[key].float().argmax(dim=-1, keepdim=True)     # (B, N, 1)
                hits[stream].append(y.gather(-1, top).flatten().cpu())
            start = len(records)
            known = [{"ibm": cache[start + b]} if start + b in cache else {}
                     for b in range(len(gap))]
            for b, scores in enumerate(score_estimates(batch, feats, ests, cached=known)):
                cache[start + b] = scores["ibm"]
                records.append(metrics.Record(str(start + b), ("?",) * len(scores["ibm"].sdr),
                                              scores))
            if len(records) >= limit:
                break
        self._val_cache = cache
        agg = metrics.aggregate(records[:limit])
        model_ = agg["overall"]["model"]
        out = {"loss": loss_sum / max(n_batches, 1),
               "mask_gap": float(np.mean(gaps[:limit])) if gaps else float("nan"),
               "mixtures": float(agg["n_mixtures"]), "failures": float(agg["failures"]["model"])}
        for m in ("sdr", "sir", "sar", "si_sdr", "sdr_mix"):
            v = model_[m]["mean"]
            out[m] = float("nan") if v is None else v
        for variant in ("ibm", "swap"):
            v = agg["overall"][variant]["sdr"]["mean"]
            out[f"{variant}_sdr"] = float("nan") if v is None else v
        out["swap_drop"] = out["sdr"] - out["swap_sdr"]
        for stream, h in hits.items():
            if h:
                out[f"acc_{stream}"] = float(torch.cat(h).mean())
        return out

    # ---- checkpoints -----------------------------------------------------------------------

    def package(self, model) -> dict:
        return make_package(model)

    def load_package(self, model, package: dict) -> None:
        load_weights(model, package)
