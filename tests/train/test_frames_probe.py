"""scripts/frames_probe.py (docs/experiments.md section 19): it trains the frames backbone on the
training split's solo clips, scores the unseen ones, and saves a backbone that Sound-of-Pixels
loads through model.backbone_weights."""
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
