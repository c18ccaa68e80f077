"""The separation network: an attention U-Net with attention-gated skips (Oktay et al. 2018) and
a self-guided attention fusion of the audio-visual-pose feature at the bottleneck (paper 3.2.1,
"Multi-modal Sound Source Separation"; Music Gesture's early fusion; REFERENCE.md).

Levels follow the paper's text, "7 convolutions and 7 de-convolutions with skip connections":
one 4x4 stride-2 convolution per down level and one [upsample, 3x3 convolution] per up level,
as in Sound-of-Pixels' U-Net7, whose skips here pass through attention gates. (The official code
builds 4 levels of Oktay's double-3x3 blocks whatever its depth setting says; see the README.)
The depth is a parameter. The encoder depends only on the mixture, so it runs once per mixture
and its features are shared by the N sources' decoders.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from model.layout import same_format, to_format
from model.motion import band_terms, warped_row


def down(cin: int, cout: int, outermost: bool) -> nn.Sequential:
    """[LeakyReLU(0.2)], 4x4 stride-2 conv, [BatchNorm]: (B, cin, H, W) -> (B, cout, H/2, W/2)."""
    if outermost:
        return nn.Sequential(nn.Conv2d(cin, cout, 4, 2, 1, bias=False))
    return nn.Sequential(nn.LeakyReLU(0.2), nn.Conv2d(cin, cout, 4, 2, 1, bias=False),
                         nn.BatchNorm2d(cout))


UP_MODES = ("upsample", "transpose")
TOP_BIN_HZ = 511 * 11025 / 1022     # the last of the STFT's 512 bins (the warp's f = 1)


def up(cin: int, cout: int, outermost: bool, mode: str = "upsample") -> nn.Sequential:
    """ReLU, 2x bilinear upsample, 3x3 conv, [BatchNorm]: (B, cin, H, W) -> (B, cout, 2H, 2W)
    (``mode="upsample"``).

    ``mode="transpose"`` (``model.unet_up``): a 4x4 stride-2 transposed convolution in place of
    the upsample and the 3x3 convolution. Each output pixel still has its own kernel phase over a
    2x2 input neighbourhood, at 4 instead of 9 multiply-adds per output pixel and channel pair:
    the up path, 85% of the tiny U-Net's work, costs 2.25x less; the masks were measured worse
    (docs/experiments.md section 73).
    """
    if mode == "upsample":
        mods = [nn.ReLU(), nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
                nn.Conv2d(cin, cout, 3, padding=1, bias=outermost)]
    elif mode == "transpose":
        mods = [nn.ReLU(), nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=outermost)]
    else:
        raise ValueError(f"unet up mode: expected one of {', '.join(UP_MODES)}, got {mode!r}")
    return nn.Sequential(*mods) if outermost else nn.Sequential(*mods, nn.BatchNorm2d(cout))


def harmonic_index(harmonics, rows: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
    """For each harmonic ratio h and warped row r: where frequency h * f(r) lies on the warped
    axis, as the row below it (``(H, rows)`` long) and the interpolation weight of the row above
    (``(H, rows)`` float; -1 where h * f(r) is beyond the Nyquist frequency).

    f(r) is the linear frequency that row r samples (:func:`pipeline.data.spectrogram.warp_rows`:
    grid position ``p = (21^((y+1)/2) - 11) / 10``, frequency share ``(p + 1) / 2`` of the top
    bin's); h * f(r) goes back to a fractional row through :func:`model.motion.warped_row`."""
    y = torch.linspace(-1.0, 1.0, rows, dtype=torch.float64)
    share = (torch.pow(21.0, (y + 1) / 2) - 11) / 10 / 2 + 0.5           # f(r) / top bin's
    h = torch.tensor([float(v) for v in harmonics], dtype=torch.float64)[:, None]
    target = h * share                                                     # (H, rows)
    row = warped_row(target * TOP_BIN_HZ, rows)
    low = row.floor().clamp(0, rows - 2)
    frac = (row - low).clamp(0, 1)
    frac = torch.where(target > 1 + 1e-9, torch.full_like(frac, -1.0), frac)
    return low.long(), frac.float()


class HarmonicStack(nn.Module):
    """Log spectrogram (B, 1, F, T) -> (B, H, F, T): channel i at row r holds the spectrogram
    at frequency h_i * f(r) (linear interpolation between the two warped rows around it; beyond the
    Nyquist frequency, the example's lowest value: silence). With h = 1, 2, 3, ... a 3x3 convolution
    on the stack sees a note's harmonic series at its fundamental's row, so the relative
    strength of the partials (what tells two instruments in one register apart) is local to the
    first layer instead of spread over the log-frequency axis (the harmonic CQT of Bittner et
    al. 2017; ``model.unet_harmonics``)."""

    def __init__(self, harmonics):
        super().__init__()
        if not harmonics or min(harmonics) <= 0:
            raise ValueError(f"harmonics: expected positive ratios, got {list(harmonics)!r}")
        self.harmonics = tuple(float(v) for v in harmonics)
        self._index = {}    # (rows, device) -> (low, frac)

    def index(self, rows: int, device) -> tuple[torch.Tensor, torch.Tensor]:
        key = (rows, str(device))
        if key not in self._index:
            low, frac = harmonic_index(self.harmonics, rows)
            self._index[key] = (low.reshape(-1).to(device), frac.reshape(1, -1, 1).to(device))
        return self._index[key]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, C, Fq, T = x.shape
        assert C == 1, f"expected (B, 1, F, T), got {tuple(x.shape)}"
        low, frac = self.index(Fq, x.device)
        x = x[:, 0]
        w = frac.to(x.dtype)
        lo, hi = x[:, low], x[:, low + 1]
        silence = x.detach().amin(dim=(1, 2), keepdim=True)
        out = torch.where(w < 0, silence, lo + (hi - lo) * w.clamp(min=0))
        return out.reshape(B, len(self.harmonics), Fq, T)

    def extra_repr(self) -> str:
        return f"harmonics={self.harmonics}"


class AttentionGate(nn.Module):
    """Additive attention gate on a skip connection (Oktay 2018, Fig. 2):
    x * sigmoid(psi(relu(W_g g + W_x x))).

    Shape: g (B, Fg, H, W) gating signal, x (B, Fl, H, W) skip -> (B, Fl, H, W).
    """

    def __init__(self, f_g: int, f_l: int, f_int: int):
        super().__init__()
        self.w_g = nn.Sequential(nn.Conv2d(f_g, f_int, 1), nn.BatchNorm2d(f_int))
        self.w_x = nn.Sequential(nn.Conv2d(f_l, f_int, 1), nn.BatchNorm2d(f_int))
        self.psi = nn.Sequential(nn.Conv2d(f_int, 1, 1), nn.BatchNorm2d(1), nn.Sigmoid())

    def forward(self, g, x):
        assert g.shape[2:] == x.shape[2:], (g.shape, x.shape)
        return x * self.psi(F.relu(self.w_g(g) + self.w_x(x)))


class SelfGuidedFusion(nn.Module):
    """Fuse the audio-visual-pose feature into the bottleneck (Music Gesture's self-guided
    attention, REFERENCE.md): h = softmax(a . v^T) v + a, z = MLP(h) + h, where each bottleneck
    position a_i attends over the tokens v_k of the fused feature (the softmax runs over those
    tokens, scaled by 1/sqrt(D)) and the MLP is a per-position two-layer MLP.

    TriBERT's fused feature is one token, so its attention weight is 1 and h = a + v. The
    official code instead normalises a * v over the channels, which scales v by about 1/D
    (1/1536): on a toy task whose two sources share a mixture and differ only in their videos,
    that version stayed at the unconditioned loss for 150 Adam steps while this one learned the
    task within 40.

    Shape: a (B, D, h, w), v (B, D) or (B, K, D) -> (B, D, h, w).
    """

    def __init__(self, dim: int):
        super().__init__()
        self.mlp = nn.Sequential(nn.Conv2d(dim, dim, 1), nn.ReLU(), nn.Conv2d(dim, dim, 1))

    def forward(self, a, v):
        B, D, h, w = a.shape
        v = v[:, None, :] if v.dim() == 2 else v                            # (B, K, D)
        assert v.shape[0] == B and v.shape[2] == D, f"fused feature: expected (B, K, {D}), got {tuple(v.shape)}"
        weights = torch.softmax(torch.einsum("bdhw,bkd->bkhw", a, v) / D ** 0.5, dim=1)
        hid = same_format(torch.einsum("bkhw,bkd->bdhw", weights, v) + a, a)
        return self.mlp(hid) + hid


class FiLM(nn.Module):
    """Feature-wise linear modulation (Perez et al. 2018) of a decoder level by the fused
    feature: x * (1 + gamma(v)) + beta(v), per channel. Zero-initialised, so a new FiLM layer
    starts as the identity. Conditioned U-Nets for source separation (Meseguer-Brocal & Peeters
    2019) use it to tell every level which source to keep; here it complements the paper's
    single fusion at the bottleneck (an option, ``model.film``; measured in docs/experiments.md).

    Shape: x (M, C, H, W), v (M, D) -> (M, C, H, W).
    """

    def __init__(self, dim: int, channels: int):
        super().__init__()
        self.proj = nn.Linear(dim, 2 * channels)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def forward(self, x, v):
        gamma, beta = self.proj(v)[:, :, None, None].chunk(2, dim=1)
        return x * (1 + gamma) + beta


class MotionFiLM(nn.Module):
    """Time-varying FiLM of a decoder level by one source's motion features (``model.motion``
    with the per-source decoder, ``synthesizer: 0``): x * (1 + gamma(t)) + beta(t), per channel
    and time frame, broadcast over frequency; the features, given at the spectrogram's frame
    rate, are averaged over each of the level's frames. Zero-initialised (the identity).

    Shape: x (M, C, H, T'), m (M, D, T) with T a multiple of T' -> (M, C, H, T').
    """

    def __init__(self, dim: int, channels: int):
        super().__init__()
        self.proj = nn.Conv1d(dim, 2 * channels, 1)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def forward(self, x, m):
        if m.shape[-1] != x.shape[-1]:
            m = F.avg_pool1d(m, m.shape[-1] // x.shape[-1])
        gamma, beta = self.proj(m.to(x.dtype))[:, :, None, :].chunk(2, dim=1)
        return same_format(x * (1 + gamma) + beta, x)


def synthesize(a: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """Sound-of-Pixels' synthesizer: sum_k w[b, n, k] a[b, k] for every source n; with weights
    that change per time frame (``model.motion``), sum_k w[b, n, k, t] a[b, k, :, t].

    In channels-last ``a`` is stored as (B, F, T, K), so either sum is a batched matrix product
    over a view of it: one per mixture, or one per (mixture, time frame). Converting ``a`` to
    NCHW first (what an einsum does) cost a copy of the full-resolution K-channel map forward
    and one backward: 44 ms of the tiny training step for the per-clip sum; for the per-frame
    sum the einsum took 126 ms forward and backward against 46 ms as a matrix product
    (docs/experiments.md section 36).

    Shape: a (B, K, F, T), w (B, N, K) or (B, N, K, T) -> (B, N, F, T), contiguous.
    """
    B, K, Fq, T = a.shape
    if w.dim() == 4:
        # (B, T, F, K) @ (B, T, K, N) -> (B, T, F, N); a view of a channels-last ``a``
        out = torch.matmul(a.permute(0, 3, 2, 1), w.permute(0, 3, 2, 1))
        return out.permute(0, 3, 2, 1).contiguous()                          # (B, N, F, T)
    if a.is_contiguous(memory_format=torch.channels_last) and not a.is_contiguous():
        out = torch.bmm(a.permute(0, 2, 3, 1).reshape(B, Fq * T, K), w.transpose(1, 2))
        return out.reshape(B, Fq, T, -1).permute(0, 3, 1, 2).contiguous()     # (B, N, F, T)
    return torch.einsum("bnk,bkft->bnft", w, a.contiguous())


class AttentionUNet(nn.Module):
    """Log mixture spectrogram + a per-source feature -> that source's mask logits.

    Args:
        depth: down levels (= up levels); 7 in the paper (256 bins -> 2 at the bottleneck).
        channels: channels of the first level; doubled per level up to ``max_channels``.
        bottleneck: channels at the bottleneck = the fused feature's size.
        film: also modulate every inner up level with the feature (:class:`FiLM`); off is the
            paper's U-Net, where the feature enters at the bottleneck only.
        input_norm: BatchNorm over the input log spectrogram (Sound-of-Pixels' ``bn0``); off,
            the raw log magnitude (about -12 to 4) enters the first convolution.
        synthesizer: 0 (the paper): the feature is fused at the bottleneck and the decoder
            runs once per source. K > 0: Sound-of-Pixels' synthesizer instead: the decoder runs
            once per mixture to K full-resolution channels a_k, and source n's mask logits are
            sum_k w_nk a_k + b with w_n = Linear(feature_n) (the feature picks the channels).
        up_mode: ``upsample`` (bilinear 2x, then a 3x3 convolution: Sound-of-Pixels') or
            ``transpose`` (a 4x4 stride-2 transposed convolution; :func:`up`).
        harmonics: ratios h (e.g. 0.5, 1, 2, 3, 4, 5): the (normalised) input is stacked into
            one channel per ratio holding the spectrogram at h times each row's frequency
            (:class:`HarmonicStack`); empty (the paper's): the spectrogram alone.

    Shape: spec (B, 1, F, T), feature (B, N, bottleneck) -> mask logits (B, N, F, T).
    """

    def __init__(self, depth: int, channels: int, max_channels: int, bottleneck: int,
                 film: bool = False, input_norm: bool = False, synthesizer: int = 0,
                 motion: int = 0, up_mode: str = "upsample", harmonics=()):
        super().__init__()
        widths = [min(channels * 2 ** i, max_channels) for i in range(depth)]
        self.depth = depth
        self.input_norm = nn.BatchNorm2d(1) if input_norm else None
        self.stack = HarmonicStack(harmonics) if harmonics else None
        self.downs = nn.ModuleList(down(cin, cout, i == 0) for i, (cin, cout)
                                   in enumerate(zip([len(harmonics) or 1] + widths[:-1], widths)))
        self.bottleneck = nn.Sequential(nn.Conv2d(widths[-1], bottleneck, 1, bias=False),
                                        nn.BatchNorm2d(bottleneck), nn.ReLU())
        self.fusion = None if synthesizer else SelfGuidedFusion(bottleneck)
        # each up level takes the level below (the bottleneck, or twice the skip's width after
        # the skip concatenation) to the next skip's width; the outermost outputs mask logits
        # (or the synthesizer's K channels)
        ins = [bottleneck] + [2 * w for w in reversed(widths[:-1])]
        outs = list(reversed(widths[:-1])) + [synthesizer or 1]
        self.ups = nn.ModuleList(up(cin, cout, i == depth - 1, up_mode)
                                 for i, (cin, cout) in enumerate(zip(ins, outs)))
        self.gates = nn.ModuleList(AttentionGate(w, w, max(1, w // 2))
                                   for w in reversed(widths[:-1]))
        self.films = (nn.ModuleList(FiLM(bottleneck, w) for w in outs[:-1])
                      if film and not synthesizer else None)
        self.motion_films = (nn.ModuleList(MotionFiLM(motion, w) for w in outs[:-1])
                             if motion and not synthesizer else None)
        self.synthesizer = nn.Linear(bottleneck, synthesizer) if synthesizer else None
        self.memory_format = torch.contiguous_format   # model.layout

    def encode(self, spec: torch.Tensor) -> list[torch.Tensor]:
        """(B, 1, F, T) -> the outputs of every down level, the bottleneck last."""
        B, C, Fq, T = spec.shape
        assert C == 1 and Fq % 2 ** self.depth == 0 and T % 2 ** self.depth == 0, \
            f"spectrogram {tuple(spec.shape)} does not fit depth {self.depth}"
        x = spec if self.input_norm is None else self.input_norm(spec)
        if self.stack is not None:
            x = self.stack(x)
        feats = []
        for d in self.downs:
            # after the first level too: its one-channel input is both layouts (model.layout)
            x = to_format(d(x), self)
            feats.append(x)
        return feats[:-1] + [self.bottleneck(x)]

    def decode(self, feats: list[torch.Tensor], feature: torch.Tensor,
               motion: torch.Tensor | None = None, maps: bool = False):
        """Encoder outputs of B mixtures + features (B, N, D) -> mask logits (B, N, F, T).
        ``motion`` (B, N, K + 1 [+ bands], T) with the synthesizer: per time frame, changes of the
        K weights, a bias and optionally a coarse frequency profile (:mod:`model.motion`);
        (B, N, D, T) with the per-source decoder: features that modulate every decoder level
        per time frame (:class:`MotionFiLM`). ``maps`` (synthesizer only): return
        (mask logits, the mixture's K maps a (B, K, F, T))."""
        B, N, D = feature.shape
        if self.synthesizer is not None:
            x = feats[-1]
            for up_, gate, skip in zip(self.ups, self.gates, reversed(feats[:-1])):
                x = up_(x)
                x = torch.cat([x, gate(x, skip)], dim=1)
            a = self.ups[-1](x)                                            # (B, K, F, T)
            w = self.synthesizer(feature)                                  # (B, N, K)
            if motion is None:
                out = synthesize(a, w)
            else:
                K = w.shape[-1]
                # (w_nk + g_nk(t)) a_k(f, t) summed over k, + g_n0(t)
                out = synthesize(a, w[..., None] + motion[:, :, :K].to(w.dtype))
                out = out + motion[:, :, K:K + 1].to(out.dtype)
                if motion.shape[2] > K + 1:   # model.motion_bands: + b_n(f, t) - others' mean
                    out = out + band_terms(motion[:, :, K + 1:].to(out.dtype), out.shape[2])
            return (out, a) if maps else out
        if maps:
            raise ValueError("decode(maps=True) needs the synthesizer (its K maps)")
        # share the mixture's encoder output among its N sources: (B, ...) -> (B * N, ...)
        feats = [to_format(f.repeat_interleave(N, dim=0), self) for f in feats]
        v = feature.reshape(B * N, D)
        m = (motion.reshape(B * N, *motion.shape[2:])
             if motion is not None and self.motion_films is not None else None)
        x = self.fusion(feats[-1], v)
        for i, (up_, gate, skip) in enumerate(zip(self.ups, self.gates, reversed(feats[:-1]))):
            x = up_(x)
            if self.films is not None:
                x = self.films[i](x, v)
            if m is not None:
                x = self.motion_films[i](x, m)
            x = torch.cat([x, gate(x, skip)], dim=1)
        out = self.ups[-1](x)                                              # (B * N, 1, F, T)
        return out.reshape(B, N, *out.shape[2:])

    def forward(self, spec, feature, motion=None):
        return self.decode(self.encode(spec), feature, motion)
