"""Mix-and-separate: what one training step computes and what validation scores (paper
Sec. 3.2.1 "Training Objective" and 3.3; REFERENCE.md "Audio front end").

Training: the batch's N=2 scaled source waveforms are mixed, the mixture's warped log magnitude
goes into the model, and the loss is the weighted BCE between the predicted mask logits and the
binary masks ``mag_n > 0.5 mag_mix`` plus the three weakly-supervised classification losses.

Validation (deterministic pairs of the val split): the estimates of the inference that
``evaluate`` and ``tribert separate`` run (:mod:`pipeline.separation.infer`: the sigmoid mask
unwarped to 512 bins, used as ratio masks divided by their sum over the sources,
``mask="normalized"``, the default, as ratio masks, ``"ratio"``, or thresholded at 0.5,
``"binary"``, the paper's output, multiplied with the mixture magnitude and inverted with the
mixture phase); each estimate is scored (SDR/SIR/SAR, :mod:`pipeline.separation.metrics`)
against its 1/N-scaled source,
and the mixture itself gives the baseline SDR. Classification accuracy per stream is the share of
sources whose top-scoring class is one of their labels.
"""
from __future__ import annotations

from typing import Optional

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from model.checkpoint import load_weights, package as make_package
from pipeline.separation import metrics
from pipeline.separation.infer import check_mask, forward, separation_estimates
from pipeline.separation.metrics import score_estimates
from pipeline.train import losses
from pipeline.train.augment import TRAJECTORY, augment as augment_batch, \
    trajectories as augment_trajectories

STREAM_SCORES = {"visual": "visual_scores", "pose": "pose_scores", "audio": "audio_logits"}


class SeparationTask:
    """The :class:`pipeline.train.solver.Task` of TriBERT pre-training and fine-tuning.

    weights: the loss weights {"mask", "visual", "pose", "audio"}.
    val_set: the validation dataset (deterministic pairs); ``val_mixtures`` caps how many are
    scored (0 = all). ``label_map``: optional (21 -> k) index list applied to the labels (the
    11-class fine-tuning).
    """

    def __init__(self, weights: dict, val_set: Optional[Dataset], val_mixtures: int = 0,
                 threshold: float = 0.5, batch_size: int = 4, collate=None,
                 label_map: Optional[list[int]] = None, mask: str = "normalized",
                 augment: bool = False, signal_cap: float = losses.SIGNAL_CAP_DB,
                 augment_trajectory: bool = False):
        self.weights, self.val_set, self.val_mixtures = weights, val_set, val_mixtures
        self.augment = augment   # frame augmentation of training batches (pipeline.train.augment)
        self.augment_trajectory = augment_trajectory   # train.augment_trajectory
        self.threshold, self.batch_size, self.collate = threshold, batch_size, collate
        self.mask = mask
        check_mask(mask)   # an unknown mask kind fails here, not at val
        # the waveform SNR term trains the output that val scores (train.mask)
        # (refused here, before any training, where its mask kind cannot be trained)
        self.signal = losses.check_signal_mask(mask) if weights.get("signal", 0.0) > 0 else None
        self.signal_cap = signal_cap
        # the separated spectrograms' classification trains the output that val scores too
        self.separated = weights.get("separated", 0.0) > 0
        if self.separated:
            losses.check_signal_mask(mask, "train.loss.separated")
        self.label_map = label_map

    def labels(self, batch: dict, device) -> torch.Tensor:
        y = batch["label"].to(device).float()                          # (B, N, 21)
        return y[..., self.label_map] if self.label_map is not None else y

    def loss(self, model, batch: dict, device: torch.device):
        if self.augment and model.training:
            batch = augment_batch(batch)
        if self.augment_trajectory and model.training and TRAJECTORY in batch:
            batch = {**batch, TRAJECTORY: augment_trajectories(batch[TRAJECTORY])}
        feats, out = forward(model, batch, device)
        critic = None
        if self.separated:
            critic = getattr(getattr(model, "module", model), "critic", None)   # DDP or bare
            if critic is None:
                raise ValueError("train.loss.separated > 0 needs a model with a critic "
                                 "(model.critic > 0)")
        terms = losses.tribert_loss(out, feats, self.labels(batch, device), self.signal,
                                    self.signal_cap, critic, self.mask)
        total = sum(self.weights[k] * terms[k] for k in self.weights if k in terms)
        return total, {k: float(v.detach()) for k, v in terms.items()}

    # ---- validation ------------------------------------------------------------------------

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
            # val keeps to what chooses and checks the model: its output, the swap and (until
            # scored once) the ideal masks
            first = len(records)
            scored = all(first + b in cache for b in range(len(batch["audio"])))
            feats, out, ests, gap = separation_estimates(
                model, batch, device, self.threshold, mask=self.mask,
                variants={"swap"} if scored else {"swap", "ibm"})
            y = self.labels(batch, device)
            terms = losses.tribert_loss(out, feats, y, self.signal, self.signal_cap)
            loss_sum += float(sum(self.weights[k] * terms[k] for k in self.weights if k in terms))
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
