"""Separation inference: what every caller of a trained model runs to get waveforms (paper
Sec. 3.3; REFERENCE.md "Audio front end", inference). Validation in training
(:mod:`pipeline.train.task`), ``evaluate`` (:mod:`pipeline.evaluate.separation`), ``embed``
(:mod:`pipeline.evaluate.embeddings`) and ``tribert separate`` (:mod:`pipeline.tools.separate`)
all call these functions, so the four cannot drift apart:

- model inputs from a dataset batch (:func:`model_inputs`; an erased pose stream for a dataset
  without pose features) and the forward pass with the mixture features (:func:`forward`),
- mask probabilities -> waveforms (:func:`masks_to_waveforms`, :func:`estimate_waveforms`): the
  sigmoid mask unwarped to 512 bins, used as a ratio mask (``mask="ratio"``), as ratio masks
  divided by their sum over the mixture's sources (``"normalized"``, the default output) or
  thresholded (``"binary"``, the paper's output), multiplied with the mixture magnitude and
  inverted with the mixture phase (:func:`output_masks`),
- every variant a separation table scores (:func:`separation_estimates`),
- overlap-add over inputs longer than the model's window (:func:`window_starts`,
  :func:`cut_windows`, :func:`overlap_add`).
"""
from __future__ import annotations

from typing import Optional

import numpy as np
import torch

from pipeline.data import spectrogram as sp
from pipeline.data.spectrogram import CLIP_SAMPLES, ISTFT_SAMPLES

SPAN = ISTFT_SAMPLES          # samples of one window's estimate (65280); windows hop <= SPAN / 2


POSE_FIELDS = {"pose": "pose.features", "boxes": "pose.boxes", "absent": "pose.absent",
               "keypoints": "pose.keypoints", "trajectory": "pose.trajectory"}


def erased_pose(model, B: int, N: int, device) -> dict:
    """Pose inputs of a dataset without pose features: every person absent (the pose stream
    erased, as in the supplement's Table 1), so the model sees no pose token."""
    kw = getattr(model, "module", model).init_kwargs
    T, P = kw["frames"], kw["persons"]
    return {"pose": torch.zeros(B, N, T, P, kw["pose_channels"], kw["pose_joints"], device=device),
            "boxes": torch.zeros(B, N, T, P, 5, device=device),
            "absent": torch.ones(B, N, T, P, dtype=torch.bool, device=device)}


def model_inputs(model, batch: dict, feats: dict, device: torch.device) -> dict:
    """The model's input dict from a dataset batch (pipeline.data.dataset.MixDataset, with the pose
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
        inputs["keypoints"] = inputs["keypoints"].float()
        inputs["trajectory"] = inputs["trajectory"].float()
    elif "pose_channels" in getattr(model, "module", model).init_kwargs:  # a model with pose
        inputs.update(erased_pose(model, *frames.shape[:2], device))
    if getattr(getattr(model, "module", model), "init_kwargs", {}).get("oracle") \
            and "label" in batch:
        inputs["label"] = batch["label"].to(device, non_blocking=True).float()
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


MASKS = ("normalized", "ratio", "binary")   # how mask probabilities become the output's masks


def check_mask(mask: str) -> str:
    """``mask`` if it names a kind of :data:`MASKS`, else a one-line ValueError."""
    if mask not in MASKS:
        raise ValueError(f"mask: expected one of {MASKS}, got {mask!r}")
    return mask


def output_masks(probs: torch.Tensor, mask: str = "normalized",
                 threshold: float = 0.5) -> torch.Tensor:
    """Mask probabilities (B, N, F, T) of a mixture's N sources -> the masks that multiply the
    mixture magnitude:

    - ``ratio``: the probabilities themselves (a soft mask per source, Sound-of-Pixels');
    - ``normalized``: each source's probability divided by their sum over the N sources, so the
      N estimates add up to the mixture (mixture consistency, Wisdom et al. 2019). The masks are
      trained towards binary targets with a BCE and, unsure, under-claim: the two sources' ratio
      masks summed to well under 1 on many bins of the test mixtures, and scaling them up to 1
      raised test SDR by 0.7-0.9 dB (docs/experiments.md section 33). It assumes the mixture holds
      only the N conditioned sources, as mix-and-separate's mixtures do; with one source (N = 1)
      there is nothing to share with, and its ratio mask is kept;
    - ``binary``: the probabilities thresholded at ``threshold`` (the paper's output).
    """
    check_mask(mask)
    if mask == "binary":
        return (probs > threshold).float()
    if mask == "normalized" and probs.shape[1] > 1:
        return probs / probs.sum(dim=1, keepdim=True).clamp_min(1e-12)
    return probs


def masks_to_waveforms(masks: torch.Tensor, feats: dict, mask: str = "normalized",
                       threshold: float = 0.5) -> torch.Tensor:
    """Warped mask probabilities (B, N, 256, T) in [0, 1] -> waveforms (B, N, 65280)
    (REFERENCE.md, inference): unwarped to 512 bins, made the output's masks
    (:func:`output_masks`), multiplied with the mixture magnitude and inverted with the mixture
    phase."""
    B, N = masks.shape[:2]
    masks = output_masks(sp.unwarp(masks.float()), mask, threshold)   # (B, N, 512, T)
    mag = feats["mix_spec"].abs()[:, None]                             # (B, 1, 512, T)
    phase = torch.angle(feats["mix_spec"])[:, None].expand(B, N, -1, -1)
    est = sp.istft((masks * mag).reshape(B * N, *mag.shape[-2:]),
                   phase.reshape(B * N, *mag.shape[-2:]))
    return est.reshape(B, N, -1)


def ideal_mask_waveforms(feats: dict) -> torch.Tensor:
    """The ideal binary masks' estimates (B, N, 65280): the training targets ``mag_n > 0.5
    mag_mix`` of :func:`pipeline.data.spectrogram.mixture_features` through the output's unwarp
    and iSTFT with the mixture phase, the recipe's ceiling that every separation table reports."""
    return masks_to_waveforms(feats["masks"], feats, "binary", 0.5)


# (an oracle-conditioned model's ``label`` stands for its video: model.oracle)
SWAPPED = ("frames", "label") + tuple(POSE_FIELDS) + tuple(POSE_FIELDS.values())


def swap_videos(batch: dict) -> dict:
    """The batch (a dataset batch or the model's inputs) with the order of each mixture's
    videos (frames and pose) reversed: source n is then conditioned on the video of source
    N-1-n, its audio unchanged."""
    return {k: (v.flip(1) if k in SWAPPED else v) for k, v in batch.items()}


# what separation_estimates can compute
VARIANT_NAMES = ("binary", "ratio", "normalized", "ibm", "swap")


def sources_independent(model) -> bool:
    """Whether, in eval mode, each source's outputs depend only on the mixture and on that
    source's own video: true of TriBERT and Sound-of-Pixels (each source is its own token
    sequence or frames pass, the mixture's audio network is shared), which declare it with a
    ``sources_independent`` class attribute (tests/model/test_conditioning.py checks it
    against a real swapped forward pass). Then the outputs with a mixture's videos swapped are
    the outputs of the other sources, and the swap variant needs no second forward pass."""
    m = getattr(model, "module", model)
    return bool(getattr(m, "sources_independent", False)) and not m.training


def separation_estimates(model, batch: dict, device: torch.device, threshold: float,
                         swap: bool = True, mask: str = "normalized",
                         variants: Optional[set] = None,
                         ) -> tuple[dict, dict, dict, np.ndarray]:
    """Everything a separation table scores for one batch: (feats, outputs, estimates, mask
    gap per mixture), the estimates as float64 numpy arrays (B, N, L) per variant
    (:data:`pipeline.separation.metrics.VARIANTS`: the thresholded, ratio and normalized masks'
    estimates (:func:`output_masks`), the model's output = the one of them that ``mask`` names
    (the same array), the model's output with the videos swapped, the ideal binary masks).
    ``variants``: only these of :data:`VARIANT_NAMES` (None: all; the ``mask`` one and, with
    ``swap``, the swapped one are always made). The swapped estimates come from a second
    forward pass with :func:`swap_videos`, or, for a model whose sources are independent
    (:func:`sources_independent`), from the first pass's outputs in the other order."""
    want = set(VARIANT_NAMES if variants is None else variants) | {check_mask(mask)}
    unknown = want - set(VARIANT_NAMES)
    if unknown:
        raise ValueError(f"variants: unknown {sorted(unknown)}; expected some of {VARIANT_NAMES}")
    feats, out = forward(model, batch, device)
    probs = torch.sigmoid(out["mask_logits"].float())
    ests = {}
    for kind in MASKS:
        if kind in want:
            ests[kind] = masks_to_waveforms(probs, feats, kind, threshold)
    if "ibm" in want:
        ests["ibm"] = ideal_mask_waveforms(feats)
    ests = {k: v.double().cpu().numpy() for k, v in ests.items()}
    if swap:
        if sources_independent(model):
            ests["swap"] = np.ascontiguousarray(ests[mask][:, ::-1])
        else:
            swapped = torch.sigmoid(model(model_inputs(model, swap_videos(batch), feats,
                                                       device))["mask_logits"].float())
            ests["swap"] = masks_to_waveforms(swapped, feats, mask, threshold
                                              ).double().cpu().numpy()
    ests["model"] = ests[mask]
    gap = source_mask_gap(out["mask_logits"], per_mixture=True).cpu().numpy()
    return feats, out, ests, gap


def estimate_waveforms(mask_logits: torch.Tensor, feats: dict, mask: str = "normalized",
                       threshold: float = 0.5) -> torch.Tensor:
    """Estimated waveforms (B, N, 65280) from the model's mask logits (REFERENCE.md,
    inference), with the output masks of :func:`output_masks`."""
    return masks_to_waveforms(torch.sigmoid(mask_logits.float()), feats, mask, threshold)


# --------------------------------------------------------------------------------------------
# overlap-add of windows


def window_starts(n_samples: int, span: int = SPAN) -> np.ndarray:
    """Start samples of the windows covering ``n_samples`` input samples, every window inside
    the input: the first at 0, the last ending at ``n_samples`` (one window at 0 when the input
    is at most ``span`` long), evenly spaced at most ``span/2`` apart.

    Windows are not centred on the input's edges with zero padding around it: a window half
    filled with silence is an input the model never trained on, and on rendered test-split pairs
    (``tribert bench separate``, 6-s inputs) the padded windows cost 2.9 dB [1.8, 4.0] per part
    against windows inside the input (docs/experiments.md, section 13)."""
    assert n_samples >= 1 and span % 2 == 0, (n_samples, span)
    if n_samples <= span:
        return np.zeros(1, np.int64)
    count = 1 + -(-(n_samples - span) // (span // 2))
    return np.round(np.linspace(0, n_samples - span, count)).astype(np.int64)


def synthesis_window(span: int = SPAN) -> np.ndarray:
    """Periodic Hann window: ``w[n] + w[n + span/2] = 1``, so half-overlapped copies sum to 1."""
    n = np.arange(span)
    return 0.5 - 0.5 * np.cos(2 * np.pi * n / span)


def cut_windows(wave: np.ndarray, starts: np.ndarray, length: int = CLIP_SAMPLES) -> np.ndarray:
    """(K, length) float32 windows of ``wave`` at ``starts`` (zeros past the input's end: the
    model's input is ``CLIP_SAMPLES``, 255 samples more than an estimate covers, and a short input
    is padded to one window)."""
    assert starts[0] >= 0, starts
    padded = np.zeros(max(len(wave), int(starts[-1]) + length), np.float32)
    padded[:len(wave)] = wave
    return np.stack([padded[s:s + length] for s in starts])


def overlap_add(pieces: np.ndarray, starts: np.ndarray, n_samples: int) -> np.ndarray:
    """Estimates ``(K, S, span)`` of K windows for S sources -> ``(S, n_samples)``: a weighted
    mean of the windows over each sample, the weights Hann cross-fades between neighbouring
    windows (:func:`synthesis_window`), flat over the first window's first half and the last
    window's second half, where no other window overlaps."""
    k, s, span = pieces.shape
    assert len(starts) == k and starts[0] >= 0, (pieces.shape, starts)
    size = max(n_samples, int(starts[-1]) + span)
    out = np.zeros((s, size), np.float64)
    total = np.zeros(size, np.float64)
    hann = synthesis_window(span)
    for i, (piece, start) in enumerate(zip(pieces, starts)):
        w = hann.copy()
        if i == 0:
            w[:span // 2] = 1.0
        if i == k - 1:
            w[span // 2:] = 1.0
        out[:, start:start + span] += piece * w
        total[start:start + span] += w
    assert total[:n_samples].min() > 0, "windows leave samples uncovered"
    return (out[:, :n_samples] / total[:n_samples]).astype(np.float32)
