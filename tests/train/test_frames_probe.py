"""The frames backbone's instrument-classification pre-training (docs/experiments.md section 19):
scripts/frames_probe.py trains it on the training split's solo clips, scores the unseen ones, and
saves a backbone that Sound-of-Pixels loads through model.backbone_weights; the train stage runs
the same pre-training with train.frames_pretrain > 0 and trains the backbone at train.backbone_lr
times the learning rate."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import torch

from model.build import build_model
from pipeline.schema import ModelParams

ROOT = Path(__file__).resolve().parents[2]


def test_probe_learns_the_classes_of_unseen_videos_and_saves_a_loadable_backbone(clip_dir, tmp_path):
    out = tmp_path / "frames.pt"
    run = subprocess.run(
        [sys.executable, "scripts/frames_probe.py", "--clips", str(clip_dir), "--size", "32",
         "--epochs", "12", "--threads", "1", "--save", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
        env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert run.returncode == 0, run.stderr
    # the fixture: 6 training videos x 2 clips, 5 val/test videos x 2 clips; each class's frames
    # have their own colour, so the unseen videos' classes are learnable
    assert "12 training and 10 val+test solo clips at 32 px" in run.stdout
    accuracy = [float(a) for a in re.findall(r"val\+test accuracy ([0-9.]+)", run.stdout)]
    assert len(accuracy) == 12 and accuracy[-1] >= 0.8, run.stdout

    params = ModelParams(arch="sop", preset="tiny", image_size=32, backbone_weights=str(out))
    model = build_model(params)
    saved = torch.load(out, weights_only=True)
    loaded = model.frames_net.backbone.state_dict()
    assert saved.keys() == loaded.keys()
    assert all(torch.equal(saved[k], loaded[k]) for k in saved)


SOP = {"arch": "sop", "preset": "tiny", "image_size": 32, "unet_depth": 3}


def _stage(tmp_path, clip_dir, pose="", model=None, **train):
    """Run the real train stage on the fixture (SoP, no pose unless given), returning its
    stdout."""
    import yaml
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["model"].update({**SOP, **(model or {})})
    params["train"].update({"epochs": 1, "steps_per_epoch": 1, "batch_size": 2,
                            "val_mixtures": 2, "memory_format": "contiguous", **train})
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    run = subprocess.run(
        [sys.executable, "-m", "stages.train", "--params", str(tmp_path / "params.yaml"),
         "--clips", str(clip_dir), "--pose", str(pose), "--out", str(tmp_path / "model.pt"),
         "--checkpoint", str(tmp_path / "ck" / "last.pt"), "--live", str(tmp_path / "live"),
         "--plots", str(tmp_path / "plots")],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
        env={**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"})
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    return run.stdout


def _backbone(package_path):
    state = torch.load(package_path, weights_only=True)["state_dict"]
    prefix = "frames_net.backbone."
    return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}


def test_train_stage_pretrains_the_frames_backbone_and_a_zero_backbone_lr_keeps_it(clip_dir,
                                                                                   tmp_path):
    out = _stage(tmp_path, clip_dir, frames_pretrain=3, backbone_lr=0.0, seed=2)
    assert out.count("frames backbone: epoch") == 3, out
    cache = torch.load(tmp_path / "ck" / "frames_pretrain.pt", weights_only=True)["backbone"]
    torch.manual_seed(2)    # the random initialisation the stage started from
    fresh = build_model(ModelParams(**SOP)).frames_net.backbone.state_dict()
    weights = [k for k in fresh if k.endswith("weight")]
    assert any(not torch.equal(cache[k], fresh[k]) for k in weights)   # it was trained
    # the separation step trained the rest of the model but not the frozen backbone's weights:
    # the model holds the pre-trained ones
    trained = _backbone(tmp_path / "model.pt")
    assert all(torch.equal(trained[k], cache[k]) for k in weights)

    # a second run (a new output, the same checkpoint folder) reads the pre-training back
    (tmp_path / "ck" / "last.pt").unlink()
    again = _stage(tmp_path, clip_dir, frames_pretrain=3, backbone_lr=0.0, seed=2)
    assert "frames backbone: epoch" not in again and "read from" in again, again


def test_backbone_lr_puts_the_frames_backbone_in_its_own_group():
    from pipeline.train.solver import param_groups
    model = build_model(ModelParams(**SOP))
    backbone = {id(p) for p in model.frames_net.backbone.parameters()}
    every = list(model.parameters())

    (one,) = param_groups(model, 1e-3, 1.0)
    assert len(one["params"]) == len(every)

    rest, slow = param_groups(model, 1e-3, 0.1)
    assert {id(p) for p in slow["params"]} == backbone and slow["lr"] == 1e-4
    assert not backbone & {id(p) for p in rest["params"]}
    assert len(rest["params"]) + len(slow["params"]) == len(every)

    (frozen,) = param_groups(model, 1e-3, 0.0)
    assert not backbone & {id(p) for p in frozen["params"]}
    assert not any(p.requires_grad for p in model.frames_net.backbone.parameters())


def test_probe_and_train_stage_pretrain_on_playing_area_crops(clip_dir, pose_dir, tmp_path):
    run = subprocess.run(
        [sys.executable, "scripts/frames_probe.py", "--clips", str(clip_dir), "--size", "32",
         "--epochs", "2", "--threads", "1", "--playing-area", "0.25", "--pose", str(pose_dir)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
        env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert run.returncode == 0, run.stderr
    assert "at 32 px, playing-area crops with margin 0.25" in run.stdout
    assert len(re.findall(r"val\+test accuracy [0-9.]+", run.stdout)) == 2, run.stdout

    # the stage pre-trains on crops when SoP crops (model.sop_crop), and a cached pre-training
    # on whole frames is not taken for it
    plain = _stage(tmp_path, clip_dir, pose=pose_dir, frames_pretrain=1, seed=2)
    assert "frames backbone: epoch 1/1" in plain and "crops" not in plain, plain
    (tmp_path / "ck" / "last.pt").unlink()
    cropped = _stage(tmp_path, clip_dir, pose=pose_dir, model={"sop_crop": 0.25},
                     frames_pretrain=1, seed=2)
    assert "playing-area crops" in cropped and "frames backbone: epoch 1/1" in cropped, cropped
