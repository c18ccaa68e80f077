"""Output shapes of every block on tiny inputs."""
import pytest
import torch
from torch import nn

from model.backbone import make_backbone
from model.embeddings import AudioEmbedding, PoseEmbedding, TokenMasking, VGGish
from model.encoder import STREAMS, TriBERTEncoder
from model.heads import AudioClassifier, SOSPooler, WSDDNHead, fuse
from model.sop import SoundOfPixels
from model.unet import (AttentionGate, AttentionUNet, HarmonicStack, SelfGuidedFusion,
                        synthesize)
from model.visual import DecoupledSpatialAttention, VisualTokenizer
from model_inputs import make_batch


@pytest.mark.parametrize("name, channels", [("resnet_tiny", 128), ("resnet18", 512)])
def test_backbone_shape(name, channels):
    assert make_backbone(name)(torch.randn(2, 3, 64, 64)).shape == (2, channels, 2, 2)
    assert make_backbone(name, dilate_last=True)(torch.randn(1, 3, 64, 64)).shape == (1, channels, 4, 4)


def test_decoupled_spatial_attention_shapes_and_normalisation():
    att = DecoupledSpatialAttention(8, 5).eval()
    maps, scores = att(torch.randn(3, 8, 4, 4))
    assert maps.shape == (3, 5, 4, 4) and scores.shape == (3, 5)
    s_e = att.expansive(torch.randn(3, 8, 4, 4))
    assert (s_e >= 0).all()  # ReLU before the spatial normalisation of eq. 2


def test_visual_tokenizer_shape():
    tok = VisualTokenizer(make_backbone("resnet_tiny"), 16, 5, tokens_per_frame=2, image_size=64)
    tokens, scores = tok(torch.randn(4, 3, 80, 80))   # resized to 64 inside
    assert tokens.shape == (4, 2, 16) and scores.shape == (4, 5)


def test_pose_embedding_shape_and_absent_tokens_are_zero():
    emb = PoseEmbedding(4, 5, 16).eval()
    absent = torch.zeros(2, 3, 2, dtype=torch.bool)
    absent[0, 1, 1] = True
    out = emb(torch.randn(2, 3, 2, 4, 5), torch.rand(2, 3, 2, 5), absent)
    assert out.shape == (2, 3, 2, 16)
    assert (out[0, 1, 1] == 0).all() and (out[0, 1, 0] != 0).any()


def test_vggish_and_audio_embedding_shapes():
    assert VGGish((2, 2, 2, 2, 2, 2, 4))(torch.randn(2, 1, 256, 256)).shape == (2, 16)
    assert AudioEmbedding((2, 2, 2, 2, 2, 2, 4), 8)(torch.randn(2, 1, 256, 256)).shape == (2, 8)


def test_token_masking_replaces_about_the_rate_of_valid_tokens_in_training_only():
    m = TokenMasking(4, 0.15)
    x, valid = torch.randn(200, 10, 4), torch.rand(200, 10) > 0.2
    out, masked = m(x, valid)
    assert not (masked & ~valid).any()
    assert 0.10 < masked.float().sum() / valid.float().sum() < 0.20
    assert torch.equal(out[masked], m.embedding.expand(int(masked.sum()), 4))
    assert torch.equal(out[~masked], x[~masked])
    m.eval()
    out, masked = m(x, valid)
    assert torch.equal(out, x) and not masked.any()


@pytest.mark.parametrize("mode", ["concat_features", "union_tokens"])
def test_encoder_keeps_shapes(mode):
    dims = {"visual": 16, "pose": 8, "audio": 8}
    enc = TriBERTEncoder(dims, 16, 2, 32, 2, mode=mode)
    assert len(enc.blocks) == 4
    tokens = {s: torch.randn(2, 7, dims[s]) for s in STREAMS}
    valid = {s: torch.ones(2, 7, dtype=torch.bool) for s in STREAMS}
    out = enc(tokens, valid)
    assert {s: t.shape for s, t in out.items()} == {s: t.shape for s, t in tokens.items()}


def test_heads_shapes():
    x = torch.randn(2, 6, 16)
    assert WSDDNHead(16, 5)(x, torch.ones(2, 6, dtype=torch.bool)).shape == (2, 5)
    assert AudioClassifier(16, 5)(x).shape == (2, 5)
    assert SOSPooler(16, 4)(x).shape == (2, 4)
    pooled = [torch.randn(2, 4) for _ in range(3)]
    assert fuse(pooled, "concat").shape == (2, 12) and fuse(pooled, "multiply").shape == (2, 4)


def test_wsddn_scores_lie_in_unit_interval():
    head = WSDDNHead(16, 5)
    valid = torch.rand(50, 6) > 0.3
    valid[0] = False                                 # a clip with no valid token scores 0
    scores = head(torch.randn(50, 6, 16) * 10, valid)
    assert ((scores >= 0) & (scores <= 1)).all() and torch.isfinite(scores).all()
    assert (scores[0] == 0).all()


def test_unet_blocks_shapes():
    assert AttentionGate(4, 4, 2)(torch.randn(2, 4, 8, 8), torch.randn(2, 4, 8, 8)).shape == (2, 4, 8, 8)
    assert SelfGuidedFusion(6)(torch.randn(2, 6, 2, 2), torch.rand(2, 6)).shape == (2, 6, 2, 2)
    unet = AttentionUNet(depth=4, channels=4, max_channels=8, bottleneck=6)
    out = unet(torch.randn(2, 1, 256, 256), torch.rand(2, 3, 6))
    assert out.shape == (2, 3, 256, 256)


def test_unet_encoder_is_shared_by_the_sources():
    torch.manual_seed(0)
    unet = AttentionUNet(depth=3, channels=4, max_channels=8, bottleneck=6).eval()
    spec, feats = torch.randn(2, 1, 256, 256), torch.rand(2, 3, 6)
    together = unet(spec, feats)
    one = unet(spec[1:], feats[1:, 2:3])
    torch.testing.assert_close(together[1:, 2:3], one)


@pytest.mark.parametrize("per_frame", [False, True])
@pytest.mark.parametrize("channels_last", [True, False])
def test_synthesize_is_the_weighted_sum_of_the_channels_in_either_layout(channels_last, per_frame):
    torch.manual_seed(0)
    a = torch.randn(3, 5, 8, 6)
    a = (a.contiguous(memory_format=torch.channels_last) if channels_last else a).requires_grad_()
    # per clip (B, N, K), or per time frame (B, N, K, T) as model.motion gives them
    w = torch.randn(3, 2, 5, *((6,) if per_frame else ()), requires_grad=True)
    out = synthesize(a, w)
    wb = w[:, :, :, None, :] if per_frame else w[:, :, :, None, None]
    ref = (wb * a[:, None]).sum(dim=2)
    torch.testing.assert_close(out, ref)
    assert out.is_contiguous()
    g = torch.randn_like(out)
    grads = torch.autograd.grad((out * g).sum(), (a, w))
    torch.testing.assert_close(grads, torch.autograd.grad((ref * g).sum(), (a, w)))


def test_sound_of_pixels_shape():
    sop = SoundOfPixels(backbone="resnet_tiny", image_size=64, sop_channels=4, unet_depth=3,
                        unet_channels=4, unet_max_channels=8)
    out = sop(make_batch())
    assert out["mask_logits"].shape == (2, 2, 256, 256) and out["fused"].shape == (2, 2, 4)


def test_self_guided_fusion_with_one_token_adds_the_feature():
    fusion = SelfGuidedFusion(6)
    a, v = torch.randn(2, 6, 2, 2), torch.rand(2, 6)
    h = a + v[:, :, None, None]
    torch.testing.assert_close(fusion(a, v), fusion.mlp(h) + h)


def test_self_guided_fusion_attends_over_several_tokens():
    fusion = SelfGuidedFusion(4)
    a = torch.zeros(1, 4, 1, 1)
    a[0, 0] = 10.0                                   # the position aligns with token 0
    v = torch.eye(4)[None, :2]                       # tokens e0, e1
    weights = torch.softmax(torch.tensor([10.0, 0.0]) / 2, 0)
    h = a[0, :, 0, 0] + weights[0] * v[0, 0] + weights[1] * v[0, 1]
    torch.testing.assert_close(fusion(a, v)[0, :, 0, 0], fusion.mlp(h[None, :, None, None])[0, :, 0, 0] + h)


def test_transposed_up_levels_keep_the_shapes_and_replace_the_upsample():
    # model.unet_up: transpose swaps every [upsample, 3x3 conv] for one 4x4 stride-2 transposed
    # convolution; the masks keep their (B, N, F, T) shape and the gradient reaches the encoder
    torch.manual_seed(0)
    unet = AttentionUNet(depth=4, channels=4, max_channels=8, bottleneck=6, synthesizer=3,
                         up_mode="transpose")
    kinds = [type(m) for m in unet.modules()]
    assert nn.Upsample not in kinds
    assert kinds.count(nn.ConvTranspose2d) == 4 == len(unet.ups)
    spec = torch.randn(2, 1, 256, 256)
    out = unet(spec, torch.rand(2, 3, 6))
    assert out.shape == (2, 3, 256, 256)
    out.square().mean().backward()
    assert unet.downs[0][0].weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="up mode.*'nearest'"):
        AttentionUNet(depth=3, channels=4, max_channels=8, bottleneck=6, up_mode="nearest")


@pytest.mark.parametrize("arch", ["tribert", "sop"])
def test_unet_up_reaches_both_models_and_the_default_is_unchanged(arch):
    from model.build import build_model
    from pipeline.schema import ModelParams
    small = dict(arch=arch, image_size=32, unet_depth=3)

    def kinds(**kw):
        return [type(m) for m in build_model(ModelParams(**small, **kw)).modules()]
    assert nn.ConvTranspose2d not in kinds() and nn.Upsample in kinds()
    assert nn.Upsample not in kinds(unet_up="transpose")
    assert kinds(unet_up="transpose").count(nn.ConvTranspose2d) == 3


def test_harmonic_stack_reads_each_row_at_h_times_its_frequency():
    # a spectrogram whose value is its own row number: channel h at row r must then hold the
    # (fractional) row of h * f(r), which model.motion.warped_row computes from Hz by its own
    # formula; where h * f(r) passes the Nyquist frequency, the input's lowest value (0)
    from model.motion import warped_row
    from pipeline.data.spectrogram import N_FFT, SAMPLE_RATE, warp_rows
    rows = 256
    x = torch.arange(rows, dtype=torch.float32)[None, None, :, None].expand(2, 1, rows, 3)
    harmonics = (0.5, 1, 2, 3)
    out = HarmonicStack(harmonics)(x)
    assert out.shape == (2, 4, rows, 3)
    top = (N_FFT // 2) * SAMPLE_RATE / N_FFT                        # the last bin, 5512.5 Hz
    hz = (warp_rows(rows).double() + 1) / 2 * top
    for i, h in enumerate(harmonics):
        inside = h * hz <= top * (1 + 1e-6)
        want = warped_row(h * hz[inside], rows).float()
        torch.testing.assert_close(out[0, i, inside, 1], want, atol=1e-3, rtol=0)
        assert (out[:, i, ~inside] == 0).all()
        assert inside.sum() < rows or h <= 1
    torch.testing.assert_close(out[:, 1], x[:, 0])                  # h = 1: the input itself
    assert (~torch.isfinite(out)).sum() == 0


def test_harmonic_stack_brings_a_note_s_partials_to_its_fundamental_s_row():
    # a 220 Hz note with partials at 1, 1/2 and 1/3 of the fundamental's strength: at the
    # fundamental's row the channels h = 1, 2, 3 hold the partials' log magnitudes in that order
    import math
    from model.motion import warped_row
    from pipeline.data.spectrogram import CLIP_SAMPLES, SAMPLE_RATE, warped_magnitude
    t = torch.arange(CLIP_SAMPLES) / SAMPLE_RATE
    wave = sum(torch.sin(2 * math.pi * 220.0 * k * t) / k for k in (1, 2, 3))[None]
    x = torch.log(warped_magnitude(wave)[:, None] + 1e-10)
    out = HarmonicStack((1, 2, 3))(x)
    row = int(round(float(warped_row(torch.tensor(220.0)))))
    partials = out[0, :, row, 100]
    assert partials[0] > partials[1] > partials[2]
    # each within a quarter of a natural-log unit of the note's own partial rows in the input
    for k in (1, 2, 3):
        r = int(round(float(warped_row(torch.tensor(220.0 * k)))))
        assert abs(float(partials[k - 1]) - float(x[0, 0, r - 1:r + 2, 100].max())) < 0.25


def test_harmonics_widen_the_first_convolution_and_train_through():
    torch.manual_seed(0)
    unet = AttentionUNet(depth=4, channels=4, max_channels=8, bottleneck=6, synthesizer=3,
                         input_norm=True, harmonics=(0.5, 1, 2))
    assert unet.downs[0][0].in_channels == 3
    assert AttentionUNet(depth=4, channels=4, max_channels=8, bottleneck=6).downs[0][0] \
        .in_channels == 1
    spec = torch.randn(2, 1, 256, 64)
    out = unet(spec, torch.rand(2, 3, 6))
    assert out.shape == (2, 3, 256, 64)
    out.square().mean().backward()
    assert unet.downs[0][0].weight.grad[:, 2].abs().sum() > 0      # every channel is used
    with pytest.raises(ValueError, match="positive ratios"):
        HarmonicStack((1, -2))


@pytest.mark.parametrize("arch", ["tribert", "sop"])
def test_unet_harmonics_reach_both_models_and_the_default_is_unchanged(arch):
    from model.build import build_model
    from pipeline.schema import ModelParams
    small = dict(arch=arch, image_size=32, unet_depth=3)

    def first_conv(**kw):
        model = build_model(ModelParams(**small, **kw))
        unet = model.unet if arch == "tribert" else model.sound_net
        return unet.downs[0][0], [type(m) for m in model.modules()]
    conv, kinds = first_conv()
    assert conv.in_channels == 1 and HarmonicStack not in kinds
    conv, kinds = first_conv(unet_harmonics=[1, 2, 3, 4])
    assert conv.in_channels == 4 and HarmonicStack in kinds
