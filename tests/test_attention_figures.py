"""Stage ``attention`` (supplement Fig. 2) on tiny real shards with a random-init tiny TriBERT."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from analysis_data import write_clips, write_model
from pipeline.evaluate import attention_figures as A
from pipeline.evaluate.embeddings import load_tribert
from stages.attention import main as attention_main


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("attention")
    return {"dir": d, "clips": write_clips(d / "clips"), "model": write_model(d / "tribert.pt")}


def test_maps_cover_the_frame_in_unit_range(data):
    torch.set_num_threads(1)
    model = load_tribert(data["model"])
    frames = np.random.default_rng(0).integers(0, 255, (3, 40, 48, 3), dtype=np.uint8)
    maps, top = A.frame_maps(model, frames)
    assert maps.shape == (3, 2, 40, 48) and top.shape == (3, 2)
    assert maps.min() >= 0.0 and maps.max() <= 1.0 + 1e-6
    assert (top[:, 0] != top[:, 1]).all()


def test_maps_refuse_a_model_in_training_mode(data):
    model = load_tribert(data["model"]).train()
    with pytest.raises(AssertionError, match="eval"):
        A.frame_maps(model, np.zeros((3, 32, 32, 3), np.uint8))


def test_clip_choice_is_seeded_and_distinct():
    assert A.pick_clips(10, 4, 0) == A.pick_clips(10, 4, 0)
    assert len(set(A.pick_clips(10, 4, 0))) == 4
    assert A.pick_clips(3, 5, 0) == [0, 1, 2]


def test_class_names_follow_the_model():
    assert A.class_names(21)[0] == "bagpipe" and A.class_names(11)[0] == "accordion"
    assert A.class_names(5) == tuple(f"class {i}" for i in range(5))


def test_the_stage_writes_one_png_per_clip_and_a_grid(data):
    params = data["dir"] / "params.yaml"
    params.write_text("attention:\n  count: 2\n  seed: 1\n  dpi: 30\n")
    out = data["dir"] / "results" / "attention"
    r = CliRunner().invoke(attention_main, ["--params", str(params), "--clips", str(data["clips"]),
                                            "--model", str(data["model"]), "--out", str(out)])
    assert r.exit_code == 0, r.output
    index = json.loads((out / "clips.json").read_text())
    assert index["split"] == "test" and len(index["clips"]) == 2
    pngs = sorted(p.name for p in out.glob("*.png"))
    assert pngs == sorted([c["file"] for c in index["clips"]] + ["grid.png"])
    for name in pngs:
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert all(len(c["classes"]) == 3 and c["labels"] for c in index["clips"])
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".tmp-")]
