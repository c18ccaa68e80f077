"""Classification probe on frozen TriBERT features (supplement 2.4, Table 4).

For each stream (audio, visual, pose) and each feature kind of the embedding files
(:mod:`pipeline.evaluate.embeddings`):

- ``input``: the raw uni-modal tokens that enter the transformer ("w/o BERT stream"),
- ``erased``: TriBERT's final tokens of the stream with the two other streams erased
  ("with ... masked"),
- ``transformer``: TriBERT's final tokens ("our model"),

an MLP (one hidden layer, ReLU, dropout) is trained on the train split to predict the
instrument, the epoch is chosen on val (the mean of its top-1/5/10 accuracies, less prone to
ties than top-1 on a small val split; then the lower loss), and top-1/5/10 accuracy is reported
on test, as the mean and standard deviation over a few seeds (the test split is small): a clip
counts as a hit at k when any of its true labels is among the k highest-scoring classes. Labels are multi-hot (duets have two); the loss is the cross-entropy
against the label distribution (multi-hot / number of labels). The chance row is the expected
top-k accuracy of a uniformly random class ranking, 1 - C(C - m, k) / C(C, k) for a clip with m
labels, averaged over the test clips. Features are standardised with the train split's mean
and standard deviation. Deterministic for a seed.
"""
from __future__ import annotations

import math
from pathlib import Path

import h5py
import numpy as np
import torch
from torch import nn

from pipeline.atomic import write_json, write_text
from pipeline.executor import map_ordered

STREAMS = ("audio", "visual", "pose")        # Table 4's order
KINDS = ("input", "erased", "transformer")
TOPK = (1, 5, 10)
# supplement Table 4 (MUSIC21 test, %): {stream: {kind: (top-1, top-5, top-10)}}
PAPER = {
    "audio": {"input": (56.87, 84.36, 93.84), "erased": (49.29, 84.31, 92.42),
              "transformer": (86.26, 94.79, 98.10)},
    "visual": {"input": (41.23, 63.03, 77.25), "erased": (81.52, 92.89, 95.26),
               "transformer": (87.20, 94.31, 96.68)},
    "pose": {"input": (39.81, 76.78, 91.47), "erased": (35.07, 68.25, 84.36),
             "transformer": (87.68, 96.21, 98.58)},
}


def load_features(path: str | Path, kind: str, stream: str, pooling: str
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Features (n, D) float32 and multi-hot labels (n, C) of one embedding file.

    ``flatten``: the L tokens concatenated (as retrieval uses them); ``mean``: the mean over
    the valid tokens (for pose: SOS and the persons present; every token of the other
    streams)."""
    try:
        with h5py.File(path, "r") as f:
            x = f[kind][stream][()].astype(np.float32)                 # (n, L, d)
            y = f["label"][()]
            valid = f["valid"]["pose"][()] if stream == "pose" else np.ones(x.shape[:2], bool)
    except (OSError, KeyError) as e:
        raise ValueError(f"{path}: cannot read {kind}/{stream} and label: {e}") from None
    assert x.ndim == 3 and valid.shape == x.shape[:2], (x.shape, valid.shape)
    if pooling == "flatten":
        return x.reshape(len(x), -1), y
    w = valid[..., None].astype(np.float32)
    return (x * w).sum(1) / np.maximum(w.sum(1), 1.0), y


def topk_accuracy(scores: np.ndarray, labels: np.ndarray, k: int) -> float:
    """Share of rows whose top-k scored classes hold at least one true label."""
    assert scores.shape == labels.shape, (scores.shape, labels.shape)
    k = min(k, scores.shape[1])
    top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return float(np.take_along_axis(labels > 0, top, axis=1).any(axis=1).mean())


def chance_topk(labels: np.ndarray, k: int) -> float:
    """Expected top-k accuracy of a uniformly random ranking of the C classes."""
    C = labels.shape[1]
    k = min(k, C)
    m = (labels > 0).sum(axis=1)
    miss = [math.comb(C - int(mi), k) / math.comb(C, k) for mi in m]
    return float(np.mean(1.0 - np.asarray(miss)))


class MLP(nn.Module):
    """features (n, D) -> class logits (n, C)."""

    def __init__(self, dim: int, hidden: int, classes: int, dropout: float):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Dropout(dropout),
                                 nn.Linear(hidden, classes))

    def forward(self, x):
        return self.net(x)


def soft_ce(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy against the label distribution (multi-hot / number of labels)."""
    target = labels / labels.sum(dim=1, keepdim=True).clamp(min=1.0)
    return -(target * torch.log_softmax(logits, dim=1)).sum(dim=1).mean()


def train_probe(train: tuple, val: tuple, params) -> tuple[MLP, dict]:
    """Train on ``train`` = (x, y), keep the epoch with the best mean val top-1/5/10 (ties:
    lower val loss). Returns the model at that epoch and {"epoch", "val_topk", "val_loss"}."""
    torch.manual_seed(params.seed)
    gen = torch.Generator().manual_seed(params.seed)
    x, y = (torch.from_numpy(a).float() for a in train)
    xv, yv = (torch.from_numpy(a).float() for a in val)
    model = MLP(x.shape[1], params.hidden, y.shape[1], params.dropout)
    opt = torch.optim.Adam(model.parameters(), lr=params.lr, weight_decay=params.weight_decay)
    best, best_state = None, None
    for epoch in range(1, params.epochs + 1):
        model.train()
        for idx in torch.randperm(len(x), generator=gen).split(params.batch_size):
            opt.zero_grad()
            soft_ce(model(x[idx]), y[idx]).backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            logits = model(xv)
            topk = float(np.mean([topk_accuracy(logits.numpy(), val[1], k) for k in TOPK]))
            key = (topk, -float(soft_ce(logits, yv)))
        if best is None or key > best:
            best = key
            best_state = {k: v.clone() for k, v in model.state_dict().items()}
            chosen = {"epoch": epoch, "val_topk": key[0], "val_loss": -key[1]}
    model.load_state_dict(best_state)
    return model.eval(), chosen


def standardise(train_x: np.ndarray, *others: np.ndarray) -> list[np.ndarray]:
    """Z-score every array with the train split's per-feature mean and std."""
    mean = train_x.mean(axis=0)
    std = train_x.std(axis=0) + 1e-6
    return [(a - mean) / std for a in (train_x, *others)]


SPLITS = ("train", "val", "test")


def _entry_data(emb_dir: Path, kind: str, stream: str, pooling: str
                ) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The three splits' features of one entry, standardised, and their labels."""
    data = {s: load_features(emb_dir / f"{s}.h5", kind, stream, pooling) for s in SPLITS}
    return standardise(*(data[s][0] for s in SPLITS)), [data[s][1] for s in SPLITS]


def _probe_run(data: dict, task: tuple) -> dict:
    """One probe: ``data[(stream, kind)]`` = (features, labels) of the three splits, task =
    (stream, kind, params, seed) -> its chosen epoch and test top-k (a module-level function:
    :func:`pipeline.executor.map_ordered` runs it in worker processes)."""
    stream, kind, params, seed = task
    xs, ys = data[(stream, kind)]
    model, chosen = train_probe((xs[0], ys[0]), (xs[1], ys[1]), params.replace(seed=seed))
    with torch.no_grad():
        scores = model(torch.from_numpy(xs[2]).float()).numpy()
    return {"seed": seed, **chosen,
            **{f"top{k}": topk_accuracy(scores, ys[2], k) for k in TOPK}}


def _seeds(params) -> range:
    return range(params.seed, params.seed + params.repeats)


def _summary(runs: list[dict]) -> dict:
    out = {}
    for k in TOPK:
        values = [r[f"top{k}"] for r in runs]
        out[f"top{k}"], out[f"top{k}_std"] = float(np.mean(values)), float(np.std(values))
    return {**out, "runs": runs}


def probe_one(emb_dir: Path, kind: str, stream: str, params) -> dict:
    """Table 4 entry of one feature kind and stream: the test top-k of ``params.repeats``
    probes (seeds ``seed``, ``seed + 1``, ...): their mean (``topK``), standard deviation
    (``topK_std``) and each run's figures and chosen epoch (``runs``)."""
    data = {(stream, kind): _entry_data(Path(emb_dir), kind, stream, params.pooling)}
    return _summary([_probe_run(data, (stream, kind, params, seed)) for seed in _seeds(params)])


def run(emb_dir: str | Path, params, log=print) -> dict:
    """Every stream and kind, plus the chance level and the clip counts. The probes (9 entries
    x ``repeats`` seeds) run over ``params.jobs`` processes of ``params.threads`` threads; each
    is seeded on its own, so the figures do not depend on ``jobs``."""
    emb_dir = Path(emb_dir)
    entries = [(stream, kind) for stream in STREAMS for kind in KINDS]
    data = {(stream, kind): _entry_data(emb_dir, kind, stream, params.pooling)
            for stream, kind in entries}
    tasks = [(stream, kind, params, seed) for stream, kind in entries for seed in _seeds(params)]
    runs = iter(map_ordered(_probe_run, tasks, params.jobs, params.threads, context=data))
    metrics = {}
    for stream, kind in entries:
        entry = _summary([next(runs) for _ in _seeds(params)])
        metrics.setdefault(stream, {})[kind] = entry
        log(f"probe: {stream} {kind}: " + " ".join(
            f"top{k} {100 * entry[f'top{k}']:.2f}" for k in TOPK))
    _, test_y = load_features(emb_dir / "test.h5", "input", "audio", "flatten")
    metrics["chance"] = {f"top{k}": chance_topk(test_y, k) for k in TOPK}
    metrics["clips"] = {}
    for s in SPLITS:
        with h5py.File(emb_dir / f"{s}.h5", "r") as f:
            metrics["clips"][s] = int(len(f["label"]))
    return metrics


def row_name(stream: str, kind: str) -> str:
    """The row label of supplement Table 4."""
    name = {"audio": "Audio", "visual": "Vision", "pose": "Pose"}[stream]
    others = "/".join(s for s in ("visual", "pose", "audio") if s != stream)
    return {"input": f"{name} feature w/o {stream} BERT stream",
            "erased": f"TriBERT {stream} feature with {others} masked",
            "transformer": f"TriBERT {stream} feature"}[kind]


def table(metrics: dict, pooling: str, repeats: int) -> str:
    """Markdown table in the layout of supplement Table 4, with the paper's figures beside."""
    n = metrics["clips"]
    lines = [f"Instrument classification probe (supplement Table 4): MLP on frozen features "
             f"({pooling} pooling), trained on {n['train']} train clips, epoch chosen on "
             f"{n['val']} val clips, accuracy (%) on {n['test']} test clips: mean ± std over "
             f"{repeats} seeds.", "",
             "| Features | Top-1 | Top-5 | Top-10 | Paper Top-1 | Paper Top-5 | Paper Top-10 |",
             "|---|---|---|---|---|---|---|"]
    for stream in STREAMS:
        for kind in KINDS:
            m = metrics[stream][kind]
            ours = " | ".join(f"{100 * m[f'top{k}']:.2f} ± {100 * m[f'top{k}_std']:.2f}"
                              for k in TOPK)
            paper = " | ".join(f"{v:.2f}" for v in PAPER[stream][kind])
            lines.append(f"| {row_name(stream, kind)} | {ours} | {paper} |")
    chance = " | ".join(f"{100 * metrics['chance'][f'top{k}']:.2f}" for k in TOPK)
    lines.append(f"| Chance (random ranking) | {chance} | | | |")
    return "\n".join(lines) + "\n"


def write(out_dir: str | Path, metrics: dict, params) -> None:
    out_dir = Path(out_dir)
    write_json(out_dir / "metrics.json", metrics)
    write_text(out_dir / "table.md", table(metrics, params.pooling, params.repeats))
