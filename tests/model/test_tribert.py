"""The assembled TriBERT: outputs, masking, gradients, checkpoints, the paper preset."""
import pytest
import torch

from model import checkpoint
from pipeline.atomic import write_torch
from pipeline.train import losses
from model.build import build_model
from model.sop import SoundOfPixels
from model.tribert import TriBERT
from model_inputs import TINY, make_batch
from pipeline.params import validate_section


def test_forward_output_shapes(tiny_model, batch):
    out = tiny_model(batch)
    B, N, T, C = 2, 2, 3, 5
    assert out["mask_logits"].shape == (B, N, 256, 256)
    for key in ("visual_scores", "pose_scores", "audio_logits"):
        assert out[key].shape == (B, N, C)
    assert out["frame_scores"].shape == (B, N, T, C)
    assert out["fused"].shape == (B, N, 3 * 16)
    for s, d in (("visual", 16), ("pose", 16), ("audio", 8)):
        assert out["tokens"][s].shape == out["inputs"][s].shape == (B, N, 1 + T * 2, d)


def test_wsddn_scores_of_the_model_lie_in_unit_interval(tiny_model, batch):
    out = tiny_model(batch)
    for key in ("visual_scores", "pose_scores"):
        assert ((out[key] >= 0) & (out[key] <= 1)).all()


@pytest.mark.parametrize("mode", ["concat_features", "union_tokens"])
def test_absent_persons_do_not_change_the_outputs(batch, mode):
    model = TriBERT(**{**TINY, "coattention": mode}).eval()
    before = model(batch)
    changed = {k: v.clone() for k, v in batch.items()}
    changed["pose"][batch["absent"]] = torch.randn_like(changed["pose"][batch["absent"]]) * 100
    changed["boxes"][batch["absent"]] = 7.0
    after = model(changed)
    for key in ("mask_logits", "visual_scores", "pose_scores", "audio_logits", "fused"):
        torch.testing.assert_close(after[key], before[key], msg=key)
    # a present person's features do change them (the test can fail)
    changed["pose"][0, 0, 0, 0] += 100
    assert not torch.allclose(model(changed)["fused"], before["fused"])


def test_token_masking_happens_in_training_only(batch):
    model = TriBERT(**{**TINY, "mask_rate": 0.5})
    model.train()
    torch.manual_seed(1)
    masked_inputs = model(batch)["inputs"]["visual"]
    emb = model.visual_masking.embedding
    hits = (masked_inputs[..., 1:, :] == emb).all(-1)
    assert hits.any() and not hits.all()
    model.eval()
    assert not (model(batch)["inputs"]["visual"][..., 1:, :] == emb).all(-1).any()


@pytest.mark.parametrize("kw", [{}, {"coattention": "union_tokens", "fusion": "multiply",
                                     "temporal_pos_emb": True}])
def test_every_parameter_receives_a_gradient(batch, kw):
    torch.manual_seed(3)
    model = TriBERT(**{**TINY, **kw}).train()
    out = model(batch)
    feats = {"masks": (torch.rand(2, 2, 256, 256) > 0.5).float(), "weight": torch.rand(2, 1, 256, 256)}
    labels = torch.zeros(2, 2, 5)
    labels[..., 1] = 1
    losses.total_loss(losses.tribert_loss(out, feats, labels)).backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.any()]
    assert not missing


def test_checkpoint_round_trip_gives_identical_outputs(tmp_path, tiny_model, batch):
    tiny_model.eval()
    path = tmp_path / "m.pt"
    write_torch(path, checkpoint.package(tiny_model))
    again = checkpoint.load(path).eval()
    assert isinstance(again, TriBERT) and again.init_kwargs == tiny_model.init_kwargs
    a, b = tiny_model(batch), again(batch)
    for key in ("mask_logits", "visual_scores", "pose_scores", "audio_logits"):
        assert torch.equal(a[key], b[key])


def test_checkpoint_of_the_baseline_round_trips(tmp_path, batch):
    sop = SoundOfPixels(backbone="resnet_tiny", image_size=64, sop_channels=4, unet_depth=3,
                        unet_channels=4, unet_max_channels=8).eval()
    write_torch(tmp_path / "sop.pt", checkpoint.package(sop))
    assert torch.equal(checkpoint.load(tmp_path / "sop.pt").eval()(batch)["mask_logits"],
                       sop(batch)["mask_logits"])


def test_baseline_classifier_trains_its_frames_network_with_the_labels(batch):
    """``sop_classifier``: the visual loss term reaches the frames network's backbone; without
    it the baseline has no classification output (a zero visual term)."""
    kw = dict(backbone="resnet_tiny", image_size=64, sop_channels=4, unet_depth=3,
              unet_channels=4, unet_max_channels=8, num_classes=5)
    feats = {"masks": (torch.rand(2, 2, 256, 256) > 0.5).float(),
             "weight": torch.rand(2, 1, 256, 256)}
    labels = torch.zeros(2, 2, 5)
    labels[..., 1] = 1
    assert "visual_scores" not in SoundOfPixels(**kw)(batch)
    torch.manual_seed(0)
    sop = SoundOfPixels(**kw, sop_classifier=True).train()
    out = sop(batch)
    assert out["visual_scores"].shape == (2, 2, 5)
    terms = losses.tribert_loss(out, feats, labels)
    assert terms["visual"] > 0
    terms["visual"].backward()
    assert sop.frames_net.backbone.conv1.weight.grad.abs().sum() > 0
    assert sop.sound_net.norm.weight.grad is None      # the labels reach only the frames side


def test_a_corrupt_checkpoint_fails_with_its_path(tmp_path):
    path = tmp_path / "bad.pt"
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="bad.pt"):
        checkpoint.load(path)


def test_printing_gives_parameter_counts_per_component(tiny_model):
    text = repr(tiny_model)
    total = sum(p.numel() for p in tiny_model.parameters())
    assert f"{total:,} parameters" in text
    for part in ("visual.backbone", "pose_embedding", "encoder.co_attention",
                 "encoder.self_attention", "unet"):
        assert part in text
    counts = tiny_model.parameter_counts()
    assert sum(v for k, v in counts.items() if k != "total") == total


def test_build_model_from_the_tiny_preset():
    model = build_model(validate_section("model", {"preset": "tiny"}))
    out = model.eval()(make_batch(B=1, N=2, size=112, pose_channels=256, joints=68))
    assert out["mask_logits"].shape == (1, 2, 256, 256)


@pytest.mark.slow
def test_paper_preset_builds_and_runs_one_forward_pass():
    torch.set_num_threads(2)
    model = build_model(validate_section("model", {"preset": "paper"})).eval()
    assert 250e6 < sum(p.numel() for p in model.parameters()) < 300e6
    with torch.no_grad():
        out = model(make_batch(B=1, N=1, size=224, pose_channels=256, joints=68))
    assert out["mask_logits"].shape == (1, 1, 256, 256)
    assert out["tokens"]["visual"].shape == (1, 1, 7, 1024)
    assert torch.isfinite(out["mask_logits"]).all()


def test_uint8_frames_are_normalised_like_float_frames(tiny_model, batch):
    tiny_model.eval()
    raw = torch.randint(0, 256, (2, 2, 3, 64, 64, 3), dtype=torch.uint8)
    mean, std = torch.tensor([0.485, 0.456, 0.406]), torch.tensor([0.229, 0.224, 0.225])
    normalised = ((raw.float() / 255 - mean) / std).permute(0, 1, 2, 5, 3, 4)
    a = tiny_model({**batch, "frames": raw})["mask_logits"]
    b = tiny_model({**batch, "frames": normalised})["mask_logits"]
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


def test_missing_pose_inputs_mean_every_person_absent(tiny_model, batch):
    tiny_model.eval()
    no_pose = {k: batch[k] for k in ("frames", "log_mag_mix")}
    all_absent = {**batch, "absent": torch.ones_like(batch["absent"])}
    torch.testing.assert_close(tiny_model(no_pose)["fused"], tiny_model(all_absent)["fused"])


@pytest.mark.parametrize("stream", ["visual", "pose"])
def test_an_erased_stream_carries_no_information(batch, stream):
    """Supplement Table 1: with ``erase`` a stream's inputs no longer change any output."""
    model = TriBERT(**{**TINY, "erase": stream}).eval()
    before = model(batch)
    changed = dict(batch)
    key = "frames" if stream == "visual" else "pose"
    changed[key] = torch.randn_like(batch[key]) * 10
    after = model(changed)
    for out in ("mask_logits", "fused", "audio_logits"):
        torch.testing.assert_close(after[out], before[out], msg=out)
    assert after["tokens"][stream].shape == before["tokens"][stream].shape
    # the same model without erasing does see the change (the test can fail)
    plain = TriBERT(**TINY).eval()
    plain.load_state_dict(model.state_dict())
    assert not torch.allclose(plain(changed)["fused"], plain(batch)["fused"])


def test_erasing_per_call_matches_the_erasing_model(batch):
    model = TriBERT(**{**TINY, "erase": "pose"}).eval()
    plain = TriBERT(**TINY).eval()
    plain.load_state_dict(model.state_dict())
    torch.testing.assert_close(plain({**batch, "erase": ("pose",)})["fused"],
                               model(batch)["fused"])
    with torch.no_grad():
        audio_erased = plain({**batch, "erase": ("audio",)})
    assert (audio_erased["inputs"]["audio"][..., 1:, :] == 0).all()
    with pytest.raises(ValueError, match="unknown stream"):
        plain({**batch, "erase": ("smell",)})


def test_erase_is_a_validated_model_param():
    from pipeline.params import ParamsError
    assert validate_section("model", {"erase": "visual"}).erase == "visual"
    with pytest.raises(ParamsError, match="erase"):
        validate_section("model", {"erase": "audio"})


def test_attention_maps_are_the_maps_that_pool_the_tokens(tiny_model, batch):
    from model.visual import prepare_frames
    tiny_model.eval()   # dropout in the expansive branch would change the maps between calls
    frames = prepare_frames(batch["frames"].reshape(-1, *batch["frames"].shape[3:]))
    maps, top = tiny_model.visual.attention_maps(frames)
    assert maps.shape[:2] == top.shape == (frames.shape[0], tiny_model.persons)
    _, scores = tiny_model.visual(frames)
    assert torch.equal(scores.topk(tiny_model.persons, dim=1).indices, top)
    # a class's score is the spatial mean of its map
    torch.testing.assert_close(maps.mean(dim=(2, 3)), scores.gather(1, top))


def test_a_package_older_than_an_argument_loads_with_its_default(tmp_path, tiny_model):
    pkg = checkpoint.package(tiny_model)
    del pkg["kwargs"]["erase"]               # written before ``erase`` existed
    torch.save(pkg, tmp_path / "old.pt")
    model = checkpoint.load(tmp_path / "old.pt")
    assert model.erase == () and model.init_kwargs["erase"] == "none"
    pkg["kwargs"]["future_option"] = 1       # written by a newer version: refused, named
    torch.save(pkg, tmp_path / "new.pt")
    with pytest.raises(ValueError, match=r"new\.pt.*unknown here: future_option"):
        checkpoint.load(tmp_path / "new.pt")
