"""Training losses (paper 3.2.1, "Training Objective"; REFERENCE.md): the weighted per-pixel BCE
on binary masks and the three classification BCEs (all weight 1 in the official code), and an
optional fifth term that is not the paper's: the signal-to-noise ratio of the separated
waveforms that the model outputs (:func:`signal_loss`, ``train.loss.signal``)."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def mask_weight(mag_mix: torch.Tensor) -> torch.Tensor:
    """SoP's loss weight clamp(log1p(mag_mix), 1e-3, 10) of the (warped, linear) mixture
    magnitude. Shape: (B, 1, F, T) -> (B, 1, F, T)."""
    return torch.clamp(torch.log1p(mag_mix), 1e-3, 10.0)


def mask_loss(mask_logits: torch.Tensor, masks: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Weighted BCE between mask logits (B, N, F, T) and binary masks (B, N, F, T); ``weight``
    (B, 1, F, T) broadcasts over sources. Mean over sources and pixels."""
    assert mask_logits.shape == masks.shape, (mask_logits.shape, masks.shape)
    return F.binary_cross_entropy_with_logits(mask_logits.float(), masks.float(),
                                              weight.float().expand_as(masks))


SIGNAL_CAP_DB = 30.0   # signal_loss stops rewarding a source past this SNR


def check_signal_mask(mask: str, term: str = "train.loss.signal") -> str:
    """``mask`` if :func:`signal_loss` (or ``term``, another loss on the output's masks) can
    train it (normalized or ratio), else a one-line ValueError (binary masks have no gradient;
    an unknown kind is refused by name)."""
    from pipeline.separation.infer import check_mask

    if check_mask(mask) == "binary":
        raise ValueError(f"{term} needs train.mask normalized or ratio (binary masks "
                         "have no gradient)")
    return mask


def signal_loss(mask_logits: torch.Tensor, feats: dict, mask: str = "normalized",
                cap_db: float = SIGNAL_CAP_DB) -> torch.Tensor:
    """Mean negative SNR (dB) of the waveforms that inference makes from ``mask_logits``
    (B, N, 256, T): the masks unwarped, made the output's ``mask`` kind (``normalized`` or
    ``ratio``; ``binary`` has no gradient), applied to the mixture magnitude and inverted with
    its phase (:func:`pipeline.separation.infer.masks_to_waveforms`), against the scaled sources
    ``feats["sources"]`` (B, N, L).

    Why: the BCE trains each mask towards a binary target on a log-compressed weight, while
    what is scored is the waveform of the ratio masks normalised over the sources; this term
    trains that output itself, and weighs the bins by their energy as SDR does. Per source:
    ``10 log10 |s|^2 - 10 log10(|s - s_hat|^2 + tau |s|^2)`` with ``tau = 10^(-cap_db / 10)``,
    so that a source already separated to ``cap_db`` stops taking the gradient from the others
    (the soft cap of Demucs' and asteroid's SNR losses). Computed in float32, autocast off."""
    from pipeline.separation.infer import masks_to_waveforms

    check_signal_mask(mask)
    with torch.autocast(mask_logits.device.type, enabled=False):
        est = masks_to_waveforms(torch.sigmoid(mask_logits.float()), feats, mask)   # (B, N, L')
        ref = feats["sources"][..., :est.shape[-1]].float()
        tau = 10.0 ** (-cap_db / 10.0)
        eps = 1e-8
        power = ref.pow(2).sum(-1)
        error = (ref - est).pow(2).sum(-1)
        snr = 10 * torch.log10(power + eps) - 10 * torch.log10(error + tau * power + eps)
        return -snr.mean()


CRITIC_EPS = 1e-3   # log(mag + this): the critic's input; bounds the gradient at silent bins


def separated_loss(critic: torch.nn.Module, mask_logits: torch.Tensor, feats: dict,
                   labels: torch.Tensor, mask: str = "normalized") -> torch.Tensor:
    """``train.loss.separated``: each separated spectrogram classified as its own video's
    instruments (after Co-Separation, Gao & Grauman 2019; not the paper's). ``critic``
    (:class:`model.heads.SpectrogramCritic`) learns the classes from the true sources'
    log magnitudes ``feats["mags"]`` (B, N, F, T); the separated ones, the output's ``mask`` kind
    (normalized or ratio) of ``mask_logits`` times the mixture magnitude, are scored with the
    critic's weights held fixed, so that half of the term trains only the masks: an estimate
    that keeps the other instrument's notes is pushed towards its own class. Both halves are
    multi-label BCEs against ``labels`` (B, N, C); the term is their sum."""
    from torch.func import functional_call

    from pipeline.separation.infer import output_masks

    B, N, F_, T = mask_logits.shape
    est = output_masks(torch.sigmoid(mask_logits.float()), mask) * feats["mag_mix"].float()
    y = labels.float().reshape(B * N, -1)
    clean = critic(torch.log(feats["mags"].float() + CRITIC_EPS).reshape(B * N, 1, F_, T))
    fixed = {k: v.detach() for k, v in critic.named_parameters()}
    heard = functional_call(critic, fixed, (torch.log(est + CRITIC_EPS).reshape(B * N, 1, F_, T),))
    return (F.binary_cross_entropy_with_logits(clean.float(), y)
            + F.binary_cross_entropy_with_logits(heard.float(), y))


def wsddn_loss(scores: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """BCE of WSDDN scores in [0, 1] (B, N, C) against multi-hot labels (B, N, C), in float32
    outside autocast: CUDA's autocast refuses BCE on probabilities (found on an H200: the bf16
    step failed with "binary_cross_entropy ... unsafe to autocast"; the CPU's allows it)."""
    eps = 1e-6
    with torch.autocast(scores.device.type, enabled=False):
        return F.binary_cross_entropy(scores.float().clamp(eps, 1 - eps), labels.float())


def audio_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Multi-label BCE of audio logits (B, N, C): a sigmoid per class, not the official
    softmax. Source n's audio stream is conditioned on video n, so its target is n's labels."""
    return F.binary_cross_entropy_with_logits(logits.float(), labels.float())


def bin_class_loss(bin_logits: torch.Tensor, masks: torch.Tensor, labels: torch.Tensor,
                   weight: torch.Tensor) -> torch.Tensor:
    """model.bin_classes' term: every time-frequency bin classified (one BCE per class) as the
    classes of the source whose ideal binary mask holds it (none where no source dominates),
    weighted per bin like :func:`mask_loss`, summed over the classes and divided by the N
    sources (the mask term's scale). ``bin_logits`` (B, F, T, C), ``masks`` (B, N, F, T),
    ``labels`` (B, N, C), ``weight`` (B, 1, F, T)."""
    N = masks.shape[1]
    target = torch.einsum("bnft,bnc->bftc", masks.float(), labels.float()).clamp(max=1.0)
    w = weight.float().permute(0, 2, 3, 1)                                 # (B, F, T, 1)
    bce = F.binary_cross_entropy_with_logits(bin_logits.float(), target, reduction="none")
    return (bce * w).sum(-1).mean() / N


def tribert_loss(out: dict, feats: dict, labels: torch.Tensor, signal: str | None = None,
                 signal_cap: float = SIGNAL_CAP_DB, critic: torch.nn.Module | None = None,
                 separated: str = "normalized") -> dict[str, torch.Tensor]:
    """The four loss terms {"mask", "visual", "pose", "audio"} (unweighted; the caller weights
    and sums them). ``out``: the model's outputs; ``feats``: ``masks`` (B, N, F, T) and
    ``weight`` (B, 1, F, T) (pipeline.data.spectrogram.mixture_features); ``labels`` (B, N, C).
    A model without a classification output (the Sound-of-Pixels baseline) gets a zero term.
    With ``signal`` (an output mask kind) also ``"signal"``, :func:`signal_loss` of that kind,
    capped at ``signal_cap`` dB (it needs ``feats``' ``sources`` and ``mix_spec``). With a
    ``critic`` also ``"separated"``, :func:`separated_loss` of the ``separated`` mask kind. With
    ``pitch_logits`` in ``out`` (``model.motion_pitch``) also ``"pitch"``, :func:`mask_loss` of
    that term alone. With ``bin_logits`` (``model.bin_classes``, in training) also ``"bins"``,
    :func:`bin_class_loss`."""
    zero = out["mask_logits"].new_zeros(())
    terms = {"mask": mask_loss(out["mask_logits"], feats["masks"], feats["weight"])}
    terms["visual"] = wsddn_loss(out["visual_scores"], labels) if "visual_scores" in out else zero
    terms["pose"] = wsddn_loss(out["pose_scores"], labels) if "pose_scores" in out else zero
    terms["audio"] = audio_loss(out["audio_logits"], labels) if "audio_logits" in out else zero
    if signal is not None:
        terms["signal"] = signal_loss(out["mask_logits"], feats, signal, signal_cap)
    if critic is not None:
        terms["separated"] = separated_loss(critic, out["mask_logits"], feats, labels, separated)
    if "pitch_logits" in out:
        # model.motion_pitch's harmonic term by itself as each source's mask: what the pose's
        # pitch activations alone say about where the source is (train.loss.pitch)
        terms["pitch"] = mask_loss(out["pitch_logits"], feats["masks"], feats["weight"])
    if "bin_logits" in out:
        terms["bins"] = bin_class_loss(out["bin_logits"], feats["masks"], labels, feats["weight"])
    return terms


def total_loss(terms: dict[str, torch.Tensor], mask: float = 1.0, visual: float = 1.0,
               pose: float = 1.0, audio: float = 1.0) -> torch.Tensor:
    """The weighted sum of :func:`tribert_loss`'s terms."""
    return mask * terms["mask"] + visual * terms["visual"] + pose * terms["pose"] + audio * terms["audio"]
