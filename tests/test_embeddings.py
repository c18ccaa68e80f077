"""Stage ``embed``: the embedding files' contract (pipeline/evaluate/embeddings.py) on tiny real shards
with a random-init tiny TriBERT."""
from __future__ import annotations

import h5py
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from analysis_data import TINY, write_clips, write_model, write_pose
from model.checkpoint import package
from pipeline.separation.infer import model_inputs
from model.tribert import TriBERT
from pipeline.evaluate import embeddings as E
from pipeline.data import spectrogram as sp
from pipeline.schema import EmbedParams
from pipeline.data.dataset import ClipDataset
from stages.embed import main as embed_main

PARAMS = EmbedParams(batch_size=3, threads=1)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("embed")
    clips = write_clips(d / "clips")
    pose = write_pose(clips, d / "pose")
    model = write_model(d / "tribert.pt")
    E.run(clips, pose, model, d / "emb", PARAMS, progress=False, log=lambda s: None)
    return {"dir": d, "clips": clips, "pose": pose, "model": model, "emb": d / "emb"}


@pytest.fixture(scope="module")
def net(data):
    torch.set_num_threads(1)
    return E.load_tribert(data["model"])


def test_rows_follow_the_clip_dataset_order(data):
    for split in E.SPLITS:
        ds = ClipDataset(data["clips"], split)
        with h5py.File(data["emb"] / f"{split}.h5", "r") as f:
            assert f["video_id"].dtype == np.dtype("S11")
            assert list(f["video_id"][()].astype(str)) == list(ds.video_id)
            np.testing.assert_array_equal(f["clip"][()], np.arange(len(ds)))
            assert f["clip"].dtype == np.int64
            np.testing.assert_array_equal(f["label"][()], ds.label)
            assert f["label"].dtype == np.uint8 and f["label"].shape == (len(ds), 21)


def test_kind_and_pose_validity_match_the_shards(data):
    ds = ClipDataset(data["clips"], "train", fields=(), extra={"pose": (data["pose"], ["absent"])})
    with h5py.File(data["emb"] / "train.h5", "r") as f:
        kinds = f["kind"][()].astype(str)
        valid = f["valid/pose"][()]
    absent = np.stack([ds.clip(i)["pose.absent"].numpy() for i in range(len(ds))])
    assert set(kinds) == {"solo", "duet"}
    assert valid.dtype == bool and valid[:, 0].all()
    np.testing.assert_array_equal(valid[:, 1:], ~absent.reshape(len(ds), -1).astype(bool))
    np.testing.assert_array_equal(valid[:, 2], kinds == "duet")   # frame 0, second person


def test_groups_shapes_and_attributes(data):
    dims = {"visual": TINY["hidden_visual"], "pose": TINY["hidden_pose"],
            "audio": TINY["hidden_audio"]}
    with h5py.File(data["emb"] / "val.h5", "r") as f:
        n = len(f["video_id"])
        for g in E.GROUPS:
            for s, d in dims.items():
                assert f[g][s].shape == (n, 7, d) and f[g][s].dtype == np.float32, (g, s)
                assert np.isfinite(f[g][s][()]).all()
        assert f["valid/pose"].shape == (n, 7)
        assert f.attrs["split"] == "val" and f.attrs["tokens"] == 7
        assert f.attrs["model"] == str(data["model"])
        assert f.attrs["model_sha256"] == E.file_sha256(data["model"])


def _batch(data, split="train", idx=(0, 1, 2)):
    return E.read_clips(E.clip_dataset(data["clips"], split, data["pose"]), idx)


def test_stored_tokens_are_the_models_outputs(data, net):
    batch = _batch(data, "test", (0, 1))
    with torch.no_grad():
        feats = sp.mixture_features(batch["audio"].float())
        out = net(model_inputs(net, batch, feats, torch.device("cpu")))
    with h5py.File(data["emb"] / "test.h5", "r") as f:
        for s in ("visual", "pose", "audio"):
            np.testing.assert_allclose(f["transformer"][s][:2], out["tokens"][s][:, 0].numpy(),
                                       rtol=1e-5, atol=1e-6)
            np.testing.assert_allclose(f["input"][s][:2], out["inputs"][s][:, 0].numpy(),
                                       rtol=1e-5, atol=1e-6)


def test_erased_features_differ_from_the_plain_ones(data):
    with h5py.File(data["emb"] / "train.h5", "r") as f:
        for s in ("visual", "pose", "audio"):
            gap = np.abs(f["erased"][s][()] - f["transformer"][s][()]).max()
            assert gap > 1e-4, s


@pytest.mark.parametrize("stream,changed", [
    ("visual", ("audio", "pose.features", "pose.boxes")),
    ("audio", ("frames", "pose.features", "pose.boxes")),
    ("pose", ("frames", "audio")),
])
def test_erased_features_ignore_the_erased_streams_inputs(data, net, stream, changed):
    batch = _batch(data)
    before = E.embed_batch(net, batch)
    g = torch.Generator().manual_seed(1)
    for key in changed:
        x = batch[key]
        noise = torch.randint(0, 255, x.shape, generator=g, dtype=torch.uint8) \
            if x.dtype == torch.uint8 else torch.rand(x.shape, generator=g).to(x.dtype) * 0.5
        batch = {**batch, key: noise}
    after = E.embed_batch(net, batch)
    np.testing.assert_allclose(after[f"erased/{stream}"], before[f"erased/{stream}"],
                               rtol=1e-5, atol=1e-6)
    assert np.abs(after[f"transformer/{stream}"] - before[f"transformer/{stream}"]).max() > 1e-4


def _invoke(data, out, model=None, pose=None):
    params = data["dir"] / "params.yaml"
    params.write_text(f"embed:\n  batch_size: {PARAMS.batch_size}\n  threads: 1\n")
    return CliRunner().invoke(embed_main, [
        "--params", str(params), "--clips", str(data["clips"]),
        "--pose", str(pose or data["pose"]), "--model", str(model or data["model"]),
        "--out", str(out), "--no-progress"])


def test_rerun_writes_identical_files(data, tmp_path):
    r = _invoke(data, tmp_path / "emb")
    assert r.exit_code == 0, r.output
    for split in E.SPLITS:
        assert (tmp_path / "emb" / f"{split}.h5").read_bytes() == \
            (data["emb"] / f"{split}.h5").read_bytes(), split
    assert sorted(p.name for p in (tmp_path / "emb").iterdir()) == ["test.h5", "train.h5", "val.h5"]


def test_a_bad_model_file_is_named(data, tmp_path):
    bad = tmp_path / "broken.pt"
    bad.write_bytes(b"not a torch file")
    r = _invoke(data, tmp_path / "emb", model=bad)
    assert r.exit_code == 1 and str(bad) in r.output
    assert not (tmp_path / "emb" / "train.h5").exists()


def test_a_bad_pose_shard_is_named(data, tmp_path):
    pose = tmp_path / "pose"
    pose.mkdir()
    for p in sorted(data["pose"].iterdir()):
        (pose / p.name).write_bytes(p.read_bytes())
    victim = pose / "shard-0001.h5"
    victim.write_bytes(victim.read_bytes()[:200])
    r = _invoke(data, tmp_path / "emb", pose=pose)
    assert r.exit_code == 1 and str(victim) in r.output


def test_without_pose_shards_no_person_is_valid(data, tmp_path):
    E.run(data["clips"], None, data["model"], tmp_path, PARAMS, splits=("val",), progress=False,
          log=lambda s: None)
    with h5py.File(tmp_path / "val.h5", "r") as f:
        valid = f["valid/pose"][()]
        assert valid[:, 0].all() and not valid[:, 1:].any()
        assert np.abs(f["input/pose"][:, 1:]).max() == 0.0     # absent persons: zero tokens
