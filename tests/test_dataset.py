"""Mix-and-separate dataset over real HDF5 shards (small synthetic clips)."""
from __future__ import annotations

import pickle

import h5py
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from pipeline.data import shards
from pipeline.data.dataset import ClipDataset, MixDataset, collate
from pipeline.data.decode import DecodeParams
from pipeline.data.spectrogram import batch_spectrograms
from test_shards import fake_clip

torch.set_num_threads(1)
P = DecodeParams(size=32)
# (video, split) of each clip; two shards of three rows
LAYOUT = [("vidA_______", "train"), ("vidA_______", "train"), ("vidB_______", "train"),
          ("vidC_______", "train"), ("vidD_______", "val"), ("vidE_______", "val")]


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("clips")
    for s in range(2):
        with shards.ShardWriter(d / shards.shard_name(s), 3,
                                {**shards.file_attrs(P, "h"), "shard_index": s}) as w:
            for r in range(3):
                i = 3 * s + r
                vid, split = LAYOUT[i]
                w.write(r, {**fake_clip(i, size=32), "video_id": vid.encode(),
                            "split": split.encode()})
    return d


def _wave(i):
    return torch.from_numpy(fake_clip(i, size=32)["waveform"])


def write_extra(d, n_rows=(3, 3)):
    for s, n in enumerate(n_rows):
        with h5py.File(d / shards.shard_name(s), "w") as f:
            f["features"] = np.arange(n * 4, dtype=np.float32).reshape(n, 4) + 100 * s
            f["video_id"] = np.array([v for v, _ in LAYOUT[3 * s:3 * s + n]], dtype="S11")


def test_files_are_opened_lazily_and_the_dataset_pickles(clip_dir):
    ds = MixDataset(clip_dir, "train")
    assert ds._files.open == {}
    ds[0]
    assert len(ds._files.open) >= 1
    clone = pickle.loads(pickle.dumps(ds))
    assert clone._files.open == {}
    assert torch.equal(clone[1]["mix"], MixDataset(clip_dir, "train")[1]["mix"])


def test_eval_items_mix_different_videos_scaled_by_one_over_n(clip_dir):
    ds = MixDataset(clip_dir, "val", seed=3)
    item = ds[0]
    assert len(set(item["video_id"])) == 2
    assert torch.equal(item["gain"], torch.ones(2))
    assert torch.allclose(item["audio"][0], _wave(4) / 2)
    assert torch.allclose(item["mix"], item["audio"].sum(0))
    assert item["frames"].shape == (2, 3, 32, 32, 3) and item["frames"].dtype == torch.uint8
    assert item["label"].shape == (2, 21)


def test_training_gain_is_random_in_range_and_scaled(clip_dir):
    ds = MixDataset(clip_dir, "train", seed=0)
    gains = torch.stack([ds[i]["gain"] for i in range(len(ds))])
    assert gains.min() >= 0.5 and gains.max() <= 1.5 and gains.std() > 0
    item = ds[2]
    assert torch.allclose(item["audio"][0], _wave(2) * item["gain"][0] / 2)


def test_training_partners_never_share_a_video(clip_dir):
    ds = MixDataset(clip_dir, "train")
    for epoch in range(5):
        ds.set_epoch(epoch)
        for i in range(len(ds)):
            ids = ds[i]["video_id"]
            assert ids[0] != ids[1]


def test_training_pairs_change_with_epoch_and_repeat_with_seed(clip_dir):
    ds = MixDataset(clip_dir, "train", seed=1)
    e0 = [ds[i]["clip"].tolist() + ds[i]["gain"].tolist() for i in range(len(ds))]
    ds.set_epoch(1)
    e1 = [ds[i]["clip"].tolist() + ds[i]["gain"].tolist() for i in range(len(ds))]
    assert e0 != e1
    again = MixDataset(clip_dir, "train", seed=1)
    assert e0 == [again[i]["clip"].tolist() + again[i]["gain"].tolist() for i in range(len(ds))]


def test_eval_pairs_are_fixed_by_the_seed(clip_dir):
    a = MixDataset(clip_dir, "train", train=False, seed=5)
    b = MixDataset(clip_dir, "train", train=False, seed=5)
    assert np.array_equal(a.pairs, b.pairs)
    a.set_epoch(7)
    assert a[1]["clip"].tolist() == b[1]["clip"].tolist()
    others = [MixDataset(clip_dir, "train", train=False, seed=s).pairs for s in range(6, 12)]
    assert any(not np.array_equal(a.pairs, o) for o in others)


def test_dataloader_workers_and_batch_spectrograms(clip_dir):
    ds = MixDataset(clip_dir, "train")
    batches = list(DataLoader(ds, batch_size=2, num_workers=2, collate_fn=collate))
    assert sum(len(b["video_id"]) for b in batches) == len(ds)
    feats = batch_spectrograms(batches[0])
    assert feats["masks"].shape == (2, 2, 256, 256)
    assert torch.allclose(feats["mix"], batches[0]["mix"], atol=1e-6)


def test_single_clip_dataset_filters_by_split(clip_dir):
    assert len(ClipDataset(clip_dir, "val")) == 2 and len(ClipDataset(clip_dir)) == 6
    with pytest.raises(ValueError, match="no clips in split 'test'"):
        ClipDataset(clip_dir, "test")


def test_row_aligned_extra_fields_are_loaded(clip_dir, tmp_path):
    write_extra(tmp_path)
    ds = ClipDataset(clip_dir, "val", extra={"pose": str(tmp_path)})
    assert ds.extra_fields == {"pose": ("features",)}
    assert ds[0]["pose.features"].tolist() == [104.0, 105.0, 106.0, 107.0]   # shard 1, row 1
    mix = MixDataset(clip_dir, "val", extra={"pose": (tmp_path, ["features"])})
    assert mix[0]["pose.features"].shape == (2, 4)


def test_misaligned_extra_shards_are_refused(clip_dir, tmp_path):
    write_extra(tmp_path, n_rows=(3, 2))
    with pytest.raises(ValueError, match="rows"):
        ClipDataset(clip_dir, extra={"pose": str(tmp_path)})


# ---- similar partners --------------------------------------------------------------------

# (video, class, band of the spectrum that holds its energy): violin and flute share the high
# band, cello and tuba the low one; two videos of each class
SIMILAR = [("vln1", 0, "high"), ("vln2", 0, "high"), ("flt1", 1, "high"), ("flt2", 1, "high"),
           ("cel1", 2, "low"), ("cel2", 2, "low"), ("tba1", 3, "low"), ("tba2", 3, "low")]


@pytest.fixture(scope="module")
def banded_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("banded")
    with shards.ShardWriter(d / shards.shard_name(0), len(SIMILAR),
                            {**shards.file_attrs(P, "h"), "shard_index": 0}) as w:
        for i, (vid, cls, band) in enumerate(SIMILAR):
            clip = fake_clip(i, size=32)
            mag = np.random.default_rng(i).random((256, 256), dtype=np.float32) * 0.01
            mag[128:] += 5.0 if band == "high" else 0.0
            mag[:128] += 5.0 if band == "low" else 0.0
            label = np.zeros(21, np.uint8)
            label[cls] = 1
            w.write(i, {**clip, "mag": mag, "label": label, "video_id": f"{vid:<11}".encode()})
    return d


def test_similar_partners_are_spectrally_close_of_another_class(banded_dir):
    ds = MixDataset(banded_dir, "train", similar=1.0, similar_k=2)
    # each clip's pool: the two clips of the other class in its band (the same class's other
    # video is closer still, and left out)
    for i, (_, cls, band) in enumerate(SIMILAR):
        pool = {SIMILAR[j][1] for j in ds.neighbours[i]}
        assert len(pool) == 1 and pool != {cls}
        assert all(SIMILAR[j][2] == band for j in ds.neighbours[i])
    for epoch in range(3):
        ds.set_epoch(epoch)
        for i in range(len(ds)):
            j = int(ds[i]["clip"][1])
            assert SIMILAR[j][2] == SIMILAR[i][2] and SIMILAR[j][1] != SIMILAR[i][1]


def test_a_share_of_similar_partners_and_none_is_the_uniform_draw(banded_dir):
    uniform = MixDataset(banded_dir, "train")
    off = MixDataset(banded_dir, "train", similar=0.0)
    half = MixDataset(banded_dir, "train", similar=0.5, similar_k=2)
    assert off.neighbours is None and half.neighbours is not None
    # 0 draws exactly the pairs it drew before the option existed
    hits = []
    for epoch in range(40):
        for ds in (uniform, off, half):
            ds.set_epoch(epoch)
        for i in range(len(uniform)):
            assert torch.equal(uniform[i]["clip"], off[i]["clip"])
            j = int(half[i]["clip"][1])
            hits.append(j in half.neighbours[i])
    # half of the mixtures from the pool, plus the uniform draws that land in it (2 of 7)
    assert 0.5 + 0.5 * 2 / 7 - 0.08 < np.mean(hits) < 0.5 + 0.5 * 2 / 7 + 0.08
    # val pairs never change with the option
    assert MixDataset(banded_dir, "train", train=False, similar=1.0).neighbours is None


def test_same_class_partners_are_other_videos_of_the_class(banded_dir):
    ds = MixDataset(banded_dir, "train", same_class=1.0)
    for epoch in range(3):
        ds.set_epoch(epoch)
        for i in range(len(ds)):
            j = int(ds[i]["clip"][1])
            assert SIMILAR[j][1] == SIMILAR[i][1] and SIMILAR[j][0] != SIMILAR[i][0]


def test_a_share_of_same_class_partners_beside_similar_ones(banded_dir):
    uniform = MixDataset(banded_dir, "train")
    off = MixDataset(banded_dir, "train", same_class=0.0)
    mixed = MixDataset(banded_dir, "train", similar=0.3, similar_k=2, same_class=0.4)
    same, similar = [], []
    for epoch in range(60):
        for ds in (uniform, off, mixed):
            ds.set_epoch(epoch)
        for i in range(len(uniform)):
            assert torch.equal(uniform[i]["clip"], off[i]["clip"])   # 0 changes no pair
            j = int(mixed[i]["clip"][1])
            same.append(SIMILAR[j][1] == SIMILAR[i][1])
            similar.append(j in mixed.neighbours[i])
    # each share drawn from its own pool, plus the uniform draws (30%) that land in it (1 or 2 of 7)
    assert 0.4 + 0.3 / 7 - 0.07 < np.mean(same) < 0.4 + 0.3 / 7 + 0.07
    assert 0.3 + 0.3 * 2 / 7 - 0.07 < np.mean(similar) < 0.3 + 0.3 * 2 / 7 + 0.07
    assert MixDataset(banded_dir, "train", train=False, same_class=1.0).same_pool is None
    with pytest.raises(ValueError, match="same_class"):
        MixDataset(banded_dir, "train", similar=0.7, same_class=0.5)


def test_same_style_partners_are_other_classes_of_the_style(banded_dir):
    # the fixture's classes 0-2 (bagpipe, clarinet, flute) all play melodies, 3 (drum) grooves
    ds = MixDataset(banded_dir, "train", same_style=1.0)
    assert [sorted({SIMILAR[j][1] for j in pool}) for pool in ds.style_pool] == \
        [[1, 2], [1, 2], [0, 2], [0, 2], [0, 1], [0, 1], [], []]
    drum_partners = set()
    for epoch in range(8):
        ds.set_epoch(epoch)
        for i in range(len(ds)):
            j = int(ds[i]["clip"][1])
            assert SIMILAR[j][0] != SIMILAR[i][0]
            if SIMILAR[i][1] < 3:            # a melody: another video and class of melody
                assert SIMILAR[j][1] < 3 and SIMILAR[j][1] != SIMILAR[i][1]
            else:                            # no other class of its style: a uniform partner
                drum_partners.add(SIMILAR[j][1])
    assert drum_partners - {3}
    assert MixDataset(banded_dir, "train", train=False, same_style=1.0).style_pool is None
    with pytest.raises(ValueError, match="same_style"):
        MixDataset(banded_dir, "train", same_class=0.5, same_style=0.6)
