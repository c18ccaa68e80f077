"""TriBERT (Rahman et al., NeurIPS 2021): vision, pose and audio streams with tri-modal
co-attention, weakly-supervised classification heads and an attention U-Net for separation.

The model takes a batch of mixtures of N sources. Source n's mask is predicted from the visual
frames and pose of video n and the audio of the mixture (mix-and-separate, paper 3.2.1), exactly
as running the model once per source does; batching the sources lets the mixture's audio network
and U-Net encoder run once per mixture and all frames go through the backbone as one batch.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from model.backbone import make_backbone
from model.embeddings import AudioEmbedding, PoseEmbedding, TokenMasking
from model.encoder import STREAMS, TriBERTEncoder
from model.heads import AudioClassifier, SOSPooler, SpectrogramCritic, WSDDNHead, fuse
from model.motion import PoseMotion
from model.summary import count, format_table, param_table
from model.unet import AttentionUNet
from model.visual import VisualTokenizer, prepare_frames


def check_inputs(batch: dict, frames: int, persons: int) -> tuple[int, int]:
    """Assert the input contract (see :class:`TriBERT`); returns (B, N)."""
    B, N, T = batch["frames"].shape[:3]
    assert batch["frames"].dim() == 6 and T == frames, \
        f"frames: expected (B, N, {frames}, 3, H, W) float or (B, N, {frames}, H, W, 3) uint8, " \
        f"got {tuple(batch['frames'].shape)}"
    if "pose" in batch:
        assert batch["pose"].shape[:4] == (B, N, T, persons), \
            f"pose: expected (B, N, {T}, {persons}, C, V), got {tuple(batch['pose'].shape)}"
        assert batch["boxes"].shape == (B, N, T, persons, 5), f"boxes: {tuple(batch['boxes'].shape)}"
        assert batch["absent"].shape == (B, N, T, persons) and batch["absent"].dtype == torch.bool, \
            f"absent: expected bool (B, N, T, P), got {batch['absent'].dtype} {tuple(batch['absent'].shape)}"
    if "trajectory" in batch:
        assert batch["trajectory"].dim() == 6 and batch["trajectory"].shape[:2] == (B, N) \
            and batch["trajectory"].shape[3:] == (persons, batch["trajectory"].shape[4], 3), \
            f"trajectory: expected (B, N, W, {persons}, V, 3), got {tuple(batch['trajectory'].shape)}"
    assert batch["log_mag_mix"].shape == (B, 1, 256, 256), \
        f"log_mag_mix: expected (B, 1, 256, 256), got {tuple(batch['log_mag_mix'].shape)}"
    return B, N


def erased_streams(batch: dict, erase: tuple[str, ...]) -> tuple[str, ...]:
    """The streams to erase: the model's own (``erase`` setting) plus an optional per-call
    ``batch["erase"]`` (e.g. ``("audio", "pose")`` for the supplement's Table 4 features)."""
    extra = tuple(batch.get("erase", ()))
    unknown = set(extra) - set(STREAMS)
    if unknown:
        raise ValueError(f"erase: unknown stream(s) {sorted(unknown)}; expected {STREAMS}")
    return tuple(dict.fromkeys(erase + extra))


class TriBERT(nn.Module):
    """TriBERT (paper section 3.2, Fig. 1).

    Args (grouped as in the paper):
        # Visual (Fig. 2): backbone, image_size, hidden_visual
        # Pose: hidden_pose, pose_channels, pose_joints, persons (tokens per frame)
        # Audio: hidden_audio, vggish_channels
        # Transformer: hidden_coattention, heads, ffn, layers, dropout, coattention (mode),
          temporal_pos_emb, frames, mask_rate
        # Heads and separation: num_classes, fusion, unet_depth, unet_channels, unet_max_channels,
          film (the feature also modulates every decoder level), input_norm (BatchNorm of the
          input log spectrogram), synthesizer (K > 0: Sound-of-Pixels' output head instead of
          the bottleneck fusion), unet_up (``upsample``: bilinear 2x then a 3x3 convolution per
          up level, Sound-of-Pixels'; ``transpose``: a 4x4 stride-2 transposed convolution,
          2.25x less work, worse masks measured: :func:`model.unet.up`); all off in the paper's
          model
        # Time-varying conditioning: motion (width of :class:`model.motion.PoseMotion`; 0 = off,
          the paper's; with synthesizer > 0 it changes the synthesizer's weights per time frame,
          with synthesizer 0 it modulates every level of the per-source decoder), motion_fps
          (the trajectory's frame rate), motion_bands (a per-source frequency profile per time frame in that many bands; 0 = off),
          motion_pitch (per-semitone activations per time frame, each adding its harmonic
          series to the source's mask logits: :class:`model.motion.PitchComb`; 0 = off)
        # Training only: critic (width of :class:`model.heads.SpectrogramCritic`, the instrument
          classifier of separated spectrograms that ``train.loss.separated`` trains with; 0 =
          none, the paper's; inference never runs it)
        # Training only: bin_classes (a linear map of the synthesizer's K maps to class logits
          per time-frequency bin, trained by ``train.loss.bins`` towards the class of the
          source that dominates each bin; inference never runs it)
        # Diagnostic: oracle (the U-Net conditioned on each source's true class, the batch's
          ``label``, instead of the fused feature: what perfect recognition of the instrument
          would give the separation; such a model cannot separate a user's video)

    Inputs (a dict): ``frames`` (B, N, T, 3, H, W) float ImageNet-normalised, or (B, N, T, H, W, 3)
    uint8 as the shards store them (normalised here); ``pose`` (B, N, T, P, 256, 68) ST-GCN
    features; ``boxes`` (B, N, T, P, 5) (x1, y1, x2, y2, area, normalised); ``absent``
    (B, N, T, P) bool; ``log_mag_mix`` (B, 1, 256, 256) log of the warped mixture magnitude;
    optional ``trajectory`` (B, N, W, P, V, 3) person-normalised keypoints (x, y, score) of the
    window's W frames (used with ``motion`` > 0; without it, or with the pose erased, the masks
    get no time-varying term).
    Without ``pose``/``boxes``/``absent`` every person counts as absent (the pose stream is then
    its SOS token only). Optional ``erase``: stream names whose tokens are all replaced by the
    mask token for this call (the constructor's ``erase`` does it always: supplement Table 1).
    With ``oracle``: ``label`` (B, N, C) each source's multi-hot classes.

    Outputs (a dict): ``mask_logits`` (B, N, 256, 256); ``visual_scores``, ``pose_scores``
    (B, N, C) WSDDN scores in [0, 1]; ``audio_logits`` (B, N, C); ``frame_scores``
    (B, N, T, C) the segmentation network's class scores; ``fused`` (B, N, F); ``tokens`` and
    ``inputs`` {stream: (B, N, L, d)} the final and the pre-transformer token sequences
    (retrieval embeddings).
    """

    # in eval mode each source's outputs depend only on the mixture and its own video
    # (pipeline.separation.infer.sources_independent; tests/model/test_conditioning.py)
    sources_independent = True

    def __init__(self, *, backbone: str = "resnet50", image_size: int = 224,
                 hidden_visual: int = 1024, hidden_pose: int = 1024, hidden_audio: int = 512,
                 hidden_coattention: int = 512, heads: int = 8, ffn: int = 1024, layers: int = 6,
                 dropout: float = 0.1, vggish_channels=(64, 128, 256, 256, 512, 512, 512),
                 unet_depth: int = 7, unet_channels: int = 64, unet_max_channels: int = 512,
                 coattention: str = "concat_features", fusion: str = "concat",
                 mask_rate: float = 0.15, temporal_pos_emb: bool = False, num_classes: int = 21,
                 frames: int = 3, persons: int = 2, pose_channels: int = 256,
                 pose_joints: int = 68, erase: str = "none", film: bool = False,
                 input_norm: bool = False, synthesizer: int = 0, motion: int = 0,
                 motion_fps: float = 8.0, motion_bands: int = 0, motion_pitch: int = 0,
                 critic: int = 0, oracle: bool = False, bin_classes: bool = False,
                 unet_up: str = "upsample", unet_harmonics: tuple = ()):
        init_kwargs = {k: v for k, v in locals().items() if k not in ("self", "__class__")}
        super().__init__()
        self.init_kwargs = init_kwargs  # plain data: stored in checkpoints (model/checkpoint.py)
        self.frames, self.persons, self.fusion = frames, persons, fusion
        if erase not in ("none", "visual", "pose"):
            raise ValueError(f"erase: expected none, visual or pose, got {erase!r}")
        self.erase = () if erase == "none" else (erase,)
        self.pose_shape = (pose_channels, pose_joints)
        dims = {"visual": hidden_visual, "pose": hidden_pose, "audio": hidden_audio}
        # Visual, pose and audio tokens
        self.visual = VisualTokenizer(make_backbone(backbone), hidden_visual, num_classes,
                                      persons, image_size)
        self.pose_embedding = PoseEmbedding(pose_channels, pose_joints, hidden_pose, dropout)
        self.audio_embedding = AudioEmbedding(tuple(vggish_channels), hidden_audio, dropout)
        self.sos = nn.ParameterDict({s: nn.Parameter(torch.randn(dims[s]) * 0.02) for s in STREAMS})
        self.visual_masking = TokenMasking(hidden_visual, mask_rate)
        self.pose_masking = TokenMasking(hidden_pose, mask_rate)
        self.positions = nn.ParameterDict(
            {s: nn.Parameter(torch.randn(frames + 1, dims[s]) * 0.02) for s in STREAMS}
        ) if temporal_pos_emb else None
        # Transformer
        self.encoder = TriBERTEncoder(dims, hidden_coattention, heads, ffn, layers, dropout,
                                      coattention)
        # Heads
        self.visual_head = WSDDNHead(hidden_visual, num_classes)
        self.pose_head = WSDDNHead(hidden_pose, num_classes)
        self.audio_head = AudioClassifier(hidden_audio, num_classes)
        self.poolers = nn.ModuleDict({s: SOSPooler(dims[s], hidden_coattention) for s in STREAMS})
        fused = 3 * hidden_coattention if fusion == "concat" else hidden_coattention
        # Separation
        self.unet = AttentionUNet(unet_depth, unet_channels, unet_max_channels, fused, film,
                                  input_norm, synthesizer, motion, unet_up,
                                  tuple(unet_harmonics))
        if motion_bands and not (motion and synthesizer):
            raise ValueError("motion_bands > 0 needs motion > 0 and synthesizer > 0 (the motion "
                             "branch gives them beside the synthesizer's terms)")
        if motion_pitch and not motion:
            raise ValueError("motion_pitch > 0 needs motion > 0 (the motion branch gives the "
                             "activations)")
        self.motion = (PoseMotion(persons, pose_joints, motion, synthesizer, motion_fps,
                                  motion_bands, motion_pitch) if motion else None)
        self.critic = SpectrogramCritic(critic, num_classes) if critic else None
        # diagnostic (model.oracle): the U-Net conditioned on each source's true class in place
        # of the fused feature, the ceiling of what recognising the instrument can give
        self.oracle = nn.Linear(num_classes, fused) if oracle else None
        if bin_classes and not synthesizer:
            raise ValueError("bin_classes needs synthesizer > 0 (it classifies the bins from "
                             "the synthesizer's K maps)")
        # training only (train.loss.bins): each bin's instrument read off the K maps
        self.bin_classes = nn.Linear(synthesizer, num_classes) if bin_classes else None
        if bin_classes:
            # most bins hold none of a given class: start every class's probability near the
            # share one class has (1 / (C - 1) odds), not at one half, so that the term's first
            # steps are not 21 classes' worth of easy negatives
            nn.init.constant_(self.bin_classes.bias, -math.log(max(num_classes - 1, 1)))
        if motion_bands:
            # each source's band term subtracts the others': its outputs depend on every
            # source's video (the model stays symmetric in its sources, so swapping two videos
            # still swaps their masks: tests/model/test_conditioning.py)
            self.sources_independent = False

    def tokenize(self, batch: dict) -> tuple[dict, dict, dict, torch.Tensor]:
        """Inputs -> tokens {stream: (M, L, d)} with M = B * N and L = 1 + T * P (SOS first),
        valid {stream: (M, L)}, masked {stream: (M, L)}, frame class scores (M, T, C).
        The batch must satisfy :func:`check_inputs` (``forward`` checks it)."""
        B, N = batch["frames"].shape[:2]
        T, P = self.frames, self.persons
        M = B * N
        frames = prepare_frames(batch["frames"].reshape(M * T, *batch["frames"].shape[3:]))
        with torch.profiler.record_function("tribert.visual"):
            v, frame_scores = self.visual(frames)                       # (M*T, P, Dv), (M*T, C)
        v = v.reshape(M, T * P, -1)
        with torch.profiler.record_function("tribert.pose"):
            if "pose" in batch:
                absent = batch["absent"].reshape(M, T, P)
                pose = batch["pose"].reshape(M, T, P, *batch["pose"].shape[4:])
                boxes = batch["boxes"].reshape(M, T, P, 5)
            else:
                absent = torch.ones(M, T, P, dtype=torch.bool, device=v.device)
                pose = v.new_zeros(M, T, P, *self.pose_shape)
                boxes = v.new_zeros(M, T, P, 5)
            p = self.pose_embedding(pose, boxes, absent)
        p = p.reshape(M, T * P, -1)
        with torch.profiler.record_function("tribert.audio"):
            a = self.audio_embedding(batch["log_mag_mix"])               # (B, Da), once per mixture
        a = a.repeat_interleave(N, dim=0)[:, None, :].expand(M, T * P, a.shape[1])
        ones = torch.ones(M, T * P, dtype=torch.bool, device=v.device)
        valid = {"visual": ones, "pose": ~absent.reshape(M, T * P), "audio": ones}
        v, v_masked = self.visual_masking(v, valid["visual"])
        p, p_masked = self.pose_masking(p, valid["pose"])
        tokens = {"visual": v, "pose": p, "audio": a}
        masked = {"visual": v_masked, "pose": p_masked, "audio": torch.zeros_like(ones)}
        for s in erased_streams(batch, self.erase):
            tokens[s], masked[s] = self._erased(s, tokens[s], valid[s])
        sos_valid = torch.ones(M, 1, dtype=torch.bool, device=v.device)
        for s in STREAMS:
            sos = self.sos[s].to(tokens[s].dtype).expand(M, 1, -1)
            tokens[s] = torch.cat([sos, tokens[s]], dim=1)                # (M, 1 + T*P, d)
            valid[s] = torch.cat([sos_valid, valid[s]], dim=1)
            masked[s] = torch.cat([~sos_valid, masked[s]], dim=1)
            if self.positions is not None:
                frame_of_token = torch.arange(T + 1, device=v.device).repeat_interleave(
                    torch.tensor([1] + [P] * T, device=v.device))
                tokens[s] = tokens[s] + self.positions[s][frame_of_token]
        return tokens, valid, masked, frame_scores.reshape(M, T, -1)

    def _erased(self, stream: str, tokens: torch.Tensor, valid: torch.Tensor):
        """Every valid token of ``stream`` replaced: by the learned mask token (visual, pose), by
        zeros (audio: it is never masked in training, so it has no mask token)."""
        if stream == "audio":
            fill = tokens.new_zeros(())
        else:
            fill = getattr(self, f"{stream}_masking").embedding.to(tokens.dtype)
        return torch.where(valid[..., None], fill, tokens), valid.clone()

    def forward(self, batch: dict) -> dict:
        B, N = check_inputs(batch, self.frames, self.persons)
        inputs, valid, masked, frame_scores = self.tokenize(batch)
        with torch.profiler.record_function("tribert.encoder"):
            tokens = self.encoder(inputs, valid)
        with torch.profiler.record_function("tribert.heads"):
            region = {s: valid[s][:, 1:] & ~masked[s][:, 1:] for s in ("visual", "pose")}
            visual_scores = self.visual_head(tokens["visual"][:, 1:], region["visual"])
            pose_scores = self.pose_head(tokens["pose"][:, 1:], region["pose"])
            audio_logits = self.audio_head(tokens["audio"])
            fused = fuse([self.poolers[s](tokens[s]) for s in STREAMS], self.fusion)
            if self.oracle is not None:
                fused = self.oracle_condition(batch, fused)
        with torch.profiler.record_function("tribert.unet"):
            feats = self.unet.encode(batch["log_mag_mix"])
            motion, pitch = self.motion_terms(batch, B, N)
            bins = self.bin_classes is not None and self.training
            mask_logits = self.unet.decode(feats, fused.reshape(B, N, -1), motion, maps=bins)
            if bins:
                mask_logits, maps = mask_logits
                # (B, K, F, T) channels-last: (B, F, T, K) is its storage; -> (B, F, T, C)
                bin_logits = self.bin_classes(maps.permute(0, 2, 3, 1))
            if pitch is not None:
                mask_logits = mask_logits + pitch.to(mask_logits.dtype)

        def per_source(x):  # (B * N, ...) -> (B, N, ...)
            return x.reshape(B, N, *x.shape[1:])

        return {
            "mask_logits": mask_logits,                                    # (B, N, 256, 256)
            "visual_scores": per_source(visual_scores),                    # (B, N, C)
            "pose_scores": per_source(pose_scores),
            "audio_logits": per_source(audio_logits),
            "frame_scores": per_source(frame_scores),                      # (B, N, T, C)
            "fused": per_source(fused),
            # model.motion_pitch: its harmonic term alone (train.loss.pitch), (B, N, 256, 256)
            **({} if pitch is None else {"pitch_logits": pitch}),
            # model.bin_classes, in training: each bin's class logits (B, F, T, C)
            **({"bin_logits": bin_logits} if bins else {}),
            "tokens": {s: per_source(t) for s, t in tokens.items()},
            "inputs": {s: per_source(t) for s, t in inputs.items()},
        }

    def oracle_condition(self, batch: dict, fused: torch.Tensor) -> torch.Tensor:
        """model.oracle: sigmoid of a learned map of each source's true labels (the batch's
        ``label``, (B, N, C) multi-hot) in the fused feature's place and range, (B * N, p)."""
        if "label" not in batch:
            raise ValueError("model.oracle: this model is conditioned on each source's true "
                             "class and needs the batch's 'label' (evaluate gives it; "
                             "`tribert separate` on a user's video cannot)")
        labels = batch["label"].to(fused.device, fused.dtype)
        return torch.sigmoid(self.oracle(labels.reshape(fused.shape[0], -1)))

    def motion_terms(self, batch: dict, B: int, N: int):
        """(terms, pitch): (B, N, K + 1 [+ bands], T) the time-varying synthesizer terms of
        :mod:`model.motion` ((B, N, width, T) features for the per-source decoder's
        :class:`MotionFiLM`) and, with ``motion_pitch``, (B, N, F, T) the harmonic term added to
        the mask logits (else None); (None, None) without a motion branch, without
        ``trajectory`` in the batch, or with the pose stream erased."""
        if self.motion is None or "trajectory" not in batch \
                or "pose" in erased_streams(batch, self.erase):
            return None, None
        traj = batch["trajectory"]
        frames = batch["log_mag_mix"].shape[-1]
        with torch.profiler.record_function("tribert.motion"):
            x = self.motion.features(traj.reshape(B * N, *traj.shape[2:]))
            out = self.motion.terms(x, frames)
            pitch = self.motion.pitch_term(x, frames) if self.motion.comb is not None else None
        return (out.reshape(B, N, *out.shape[1:]),
                None if pitch is None else pitch.reshape(B, N, *pitch.shape[1:]))

    def parameter_counts(self) -> dict[str, int]:
        """{component: parameters}, the encoder split into co- and self-attention layers."""
        table = param_table(self, expand=("visual", "audio_embedding"))
        at = list(table).index("encoder")
        items = list(table.items())
        split = [("encoder.co_attention", count(nn.ModuleList(self.encoder.blocks[0::2]))),
                 ("encoder.self_attention", count(nn.ModuleList(self.encoder.blocks[1::2])))]
        return dict(items[:at] + split + items[at + 1:])

    def __repr__(self):
        return format_table(type(self).__name__, self.parameter_counts())
