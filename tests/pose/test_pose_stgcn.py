"""ST-GCN: input normalisation, block and feature shapes, absent persons, learning, checkpoints."""
import numpy as np
import pytest
import torch

from pipeline.schema import StgcnParams
from pipeline.pose.stgcn import STGCN, Block, load_checkpoint, save_checkpoint, to_input
from pipeline.pose.halpe import halpe_adjacency

torch.set_num_threads(2)


def test_to_input_centres_each_person_and_zeroes_missing_joints():
    kp = np.zeros((2, 2, 68, 3), np.float32)
    kp[:, 0, :, :] = [100.0, 25.0, 0.8]
    kp[:, 0, 0, :2] = [60.0, 5.0]
    kp[1, 0, 7] = [30.0, 30.0, 0.0]            # a missing joint with stale coordinates
    boxes = np.zeros((2, 2, 4), np.float32)
    boxes[:, 0] = [60, 5, 100, 25]              # centre (80, 15), side 40
    x = to_input(kp, boxes)
    assert x.shape == (3, 2, 68, 2)
    np.testing.assert_allclose(x[:, 0, 1, 0], [0.5, 0.25, 0.8])
    np.testing.assert_allclose(x[:, 0, 0, 0], [-0.5, -0.25, 0.8])
    assert (x[:, 1, 7, 0] == 0).all()
    assert (x[..., 1] == 0).all()               # the absent person is all zeros


def test_block_shapes():
    a = torch.from_numpy(halpe_adjacency())
    x = torch.randn(2, 16, 12, 68)
    assert Block(16, 32, a, stride=1)(x).shape == (2, 32, 12, 68)
    assert Block(16, 32, a, stride=2)(x).shape == (2, 32, 6, 68)
    assert Block(16, 16, a, residual=False)(x).shape == (2, 16, 12, 68)


def test_network_feature_and_logit_shapes():
    model = STGCN(width=0.125).eval()
    x = torch.randn(3, 3, 16, 68, 2)
    with torch.no_grad():
        assert model.features(x).shape == (3, 256, 4, 68, 2)
        assert model(x).shape == (3, 21)
    assert [b.gcn.c_out for b in STGCN(width=1.0).blocks] == [64, 64, 64, 64, 128, 128, 128, 256, 256, 256]


def test_absent_person_gives_zero_features_and_does_not_change_the_other():
    model = STGCN(width=0.125).eval()
    x = torch.randn(1, 3, 8, 68, 2)
    x[:, 2] = 0.9
    solo = x.clone()
    solo[..., 1] = 0.0
    with torch.no_grad():
        f_duet, f_solo = model.features(x), model.features(solo)
    assert (f_solo[..., 1] == 0).all()
    torch.testing.assert_close(f_solo[..., 0], f_duet[..., 0])


def test_learns_class_dependent_motion(motion_sequences):
    from pipeline.pose.stgcn_train import train

    tr, va = motion_sequences
    p = StgcnParams(width=0.125, window=8, epochs=8, windows_per_video=2, batch_size=8, lr=3e-3)
    _, metrics = train(tr, va, p, log=lambda *_: None)
    print(f"ST-GCN on 4-class motion: val accuracy {metrics['val_accuracy']:.3f} (chance 0.25)")
    assert metrics["val_accuracy"] >= 0.6, metrics


def test_checkpoint_round_trip_with_weights_only(tmp_path):
    model = STGCN(width=0.125, dropout=0.1).eval()
    save_checkpoint(model, tmp_path / "m.pt", {"classes": ["a"], "metrics": {"val_accuracy": 0.5}})
    ckpt = torch.load(tmp_path / "m.pt", weights_only=True)
    assert ckpt["config"]["width"] == 0.125
    back = load_checkpoint(tmp_path / "m.pt")
    x = torch.randn(1, 3, 8, 68, 2)
    with torch.no_grad():
        torch.testing.assert_close(back(x), model(x))


def test_unusable_checkpoint_names_the_file(tmp_path):
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="bad.pt: cannot read ST-GCN checkpoint: not a PyTorch file"):
        load_checkpoint(tmp_path / "bad.pt")


def test_stage_writes_a_loadable_checkpoint_and_metrics(tmp_path):
    import json

    from pose_motion import SIZE, boxes_of, keypoint_sequence
    from pipeline.data import manifest
    from pipeline.pose import keypoints, stgcn_train

    rng = np.random.default_rng(0)
    rows = []
    for i, (cls, split) in enumerate([("cello", "train"), ("flute", "train"), ("cello", "val"),
                                      ("flute", "val"), ("flute", "test")]):
        vid = f"video{i:06d}"
        kp = keypoint_sequence(i % 2, 12, rng)
        keypoints.save(tmp_path / "kp" / f"{vid}.npz", kp, boxes_of(kp), ~kp[..., 2].any(-1),
                       fps=8, width=SIZE, height=SIZE, backend="annotations")
        rows.append(manifest.Row(vid, (cls,), split=split, video=f"{vid}.mp4"))
    manifest.write(tmp_path / "manifest.csv", rows)
    p = StgcnParams(width=0.0625, window=8, epochs=1, windows_per_video=1, batch_size=2)
    metrics = stgcn_train.run(tmp_path / "manifest.csv", tmp_path / "kp", tmp_path / "m" / "stgcn.pt",
                              tmp_path / "r" / "metrics.json", p, log=lambda *_: None)
    saved = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert saved["val_videos"] == 2 and saved["train_videos"] == 2
    assert saved == metrics
    model = load_checkpoint(tmp_path / "m" / "stgcn.pt")
    # the reported accuracy is the saved model's on the val videos, recomputed here: the share
    # of val videos whose best-scoring class is their one label
    seqs = stgcn_train.load_sequences(tmp_path / "manifest.csv", tmp_path / "kp", "val")
    hits = [bool(s.y[int(np.argmax(stgcn_train.video_scores(model, s.x, p.window)))])
            for s in seqs]
    assert len(hits) == 2
    assert saved["val_accuracy"] == saved["val_top1"] == sum(hits) / 2
    assert model.config["width"] == 0.0625
    assert torch.load(tmp_path / "m" / "stgcn.pt", weights_only=True)["classes"][14] == "cello"


def test_body_only_network_ignores_the_hand_joints_and_its_checkpoint_says_so(tmp_path):
    """``stgcn.hands: false``: the checkpoint records it and the pose features it gives (in
    pose_features and tribert separate, both through centre_features) do not depend on the hand
    joints, while a network with hands does."""
    from pipeline.pose.features import centre_features
    from pipeline.pose.stgcn import HAND_JOINTS, drop_hands

    torch.manual_seed(0)
    model = STGCN(width=0.125).eval()
    save_checkpoint(model, tmp_path / "hands.pt", {})
    model.hands = False
    save_checkpoint(model, tmp_path / "body.pt", {})
    with_hands, body = load_checkpoint(tmp_path / "hands.pt"), load_checkpoint(tmp_path / "body.pt")
    assert with_hands.hands is True and body.hands is False
    assert torch.load(tmp_path / "body.pt", weights_only=True)["hands"] is False

    x = np.random.default_rng(0).normal(0, 0.3, (2, 3, 16, 68, 2)).astype(np.float32)
    moved = x.copy()
    moved[..., HAND_JOINTS, :] += 0.5                 # only the hands move
    np.testing.assert_array_equal(centre_features(body, x), centre_features(body, moved))
    assert not np.allclose(centre_features(with_hands, x), centre_features(with_hands, moved))
    # body-only features are those of the input with the hands missing
    np.testing.assert_allclose(centre_features(body, x),
                               centre_features(with_hands, drop_hands(x)), rtol=1e-6, atol=1e-6)
    assert x[..., HAND_JOINTS, :].any()               # drop_hands copied, the input is intact


def test_stage_trains_on_body_joints_only_when_asked(tmp_path):
    from pose_motion import SIZE, boxes_of, keypoint_sequence
    from pipeline.data import manifest
    from pipeline.pose import keypoints, stgcn_train

    rng = np.random.default_rng(0)
    rows = []
    for i, split in enumerate(["train", "train", "val"]):
        vid = f"video{i:06d}"
        kp = keypoint_sequence(i % 2, 12, rng)
        keypoints.save(tmp_path / "kp" / f"{vid}.npz", kp, boxes_of(kp), ~kp[..., 2].any(-1),
                       fps=8, width=SIZE, height=SIZE, backend="annotations")
        rows.append(manifest.Row(vid, (("cello", "flute")[i % 2],), split=split,
                                 video=f"{vid}.mp4"))
    manifest.write(tmp_path / "manifest.csv", rows)
    seqs = stgcn_train.load_sequences(tmp_path / "manifest.csv", tmp_path / "kp", "train",
                                      hands=False)
    assert not seqs[0].x[:, :, 26:].any() and seqs[0].x[:, :, :26].any()
    p = StgcnParams(width=0.0625, window=8, epochs=1, windows_per_video=1, batch_size=2,
                    hands=False)
    stgcn_train.run(tmp_path / "manifest.csv", tmp_path / "kp", tmp_path / "stgcn.pt",
                    tmp_path / "metrics.json", p, log=lambda *_: None)
    assert load_checkpoint(tmp_path / "stgcn.pt").hands is False
