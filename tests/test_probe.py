"""Stage ``probe`` (supplement Table 4) on toy embedding files in the embed stage's format."""
from __future__ import annotations

import json
import math

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from pipeline.evaluate import probe as P
from pipeline.schema import ProbeParams
from stages.probe import main as probe_main

L, C = 7, 21
DIMS = {"visual": 12, "pose": 12, "audio": 8}
CLASSES = (2, 5, 9, 14)          # the toy set's classes
PARAMS = ProbeParams(hidden=32, epochs=30, lr=3e-3, batch_size=16, seed=0, repeats=1, threads=1)


def write_split(path, labels: np.ndarray, signal: float, seed: int):
    """Contract-format file: tokens = signal x class one-hot (repeated) + unit noise."""
    rng = np.random.default_rng(seed)
    n = len(labels)
    with h5py.File(path, "w") as f:
        f["video_id"] = np.asarray([f"v{i:010d}" for i in range(n)], dtype="S11")
        f["clip"] = np.arange(n, dtype=np.int64)
        f["label"] = labels.astype(np.uint8)
        f["kind"] = np.where(labels.sum(1) > 1, b"duet", b"solo").astype("S4")
        valid = np.ones((n, L), bool)
        valid[:, 2::2] = False
        f["valid/pose"] = valid
        for g in ("input", "erased", "transformer"):
            for s, d in DIMS.items():
                onehot = np.zeros((n, d), np.float32)
                slot = [CLASSES.index(c) for c in labels.argmax(1)]   # distinct per class
                onehot[np.arange(n), slot] = 1.0
                x = signal * onehot[:, None, :] + rng.standard_normal((n, L, d))
                f[f"{g}/{s}"] = x.astype(np.float32)


def labels_for(n: int, seed: int, duets: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y = np.zeros((n, C), np.uint8)
    y[np.arange(n), rng.choice(CLASSES, size=n)] = 1
    for i in range(duets):
        y[i, CLASSES[(list(CLASSES).index(int(y[i].argmax())) + 1) % len(CLASSES)]] = 1
    return y


def toy(dirpath, signal: float, duets: int = 0):
    for k, (split, n) in enumerate((("train", 64), ("val", 24), ("test", 32))):
        write_split(dirpath / f"{split}.h5", labels_for(n, k, duets if split == "test" else 0),
                    signal, 10 + k)
    return dirpath


@pytest.fixture(scope="module")
def separable(tmp_path_factory):
    d = toy(tmp_path_factory.mktemp("separable"), signal=4.0)
    return d, P.run(d, PARAMS, log=lambda s: None)


@pytest.fixture(scope="module")
def noise(tmp_path_factory):
    d = toy(tmp_path_factory.mktemp("noise"), signal=0.0, duets=8)
    return d, P.run(d, PARAMS, log=lambda s: None)


def test_the_probe_learns_a_separable_set(separable):
    _, m = separable
    for s in P.STREAMS:
        for k in P.KINDS:
            assert m[s][k]["top1"] >= 0.9, (s, k, m[s][k])


def test_chance_is_k_over_classes_for_single_labels(separable):
    _, m = separable
    for k in P.TOPK:
        assert m["chance"][f"top{k}"] == pytest.approx(k / C)


def test_chance_counts_both_labels_of_a_duet():
    y = np.zeros((2, C), np.uint8)
    y[0, 3] = 1
    y[1, [3, 4]] = 1
    expected = (1 / C + (1 - math.comb(C - 2, 1) / C)) / 2
    assert P.chance_topk(y, 1) == pytest.approx(expected)


def test_topk_is_monotone_in_k(noise):
    _, m = noise
    for s in P.STREAMS:
        for k in P.KINDS:
            r = m[s][k]
            assert r["top1"] <= r["top5"] <= r["top10"], (s, k, r)


def test_topk_hits_on_any_true_label():
    scores = np.array([[0.1, 0.9, 0.5, 0.0], [0.8, 0.1, 0.2, 0.3]])
    labels = np.array([[0, 0, 1, 0], [0, 1, 0, 1]])  # row 1: a duet
    assert P.topk_accuracy(scores, labels, 1) == 0.0
    assert P.topk_accuracy(scores, labels, 2) == 1.0  # row 0: class 2 second; row 1: class 3
    assert P.topk_accuracy(scores, labels[:, [0, 1, 2, 2]], 2) == 0.5  # row 1 without class 3


def test_the_same_seed_gives_the_same_metrics(separable):
    d, m = separable
    assert P.run(d, PARAMS, log=lambda s: None) == m


def test_mean_pooling_ignores_absent_pose_tokens(separable, tmp_path):
    d, _ = separable
    x, y = P.load_features(d / "test.h5", "input", "pose", "mean")
    path = tmp_path / "test.h5"
    path.write_bytes((d / "test.h5").read_bytes())
    with h5py.File(path, "r+") as f:
        t = f["input/pose"][()]
        t[:, 2::2] = 1e3                       # the absent persons' slots
        f["input/pose"][...] = t
    x2, _ = P.load_features(path, "input", "pose", "mean")
    np.testing.assert_allclose(x2, x, rtol=1e-6)
    assert x.shape == (len(y), DIMS["pose"])
    assert P.load_features(path, "input", "pose", "flatten")[0].shape == (len(y), L * DIMS["pose"])


def test_the_stage_writes_metrics_and_table(separable, tmp_path):
    d, m = separable
    params = tmp_path / "params.yaml"
    params.write_text("probe:\n  hidden: 32\n  epochs: 30\n  lr: 0.003\n  batch_size: 16\n"
                      "  repeats: 1\n")
    r = CliRunner().invoke(probe_main, ["--params", str(params), "--embeddings", str(d),
                                        "--out", str(tmp_path / "out")])
    assert r.exit_code == 0, r.output
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert metrics["visual"]["transformer"]["top1"] == m["visual"]["transformer"]["top1"]
    table = (tmp_path / "out" / "table.md").read_text()
    assert table.count("\n| ") == 1 + 9 + 1      # header, 9 feature rows, chance
    assert "TriBERT pose feature with visual/audio masked" in table


def test_a_missing_group_is_named(separable, tmp_path):
    d, _ = separable
    for s in ("train", "val", "test"):
        with h5py.File(d / f"{s}.h5", "r") as src, h5py.File(tmp_path / f"{s}.h5", "w") as f:
            for k in ("label", "input", "valid"):
                src.copy(k, f)
    with pytest.raises(ValueError, match=r"train\.h5.*erased"):
        P.run(tmp_path, PARAMS, log=lambda s: None)


def test_repeats_report_the_mean_and_spread_of_the_seeds(noise):
    d, _ = noise
    one = [P.probe_one(d, "input", "audio", PARAMS.replace(seed=s)) for s in (3, 4)]
    both = P.probe_one(d, "input", "audio", PARAMS.replace(seed=3, repeats=2))
    assert [r["seed"] for r in both["runs"]] == [3, 4]
    for k in P.TOPK:
        values = [o[f"top{k}"] for o in one]
        assert both[f"top{k}"] == pytest.approx(np.mean(values))
        assert both[f"top{k}_std"] == pytest.approx(np.std(values))


def test_the_figures_do_not_depend_on_the_worker_count(separable):
    """The probes run over ``jobs`` processes (2 in PARAMS' default); one process inline gives
    the same figures to the last bit, the chosen epochs included."""
    d, m = separable
    assert PARAMS.jobs == 2
    assert P.run(d, PARAMS.replace(jobs=1), log=lambda s: None) == m
