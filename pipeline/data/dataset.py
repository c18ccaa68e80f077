"""Training data over the clip shards: single clips and mix-and-separate mixtures (SoP; paper
Sec. 3.3 and 4.1).

- :class:`ClipDataset`: one clip per item, from the shards of one split.
- :class:`MixDataset`: N clips from N different videos (solos and duets alike); each waveform is
  scaled by 1/N and, in training only, by a random gain in [0.5, 1.5]; the mixture is the sum of
  the scaled waveforms. The mixture STFT, warp, masks and weights are computed per batch in torch
  (:func:`pipeline.data.spectrogram.batch_spectrograms`), never from summed magnitudes.
  Training pairs are drawn per (seed, epoch, index) (call :meth:`MixDataset.set_epoch`); val and
  test pairs are a fixed list made once from the seed, the same in every epoch. With
  ``similar > 0`` that share of the training mixtures takes its partner among the first clip's
  ``similar_k`` spectrally most similar clips of other videos and other classes
  (:func:`similar_clips`): hard pairs, which uniform pairs rarely give, without the same-class
  ones that a video-conditioned mask cannot tell apart. With ``same_class > 0`` that share takes
  its partner among the clips of other videos that share a class with the first: two
  performers of one instrument, told apart only by their own motion. With ``same_style > 0``
  that share takes it among the clips of other videos and other classes whose classes have the
  same composer styles (:func:`style_pools`: two melodies, two arpeggios), told apart only by
  the instruments' timbre or the performers' own timing and pitch.

Frames stay uint8 (N, F, H, W, 3) here; the model converts and normalises them (ImageNet mean and
std), so workers ship a quarter of the bytes.

HDF5 files are opened lazily, per process, on first access (never in ``__init__``), so the
datasets work with ``DataLoader(num_workers > 0)`` under fork and spawn.

Row-aligned extra shards (e.g. pose features, ``data/pose/shard-NNNN.h5``) are attached with
``extra={"pose": "data/pose"}`` (all numeric per-row datasets) or ``extra={"pose": ("data/pose",
["features", "boxes"])}``: their files must have the clip shards' names and row counts (and equal
``video_id`` rows when they store them); field ``f`` of ``pose`` appears in items as
``"pose.f"``.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping, Sequence

import h5py
import numpy as np
import torch
from torch.utils.data import Dataset, default_collate

from pipeline.classes import CLASSES
from pipeline.data import shards
from pipeline.data.styles import STYLES

CLIP_FIELDS = ("frames", "waveform", "label")
TRAIN_GAIN = (0.5, 1.5)


class _Files:
    """Open HDF5 files of one process, reopened after a fork or unpickling."""

    def __init__(self):
        self.pid, self.open = None, {}

    def get(self, path: Path) -> h5py.File:
        if self.pid != os.getpid():
            self.pid, self.open = os.getpid(), {}
        f = self.open.get(path)
        if f is None:
            f = self.open[path] = h5py.File(path, "r")
        return f

    def __getstate__(self):
        return {"pid": None}  # open handles never cross a process boundary

    def __setstate__(self, state):
        self.pid, self.open = None, {}


# the pose shards' fields (pipeline/pose/features.py)
POSE_FIELDS = ("features", "boxes", "absent", "keypoints", "trajectory")


def pose_extra(pose_dir) -> dict | None:
    """The ``extra`` argument that attaches the row-aligned pose shards of ``pose_dir`` (their
    fields arrive as "pose.features", "pose.boxes", "pose.absent", "pose.keypoints",
    "pose.trajectory"); None
    without pose."""
    return {"pose": (str(pose_dir), POSE_FIELDS)} if pose_dir else None


def _extra_spec(extra) -> dict[str, tuple[Path, tuple[str, ...] | None]]:
    out = {}
    for name, spec in (extra or {}).items():
        if isinstance(spec, (str, os.PathLike)):
            out[name] = (Path(spec), None)
        else:
            d, fields = spec
            out[name] = (Path(d), tuple(fields))
    return out


class ClipDataset(Dataset):
    """Clips of one split (or all when ``split`` is None) from the shards in ``clip_dir``."""

    def __init__(self, clip_dir: str | Path, split: str | None = None,
                 fields: Sequence[str] = CLIP_FIELDS,
                 extra: Mapping[str, str | tuple[str, Sequence[str]]] | None = None):
        self.clip_dir = Path(clip_dir)
        self.paths = shards.list_shards(self.clip_dir)
        if not self.paths:
            raise FileNotFoundError(f"{self.clip_dir}: no {shards.SHARD_GLOB} files")
        self.fields = tuple(fields)
        self.extra = _extra_spec(extra)
        self._files = _Files()
        self._index(split)

    def _index(self, split):
        shard, row, vids, splits, labels = [], [], [], [], []
        self.extra_fields: dict[str, tuple[str, ...]] = {}
        for s, path in enumerate(self.paths):
            idx = shards.read_index(path, ("video_id", "split", "label"))
            n = len(idx["video_id"])
            for name, (d, fields) in self.extra.items():
                self.extra_fields[name] = self._check_extra(d / path.name, idx["video_id"], fields)
            keep = np.ones(n, bool) if split is None else idx["split"] == split
            shard.append(np.full(int(keep.sum()), s))
            row.append(np.nonzero(keep)[0])
            vids.append(idx["video_id"][keep])
            labels.append(idx["label"][keep])
        self.shard = np.concatenate(shard)
        self.row = np.concatenate(row)
        self.video_id = np.concatenate(vids)
        self.label = np.concatenate(labels)
        if not len(self.row):
            raise ValueError(f"{self.clip_dir}: no clips in split {split!r}")

    @staticmethod
    def _check_extra(path: Path, video_ids, fields) -> tuple[str, ...]:
        n = len(video_ids)
        try:
            f = h5py.File(path, "r")
        except OSError as e:
            raise FileNotFoundError(f"{path}: cannot open the row-aligned shard: {e}") from None
        with f:
            if "video_id" in f and not np.array_equal(shards.decode_ids(f["video_id"][()]),
                                                   video_ids):
                raise ValueError(f"{path}: video_id rows differ from the clip shard's")
            if fields is None:
                fields = tuple(k for k, v in f.items() if isinstance(v, h5py.Dataset)
                               and v.shape[:1] == (n,) and v.dtype.kind in "fiub")
            for k in fields:
                if k not in f:
                    raise KeyError(f"{path}: no dataset {k!r}")
                if f[k].shape[:1] != (n,):
                    raise ValueError(f"{path}: {k} has {f[k].shape[0]} rows, the clip shard {n}")
        return tuple(fields)

    def __len__(self) -> int:
        return len(self.row)

    def clip(self, i: int) -> dict:
        """Clip ``i`` of this dataset: the requested fields as tensors plus its video ID."""
        s, r = int(self.shard[i]), int(self.row[i])
        f = self._files.get(self.paths[s])
        out = {k: torch.from_numpy(np.asarray(f[k][r])) for k in self.fields}
        if "label" in out:
            out["label"] = out["label"].float()
        for name, (d, _) in self.extra.items():
            g = self._files.get(d / self.paths[s].name)
            for k in self.extra_fields[name]:
                out[f"{name}.{k}"] = torch.from_numpy(np.asarray(g[k][r]))
        out["video_id"] = str(self.video_id[i])
        return out

    def __getitem__(self, i: int) -> dict:
        return self.clip(i)


def spectral_profiles(ds: ClipDataset) -> np.ndarray:
    """(n, F) each clip's shape of spectrum: the time mean of log(1 + warped magnitude), less the
    mean over the clips, scaled to unit length (cosine similarity is then a dot product)."""
    files = _Files()
    prof = np.stack([np.log1p(np.asarray(files.get(ds.paths[int(s)])["mag"][int(r)],
                                         np.float64)).mean(axis=1)
                     for s, r in zip(ds.shard, ds.row)])
    prof -= prof.mean(axis=0)
    norm = np.linalg.norm(prof, axis=1, keepdims=True)
    return prof / np.where(norm > 0, norm, 1.0)


def style_pools(labels: np.ndarray, videos: np.ndarray) -> list[np.ndarray]:
    """For each clip (``labels`` (n, 21) bool), the clips of other videos that share none of its
    classes and whose classes have the same set of composer styles
    (``pipeline.data.styles.STYLES``: melody, chords, arpeggio, bass, drums, congas); empty where
    there is none (the partner is then drawn uniformly)."""
    style = np.array([STYLES[c] for c in CLASSES])
    _, key = np.unique(["+".join(sorted(set(style[row]))) for row in labels],
                       return_inverse=True)
    return [np.flatnonzero((key == key[i]) & ~(labels & labels[i]).any(axis=1)
                           & (videos != videos[i]))
            for i in range(len(key))]


def similar_clips(profiles: np.ndarray, video_id: np.ndarray, label: np.ndarray, k: int,
                  block: int = 1024) -> np.ndarray:
    """(n, k) for each clip the indices of the ``k`` clips most similar to it (cosine of the
    profiles, most similar first) among those of another video sharing none of its classes;
    -1 where fewer exist. Computed in row blocks, so memory grows with n * block."""
    n = len(profiles)
    out = np.full((n, k), -1, np.int64)
    has = label > 0
    for a in range(0, n, block):
        sim = profiles[a:a + block] @ profiles.T                       # (b, n)
        rows = np.arange(a, min(a + block, n))
        allowed = (video_id[rows, None] != video_id[None, :]) & \
            ~(has[rows].astype(np.int64) @ has.T.astype(np.int64)).astype(bool)
        sim = np.where(allowed, sim, -np.inf)
        order = np.argsort(-sim, axis=1, kind="stable")[:, :k]
        ok = np.take_along_axis(allowed, order, axis=1)
        out[rows, :order.shape[1]] = np.where(ok, order, -1)
    return out


class MixDataset(ClipDataset):
    """Mix-and-separate items of ``n_mix`` clips from different videos.

    Item ``i`` = clip ``i`` of the split plus ``n_mix - 1`` partners. Keys: every clip field
    stacked over sources (``frames`` (N, F, H, W, 3) uint8, ``label`` (N, 21)), ``audio``
    (N, L) the scaled source waveforms, ``mix`` (L,) their sum, ``gain`` (N,), ``clip`` (N,)
    dataset indices, ``video_id`` (list of N).
    """

    def __init__(self, clip_dir, split: str, n_mix: int = 2, train: bool | None = None,
                 seed: int = 0, fields: Sequence[str] = CLIP_FIELDS, extra=None,
                 similar: float = 0.0, similar_k: int = 16, same_class: float = 0.0,
                 same_style: float = 0.0):
        fields = tuple(dict.fromkeys(tuple(fields) + ("waveform",)))
        super().__init__(clip_dir, split, fields, extra)
        if n_mix < 1:
            raise ValueError(f"n_mix must be >= 1, got {n_mix}")
        if not 0.0 <= similar <= 1.0 or similar_k < 1:
            raise ValueError(f"similar must lie in [0, 1] and similar_k be >= 1, got {similar}, "
                             f"{similar_k}")
        if not 0.0 <= same_class <= 1.0 or similar + same_class > 1.0:
            raise ValueError(f"same_class must lie in [0, 1 - similar], got {same_class}")
        if not 0.0 <= same_style <= 1.0 or similar + same_class + same_style > 1.0:
            raise ValueError(f"same_style must lie in [0, 1 - similar - same_class], got "
                             f"{same_style}")
        if len(np.unique(self.video_id)) < n_mix:
            raise ValueError(f"{clip_dir}: split {split!r} has fewer than {n_mix} videos")
        self.n_mix, self.seed, self.epoch = n_mix, seed, 0
        self.train = split == "train" if train is None else train
        self.similar = similar if self.train else 0.0
        self.neighbours = (similar_clips(spectral_profiles(self), self.video_id, self.label,
                                         similar_k) if self.similar > 0 else None)
        self.same_class = same_class if self.train else 0.0
        self.same_pool = self._same_class_pools() if self.same_class > 0 else None
        self.same_style = same_style if self.train else 0.0
        self.style_pool = (style_pools(np.asarray(self.label) > 0, np.asarray(self.video_id))
                           if self.same_style > 0 else None)
        self.pairs = None if self.train else np.stack(
            [self._partners(i, np.random.default_rng([seed, i])) for i in range(len(self))])

    def set_epoch(self, epoch: int) -> None:
        """Training pairs and gains are drawn per (seed, epoch, index). Call it before each
        epoch's DataLoader iterator is created; with ``persistent_workers=True`` the workers keep
        the epoch they started with."""
        self.epoch = epoch

    def _same_class_pools(self) -> list[np.ndarray]:
        """For each clip, the clips of other videos that share one of its classes."""
        labels = np.asarray(self.label) > 0
        videos = np.asarray(self.video_id)
        return [np.flatnonzero((labels & labels[i]).any(axis=1) & (videos != videos[i]))
                for i in range(len(self))]

    def _partners(self, i: int, rng: np.random.Generator) -> np.ndarray:
        chosen = [i]
        # one draw decides the partner's kind: similar, same class, same style or uniform (none
        # when every share is 0, so the uniform pairs stay the ones drawn before the options)
        shares = self.similar + self.same_class + self.same_style
        u = rng.random() if shares > 0 and self.n_mix > 1 else 1.0
        pool = (self.neighbours[i][self.neighbours[i] >= 0] if u < self.similar else
                self.same_pool[i] if u < self.similar + self.same_class else
                self.style_pool[i] if u < shares else ())
        if len(pool):
            chosen.append(int(pool[rng.integers(len(pool))]))
        while len(chosen) < self.n_mix:
            j = int(rng.integers(len(self)))
            if self.video_id[j] not in {self.video_id[c] for c in chosen}:
                chosen.append(j)
        return np.asarray(chosen)

    def __getitem__(self, i: int) -> dict:
        if self.train:
            rng = np.random.default_rng([self.seed, self.epoch, i])
            members = self._partners(i, rng)
            gain = rng.uniform(*TRAIN_GAIN, size=self.n_mix)
        else:
            members, gain = self.pairs[i], np.ones(self.n_mix)
        clips = [self.clip(int(j)) for j in members]
        scale = torch.from_numpy(gain / self.n_mix).float()
        out = {k: torch.stack([c[k] for c in clips]) for k in clips[0] if k != "video_id"}
        out["audio"] = out.pop("waveform") * scale[:, None]
        out["mix"] = out["audio"].sum(dim=0)
        out["gain"] = torch.from_numpy(gain).float()
        out["clip"] = torch.from_numpy(members.astype(np.int64))
        out["video_id"] = [c["video_id"] for c in clips]
        assert out["audio"].shape == (self.n_mix, out["mix"].shape[0]), out["audio"].shape
        return out


def collate(batch: list[dict]) -> dict:
    """Stack tensors of items; ``video_id`` stays a list (B) of lists (N) of strings."""
    ids = [item["video_id"] for item in batch]
    out = default_collate([{k: v for k, v in item.items() if k != "video_id"} for item in batch])
    out["video_id"] = ids
    return out
