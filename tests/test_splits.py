"""Train/val/test split by video ID: seeded, stratified, duets whole, and the official lists."""
from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

import pytest

from pipeline.classes import CLASSES
from pipeline.data.lists import ListEntry, ListError, load_lists
from pipeline.params import SplitParams
from pipeline.data.splits import assign_splits, read_official

DATA = Path(__file__).parent / "data" / "lists"


def _synthetic_entries(per_class: int = 20, duets: int = 40) -> list[ListEntry]:
    """21 classes of solos plus duets, with valid, distinct 11-character IDs."""
    out = [ListEntry(f"s{c:02d}x{i:07d}", (name,), "solo", "l.json", 1)
           for c, name in enumerate(CLASSES) for i in range(per_class)]
    out += [ListEntry(f"duet{i:07d}", ("flute", "violin") if i % 2 else ("cello", "violin"),
                      "duet", "d.json", 1) for i in range(duets)]
    return out


def _official(train="official_train.csv", test="official_test.csv", **kw) -> SplitParams:
    return SplitParams(mode="official", official_train=str(DATA / train),
                       official_test=str(DATA / test), **kw)


def test_every_id_gets_one_split():
    entries = _synthetic_entries()
    splits = assign_splits(entries, SplitParams())
    assert set(splits) == {e.video_id for e in entries}
    assert set(splits.values()) == {"train", "val", "test"}


def test_split_is_deterministic_and_independent_of_input_order():
    entries = _synthetic_entries()
    shuffled = random.Random(1).sample(entries, len(entries))
    assert assign_splits(entries, SplitParams(seed=3)) == assign_splits(shuffled, SplitParams(seed=3))


def test_seed_changes_the_split():
    entries = _synthetic_entries()
    assert assign_splits(entries, SplitParams(seed=0)) != assign_splits(entries, SplitParams(seed=1))


def test_fractions_are_met_to_within_one_video():
    entries = _synthetic_entries()
    counts = Counter(assign_splits(entries, SplitParams(val=0.15, test=0.25)).values())
    n = len(entries)
    assert abs(counts["test"] - 0.25 * n) <= 1 and abs(counts["val"] - 0.15 * n) <= 1


def test_every_class_is_in_every_split():
    entries = _synthetic_entries()
    splits = assign_splits(entries, SplitParams())
    for split in ("train", "val", "test"):
        assert {e.classes for e in entries if splits[e.video_id] == split} == \
               {e.classes for e in entries}


def test_duets_are_spread_over_all_splits():
    """How many duets each split gets; that every clip of a video lands in its one split is
    checked on real shards (support.split_violations, in test_shards and the e2e test)."""
    entries = _synthetic_entries()
    splits = assign_splits(entries, SplitParams())
    duets = Counter(splits[e.video_id] for e in entries if e.kind == "duet")
    assert duets == {"train": 28, "test": 8, "val": 4}


def test_duplicate_ids_are_refused():
    e = _synthetic_entries(1, 0)[0]
    with pytest.raises(ValueError, match="occurs twice"):
        assign_splits([e, e], SplitParams())


def test_zero_fractions_put_everything_in_train():
    entries = _synthetic_entries(3, 2)
    assert set(assign_splits(entries, SplitParams(val=0.0, test=0.0)).values()) == {"train"}


# ------------------------------------------------------------------------------ official mode


def test_official_test_list_is_the_test_split():
    entries = load_lists("music21", str(DATA))
    splits = assign_splits(entries, _official(val=0.2))
    assert {i for i, s in splits.items() if s == "test"} == {"aaaaaaaaaa2", "dddddddddd2"}
    assert set(splits) == {e.video_id for e in entries}
    assert Counter(splits.values())["val"] == 2  # 0.2 of 11 videos, carved out of the rest


def test_official_mode_never_puts_unlisted_ids_in_test():
    entries = load_lists("music21", str(DATA))
    listed = set(read_official(DATA / "official_train.csv")) | set(
        read_official(DATA / "official_test.csv"))
    for seed in range(5):
        splits = assign_splits(entries, _official(val=0.3, seed=seed))
        assert all(splits[e.video_id] in ("train", "val") for e in entries
                   if e.video_id not in listed)


def test_malformed_official_list_names_file_and_line(tmp_path):
    path = tmp_path / "train.csv"
    path.write_text("aaaaaaaaaa1\n\nnot-an-id,1\n")
    with pytest.raises(ListError, match=rf"^{path}:3: malformed video ID"):
        read_official(path)


def test_missing_official_list_names_the_file(tmp_path):
    with pytest.raises(ListError, match=rf"^{tmp_path / 'nope.csv'}: cannot read"):
        read_official(tmp_path / "nope.csv")


def test_id_in_both_official_lists_is_an_error(tmp_path):
    (tmp_path / "a.csv").write_text("aaaaaaaaaa1\naaaaaaaaaa2\n")
    (tmp_path / "b.csv").write_text("aaaaaaaaaa2\n")
    params = SplitParams(mode="official", official_train=str(tmp_path / "a.csv"),
                         official_test=str(tmp_path / "b.csv"))
    with pytest.raises(ListError, match="'aaaaaaaaaa2' is also in"):
        assign_splits(_synthetic_entries(1, 0), params)


def test_real_official_split_reproduces_the_paper_test_set(music_lists):
    entries = load_lists("music21", str(music_lists))
    params = SplitParams(mode="official", val=0.1,
                         official_train=str(music_lists / "tribert_music21_train.csv"),
                         official_test=str(music_lists / "tribert_music21_val.csv"))
    splits = assign_splits(entries, params)
    counts = Counter(splits.values())
    assert counts["test"] == 211
    assert counts["val"] == round(0.1 * len(entries)) and counts["train"] == 1313 - 211 - 131
    assert assign_splits(entries, params) == splits


def test_real_random_split_sizes(music_lists):
    entries = load_lists("music21", str(music_lists))
    counts = Counter(assign_splits(entries, SplitParams()).values())
    assert (counts["train"], counts["val"], counts["test"]) == (919, 131, 263)
