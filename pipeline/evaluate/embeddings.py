"""Token embeddings of every clip from a trained TriBERT, for retrieval (paper 4.2, supplement
1) and the classification probe (supplement 2.4, Table 4).

Each clip is run alone (N = 1: the "mixture" is the clip's own waveform, no partner, gain 1),
with the model in eval mode and no gradients. One HDF5 file per split (``<out>/<split>.h5``),
row ``i`` = clip ``i`` of ``ClipDataset(clips, split)``. The file format is a contract with the
retrieval and probe stages:

===================  ==========  =======  ==================================================
dataset              shape       dtype    meaning
===================  ==========  =======  ==================================================
video_id             (n,)        S<w>     video ID, UTF-8 (w >= 11: the longest ID's bytes)
clip                 (n,)        int64    row index in ``ClipDataset(clips, split)`` order
label                (n, 21)     uint8    multi-hot over pipeline.classes.CLASSES
kind                 (n,)        S4       solo | duet
transformer/<s>      (n, L, d_s) float32  final tokens ``out["tokens"][s]`` (SOS first)
input/<s>            (n, L, d_s) float32  pre-transformer tokens ``out["inputs"][s]``
erased/<s>           (n, L, d_s) float32  final tokens of ``s`` with the two other streams
                                          erased (``batch["erase"]``; Table 4 middle rows)
valid/pose           (n, L)      bool     SOS and the persons present
===================  ==========  =======  ==================================================

``s`` in visual, pose, audio; L = 1 + frames x persons (7). File attributes: ``model`` (path),
``model_sha256``, ``split``, ``tokens`` (L). Files are written atomically and byte-reproducibly
(no timestamps).
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Callable

import h5py
import numpy as np
import torch
from tqdm import tqdm

from model import checkpoint
from model.encoder import STREAMS
from pipeline.separation.infer import model_inputs
from model.tribert import check_inputs
from pipeline.data import shards
from pipeline.data import spectrogram as sp
from pipeline.atomic import atomic_path, clean_temporaries
from pipeline.data.dataset import MixDataset, collate, pose_extra

SPLITS = ("train", "val", "test")
GROUPS = ("transformer", "input", "erased")


class EmbedError(RuntimeError):
    """A model package or a shard that cannot be used; the message names the file."""


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def load_tribert(path: str | Path) -> torch.nn.Module:
    """The TriBERT of a model package (or a training checkpoint holding one), in eval mode;
    EmbedError naming the file otherwise."""
    try:
        model = checkpoint.load(path)
    except (ValueError, TypeError, KeyError, RuntimeError) as e:
        raise EmbedError(str(e) if str(path) in str(e) else f"{path}: {e}") from None
    if type(model).__name__ != "TriBERT":
        raise EmbedError(f"{path}: a {type(model).__name__} package; embeddings need a TriBERT")
    return model.eval()


def clip_dataset(clips: str | Path, split: str, pose: str | Path | None) -> MixDataset:
    """Single clips of ``split`` as 1-source "mixtures" (gain 1, no partner), with the
    row-aligned pose shards attached when ``pose`` is given."""
    extra = pose_extra(pose)
    try:
        return MixDataset(clips, split, n_mix=1, train=False, extra=extra)
    except (OSError, KeyError) as e:
        raise EmbedError(f"{clips}: {e}") from None


def read_clips(ds: MixDataset, indices) -> dict:
    """Collated items ``indices`` of ``ds``; a read error names the shard and row."""
    items = []
    for i in indices:
        try:
            items.append(ds[int(i)])
        except (OSError, KeyError, ValueError, TypeError) as e:
            shard = ds.paths[int(ds.shard[i])]
            raise EmbedError(f"{shard} (or its pose shard): row {int(ds.row[i])}: cannot read "
                             f"the clip: {e}") from None
    return collate(items)


def clip_kinds(ds: MixDataset) -> np.ndarray:
    """The ``kind`` (solo|duet) of every clip of ``ds``, in its order."""
    kinds = [shards.read_index(p, ("kind",))["kind"] for p in ds.paths]
    return np.asarray([kinds[s][r] for s, r in zip(ds.shard, ds.row)], dtype="S4")


def pose_valid(batch: dict, frames: int, persons: int) -> torch.Tensor:
    """(B, L) bool: the SOS token and the persons present (all absent without pose shards)."""
    B = batch["frames"].shape[0]
    if "pose.absent" in batch:
        present = ~batch["pose.absent"].bool().reshape(B, frames * persons)
    else:
        present = torch.zeros(B, frames * persons, dtype=torch.bool)
    return torch.cat([torch.ones(B, 1, dtype=torch.bool), present], dim=1)


def encode(model: torch.nn.Module, inputs: dict) -> tuple[dict, dict]:
    """The final and pre-transformer tokens {stream: (B, L, d)} of 1-source inputs: what
    ``model(inputs)["tokens"]`` and ``["inputs"]`` hold, without the heads and the U-Net
    (a test checks both agree), which would take ~60% of the time."""
    B, N = check_inputs(inputs, model.frames, model.persons)
    assert N == 1, f"expected 1-source inputs, got N={N}"
    tokens_in, valid, _, _ = model.tokenize(inputs)
    return model.encoder(tokens_in, valid), tokens_in


@torch.no_grad()
def embed_batch(model: torch.nn.Module, batch: dict) -> dict[str, np.ndarray]:
    """{"<group>/<stream>": (B, L, d) float32, "valid/pose": (B, L) bool} of a collated batch of
    1-source items: one plain pass, then one per stream with the two others erased."""
    device = torch.device("cpu")
    feats = sp.mixture_features(batch["audio"].float())
    inputs = model_inputs(model, batch, feats, device)
    final, pre = encode(model, inputs)
    B, L = batch["frames"].shape[0], 1 + model.frames * model.persons
    result = {}
    for s in STREAMS:
        result[f"transformer/{s}"] = final[s]
        result[f"input/{s}"] = pre[s]
        others = tuple(o for o in STREAMS if o != s)
        result[f"erased/{s}"] = encode(model, {**inputs, "erase": others})[0][s]
    for key, t in result.items():
        assert t.shape[:2] == (B, L), f"{key}: expected (B={B}, L={L}, d), got {tuple(t.shape)}"
    arrays = {k: v.float().numpy() for k, v in result.items()}
    arrays["valid/pose"] = pose_valid(batch, model.frames, model.persons).numpy()
    return arrays


def _create(f: h5py.File, name: str, shape, dtype, data=None) -> h5py.Dataset:
    return f.create_dataset(name, shape=shape, dtype=dtype, data=data, track_times=False)


def write_split(out_path: str | Path, ds: MixDataset, model: torch.nn.Module,
                model_path: str | Path, model_sha: str, split: str, batch_size: int,
                progress: bool = True) -> int:
    """Embed every clip of ``ds`` and write the contract file ``out_path``; returns n."""
    n, L = len(ds), 1 + model.frames * model.persons
    dims = {s: model.sos[s].shape[0] for s in STREAMS}
    order = np.arange(n)
    with atomic_path(out_path) as tmp, h5py.File(tmp, "w", track_order=True) as f:
        ids = shards.encode_ids(ds.video_id, f"{out_path}: ")  # as wide as the longest ID
        _create(f, "video_id", (n,), ids.dtype, ids)
        _create(f, "clip", (n,), np.int64, order.astype(np.int64))
        _create(f, "label", (n, ds.label.shape[1]), np.uint8, ds.label.astype(np.uint8))
        _create(f, "kind", (n,), "S4", clip_kinds(ds))
        out = {f"{g}/{s}": _create(f, f"{g}/{s}", (n, L, dims[s]), np.float32)
               for g in GROUPS for s in STREAMS}
        out["valid/pose"] = _create(f, "valid/pose", (n, L), bool)
        f.attrs.update({"model": str(model_path), "model_sha256": model_sha, "split": split,
                        "tokens": L})
        for start in tqdm(range(0, n, batch_size), desc=f"embed {split}", unit="batch",
                          disable=not progress):
            idx = order[start:start + batch_size]
            batch = read_clips(ds, idx)
            if not np.array_equal(batch["clip"][:, 0].numpy(), idx):
                raise AssertionError("1-source items must be their own clip")
            for key, arr in embed_batch(model, batch).items():
                out[key][start:start + len(idx)] = arr
    return n


def run(clips: str | Path, pose: str | Path | None, model_path: str | Path, out: str | Path,
        params, splits=SPLITS, progress: bool = True,
        log: Callable[[str], None] = print) -> dict[str, int]:
    """Stage ``embed``: ``<out>/<split>.h5`` for each split; returns {split: clips}."""
    torch.set_num_threads(params.threads)
    model = load_tribert(model_path)
    sha = file_sha256(model_path)
    # every split's shards open (and fit the model) before anything is written
    datasets = {split: clip_dataset(clips, split, pose) for split in splits}
    for ds in datasets.values():
        frames = ds.clip(0)["frames"].shape[0]
        if frames != model.frames:
            raise EmbedError(f"{ds.paths[0]}: {frames} frames per clip, but {model_path} "
                             f"takes {model.frames}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    clean_temporaries(out)
    counts = {}
    for split, ds in datasets.items():
        counts[split] = write_split(out / f"{split}.h5", ds, model, model_path, sha, split,
                                    params.batch_size, progress)
        log(f"embed: {split}: {counts[split]} clips -> {out / f'{split}.h5'}")
    return counts
