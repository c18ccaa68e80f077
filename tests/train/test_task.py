"""Mix-and-separate with the real tiny TriBERT on small real shards."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from model import checkpoint
from pipeline.train import distrib
from model.build import build_model
from pipeline.schema import ModelParams
from pipeline.train.solver import Paths, Solver
from pipeline.separation.infer import estimate_waveforms
from pipeline.train.task import SeparationTask
from model.visual import prepare_frames
from pipeline.data import spectrogram as sp
from pipeline.data.dataset import MixDataset, collate
from toy import settings

torch.set_num_threads(1)
SMALL = ModelParams(preset="tiny", image_size=32, unet_depth=3, layers=1)
WEIGHTS = {"mask": 1.0, "visual": 1.0, "pose": 1.0, "audio": 1.0}


def test_frames_are_normalised_channels_first():
    frames = torch.full((1, 2, 3, 4, 5, 3), 255, dtype=torch.uint8)
    x = prepare_frames(frames)
    assert x.shape == (1, 2, 3, 3, 4, 5)
    assert torch.allclose(x[0, 0, 0, :, 0, 0], (1 - torch.tensor([0.485, 0.456, 0.406]))
                          / torch.tensor([0.229, 0.224, 0.225]))


def test_mask_gap_is_zero_for_identical_masks_and_one_for_complementary():
    from pipeline.separation.infer import source_mask_gap
    logits = torch.zeros(2, 2, 4, 4)
    assert source_mask_gap(logits) == 0
    logits[:, 0], logits[:, 1] = 30.0, -30.0
    assert torch.isclose(source_mask_gap(logits), torch.tensor(1.0))


def test_oracle_masks_separate_better_than_the_mixture(clip_dir):
    """The inference path (unwarp, threshold, mixture phase) turns good masks into a high SDR."""
    val = MixDataset(clip_dir, "val")
    batch = collate([val[0], val[1]])
    feats = sp.mixture_features(batch["audio"])
    ideal = torch.where(feats["masks"] > 0, 20.0, -20.0)   # logits of the ideal binary masks
    est = estimate_waveforms(ideal, feats).numpy()
    from pipeline.separation.metrics import separation_metrics
    r = separation_metrics(batch["audio"][0, :, :est.shape[-1]].numpy(), est[0])
    assert r.mean()["sdr"] > r.mean()["sdr_mix"] + 5


def test_mask_choice_sets_the_output_ratio_normalized_or_thresholded(clip_dir):
    """``mask="ratio"`` applies the probabilities, ``"binary"`` the thresholded masks,
    ``"normalized"`` the probabilities divided by their sum over the sources; hedging logits
    (probability 0.6 everywhere) give a 0.6-scaled mixture, the whole mixture, or half of it."""
    val = MixDataset(clip_dir, "val")
    batch = collate([val[0]])
    feats = sp.mixture_features(batch["audio"])
    logits = torch.full_like(feats["masks"], math.log(0.6 / 0.4))
    ratio = estimate_waveforms(logits, feats, mask="ratio")
    binary = estimate_waveforms(logits, feats, mask="binary")
    mix = feats["mix"][..., :ratio.shape[-1]]
    assert torch.allclose(binary[0, 0], mix[0], atol=1e-3)
    assert torch.allclose(ratio[0, 0], 0.6 * mix[0], atol=1e-3)
    # normalized: 0.6 and 0.6 share the bin, half each, and the two estimates add up to the
    # mixture; a second source that claims 0.2 leaves the first 0.75
    normalized = estimate_waveforms(logits, feats, mask="normalized")
    assert torch.allclose(normalized[0, 0], 0.5 * mix[0], atol=1e-3)
    assert torch.allclose(normalized[0].sum(0), mix[0], atol=1e-3)
    uneven = logits.clone()
    uneven[:, 1] = math.log(0.2 / 0.8)
    assert torch.allclose(estimate_waveforms(uneven, feats, mask="normalized")[0, 0],
                          0.75 * mix[0], atol=1e-3)
    # one source: nothing to share with, its ratio mask is kept
    single = estimate_waveforms(logits[:, :1], feats, mask="normalized")
    assert torch.allclose(single[0, 0], 0.6 * mix[0], atol=1e-3)
    with pytest.raises(ValueError, match="mask"):
        SeparationTask(WEIGHTS, val, mask="soft")
    with pytest.raises(ValueError, match="mask"):
        estimate_waveforms(logits, feats, mask="soft")


def test_training_validates_on_val_and_never_reads_test(clip_dir, tmp_path):
    torch.manual_seed(0)
    train, val = MixDataset(clip_dir, "train"), MixDataset(clip_dir, "val")
    task = SeparationTask(WEIGHTS, val, val_mixtures=3, batch_size=2, collate=collate)
    paths = Paths(tmp_path / "last.pt", tmp_path / "best.pt", tmp_path / "live", tmp_path / "p")
    solver = Solver(task, build_model(SMALL), train, settings(batch_size=2, epochs=1,
                    steps_per_epoch=2, lr=1e-3), paths,
                    distrib.World(0, 1, torch.device("cpu")), collate=collate, log=lambda m: None)
    state = solver.run()
    record = state.history[0]
    for key in ("train/loss", "train/mask", "val/sdr", "val/mask_gap", "val/sdr_mix", "val/acc_visual",
                "val/acc_pose", "val/acc_audio", "val/loss"):
        assert math.isfinite(record[key]), key     # a test clip (NaN audio) would poison these
    assert record["val/mixtures"] == 3
    model = checkpoint.load(paths.best)
    assert type(model).__name__ == "TriBERT" and model.init_kwargs["layers"] == 1


def test_signal_weight_adds_the_output_snr_to_the_training_loss(clip_dir):
    """``train.loss.signal`` > 0: the task's loss gains the waveform SNR term of its val mask
    kind, weighted and capped at ``signal_cap``; 0 leaves the four terms of before; binary
    masks are refused."""
    from pipeline.train import losses
    from pipeline.separation.infer import forward
    train = MixDataset(clip_dir, "train")
    batch = collate([train[0], train[1]])
    torch.manual_seed(0)
    model = build_model(SMALL).eval()
    off = SeparationTask(WEIGHTS, None)
    on = SeparationTask({**WEIGHTS, "signal": 0.25}, None, mask="ratio")
    with torch.no_grad():
        total_off, figures_off = off.loss(model, batch, torch.device("cpu"))
        total_on, figures_on = on.loss(model, batch, torch.device("cpu"))
        feats, out = forward(model, batch, torch.device("cpu"))
    assert "signal" not in figures_off and set(figures_on) == set(figures_off) | {"signal"}
    expected = losses.signal_loss(out["mask_logits"], feats, "ratio")
    assert math.isclose(figures_on["signal"], float(expected), rel_tol=1e-5)
    assert math.isclose(float(total_on), float(total_off) + 0.25 * float(expected), rel_tol=1e-5)
    # train.signal_cap reaches the term: a 1 dB cap gives the capped SNR, not the 30 dB one
    capped = SeparationTask({**WEIGHTS, "signal": 0.25}, None, mask="ratio", signal_cap=1.0)
    with torch.no_grad():
        _, figures_capped = capped.loss(model, batch, torch.device("cpu"))
    expected_capped = losses.signal_loss(out["mask_logits"], feats, "ratio", cap_db=1.0)
    assert math.isclose(figures_capped["signal"], float(expected_capped), rel_tol=1e-5)
    assert not math.isclose(figures_capped["signal"], figures_on["signal"], rel_tol=1e-3)
    with pytest.raises(ValueError, match="binary"):
        SeparationTask({**WEIGHTS, "signal": 1.0}, None, mask="binary")


def test_pose_shards_feed_the_pose_stream(clip_dir, pose_dir):
    from pipeline.separation.infer import forward
    from pipeline.train.runner import datasets
    train, _ = datasets(clip_dir, pose_dir, seed=0)
    batch = collate([train[0], train[1]])
    assert batch["pose.features"].shape == (2, 2, 3, 2, 256, 68)
    torch.manual_seed(0)
    model = build_model(SMALL).eval()
    with torch.no_grad():
        _, out = forward(model, batch, torch.device("cpu"))
        batch["pose.features"] = batch["pose.features"] * 3
        _, out2 = forward(model, batch, torch.device("cpu"))
    assert out["pose_scores"].shape == (2, 2, 21)
    assert not torch.allclose(out["pose_scores"], out2["pose_scores"])   # pose is read


def test_separated_weight_adds_the_critics_term_and_needs_a_critic(clip_dir):
    """``train.loss.separated`` > 0 with ``model.critic`` > 0: the task's loss gains the
    separated spectrograms' classification term, weighted; the critic trains in the step;
    without a critic the task refuses in one line, and binary masks are refused."""
    from pipeline.train import losses
    from pipeline.separation.infer import forward
    train = MixDataset(clip_dir, "train")
    batch = collate([train[0], train[1]])
    torch.manual_seed(0)
    model = build_model(SMALL.replace(critic=4)).eval()
    assert model.critic is not None and build_model(SMALL).critic is None
    task = SeparationTask({**WEIGHTS, "separated": 0.5}, None)
    off = SeparationTask(WEIGHTS, None)
    total, figures = task.loss(model, batch, torch.device("cpu"))
    with torch.no_grad():
        total_off, figures_off = off.loss(model, batch, torch.device("cpu"))
        feats, out = forward(model, batch, torch.device("cpu"))
        expected = losses.separated_loss(model.critic, out["mask_logits"], feats,
                                         task.labels(batch, torch.device("cpu")))
    assert set(figures) == set(figures_off) | {"separated"}
    assert math.isclose(figures["separated"], float(expected), rel_tol=1e-5)
    assert math.isclose(total.item(), float(total_off) + 0.5 * float(expected), rel_tol=1e-5)
    total.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.critic.parameters())
    with pytest.raises(ValueError, match="critic"):
        task.loss(build_model(SMALL).eval(), batch, torch.device("cpu"))
    with pytest.raises(ValueError, match="binary"):
        SeparationTask({**WEIGHTS, "separated": 1.0}, None, mask="binary")


def test_trajectory_augmentation_reaches_training_batches_only(clip_dir, pose_dir, monkeypatch):
    import pipeline.train.task as task_module
    from pipeline.train.runner import datasets
    train, _ = datasets(clip_dir, pose_dir, seed=0)
    batch = collate([train[0], train[1]])
    seen = []

    class Seen(Exception):
        pass

    def spy(model, b, device):
        seen.append(b["pose.trajectory"])
        raise Seen

    monkeypatch.setattr(task_module, "forward", spy)
    model = torch.nn.Linear(1, 1)
    for flag, training in ((True, True), (True, False), (False, True)):
        task = SeparationTask(WEIGHTS, None, augment_trajectory=flag)
        model.train(training)
        with pytest.raises(Seen):
            task.loss(model, batch, torch.device("cpu"))
    moved, val, off = seen
    assert moved.shape == batch["pose.trajectory"].shape
    assert not torch.equal(moved, batch["pose.trajectory"])    # training, on: augmented
    assert torch.equal(val, batch["pose.trajectory"])          # eval mode: as read
    assert torch.equal(off, batch["pose.trajectory"])          # off: as read
