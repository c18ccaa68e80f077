"""Cross-modal retrieval on TriBERT embeddings (paper Sec. 4.2 and Table 3, supplement Sec. 1).

For each of the 5 variants and each embedding kind (``transformer``: the encoder's final token
sequences; ``erased``: the same encoder's final tokens of each stream computed with the two other
streams erased; ``input``: the sequences fed to the encoder, the paper's "pre-transformer"
baseline) a scorer is trained n-way: the query and every candidate result are projected by linear layers to
a common width, multiplied element-wise, and a 4-layer MLP with tanh gives one logit per choice;
softmax over the n choices and cross-entropy with the positive as the target. n = 3 (2 hard
negatives) for the single-modality variants, n = 4 (2 easy random negatives + 1 hard) for
vision+audio->pose, whose vision and audio are first fused by Music Gesture's self-guided
attention and a residual MLP (paper [15]).

Hard negatives are drawn at random from the ``neighbours`` (25) nearest training items of the
anchor. The supplement (and the official code, for every variant) measures the neighbours on
the anchor's vision embedding; we do so for vision->audio, pose->audio and vision+audio->pose,
but for the audio-anchored variants (audio->vision, audio->pose) on the anchor's own audio
embedding, the query the scorer sees (the supplement's n = 3 case says "based on the anchor
embedding"). Distances are Euclidean on the standardized flattened embedding of the kind being
trained. Negatives never include the positive and, by default, no clip of the anchor's own video
(near-duplicates of the positive).

The epoch is chosen on val (mean reciprocal rank over the val pool); the test figures rank the
true match among the WHOLE test pool: every query is scored against every candidate. (The
official evaluation scores the same candidate for every index, so its top-k is meaningless:
REFERENCE.md, known defects.) Ties count against the true match. The pool is either one clip per
video (its row with the smallest ``clip`` value; the paper's pool is its ~210 test videos) or
every clip of the split (``pool``); val uses the same rule.
"""
from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from pipeline.atomic import write_json, write_text
from pipeline.classes import CLASSES
from pipeline.executor import map_ordered
from pipeline.schema import RetrievalParams

# ``erased`` is a control the paper lacks: a clip's ``transformer`` tokens of one stream have
# co-attended to the same clip's other streams, so query and match share information by
# construction; the ``erased`` tokens are encoded with no view of the other streams.
KINDS = ("transformer", "erased", "input")
KIND_TITLES = {"transformer": "Transformer", "erased": "Transformer (streams apart)",
               "input": "Pre-Transformer"}
MODALITIES = ("visual", "pose", "audio")
SPLITS = ("train", "val", "test")
TOP_K = (1, 5, 10)


class EmbeddingsError(ValueError):
    """A malformed embeddings file; the message starts with the file's path."""


# --------------------------------------------------------------------------------------------
# variants


@dataclass(frozen=True)
class Variant:
    """One retrieval task: query modalities -> result modality."""

    name: str
    query: tuple[str, ...]
    result: str
    space: str   # the anchor modality whose nearest neighbours give the hard negatives
    easy: int    # random negatives
    hard: int    # nearest-neighbour negatives

    @property
    def choices(self) -> int:
        return 1 + self.easy + self.hard


VARIANTS = (
    Variant("audio->vision", ("audio",), "visual", "audio", 0, 2),
    Variant("vision->audio", ("visual",), "audio", "visual", 0, 2),
    Variant("audio->pose", ("audio",), "pose", "audio", 0, 2),
    Variant("pose->audio", ("pose",), "audio", "visual", 0, 2),
    Variant("vision+audio->pose", ("visual", "audio"), "pose", "visual", 2, 1),
)


# --------------------------------------------------------------------------------------------
# the embeddings file


@dataclass(frozen=True)
class Embeddings:
    """One split's embeddings; ``features[(kind, modality)]`` is (n, L*d), the flattened token
    sequence (absent persons' pose tokens zeroed)."""

    path: str
    video_id: np.ndarray   # (n,) str
    clip: np.ndarray       # (n,) int64
    features: dict

    def __len__(self) -> int:
        return len(self.video_id)


def _dataset(f: h5py.File, path, name: str, ndim: int, kinds: str, n: int | None = None):
    """Read dataset ``name`` checking its rank, dtype kind and (when given) row count."""
    node = f.get(name)
    if not isinstance(node, h5py.Dataset):
        raise EmbeddingsError(f"{path}: missing dataset {name!r}")
    if node.ndim != ndim:
        raise EmbeddingsError(f"{path}: {name} has shape {node.shape}, expected {ndim} dimensions")
    if node.dtype.kind not in kinds:
        raise EmbeddingsError(f"{path}: {name} has dtype {node.dtype}, expected kind {kinds!r}")
    if n is not None and node.shape[0] != n:
        raise EmbeddingsError(f"{path}: {name} has {node.shape[0]} rows, video_id has {n}")
    return node[()]


def load_embeddings(path: str | Path) -> Embeddings:
    """Read and validate one ``data/embeddings/<split>.h5`` (the ``embed`` stage's contract)."""
    path = Path(path)
    if not path.is_file():
        raise EmbeddingsError(f"{path}: no such file (the embed stage writes it)")
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise EmbeddingsError(f"{path}: not a readable HDF5 file: {e}") from None
    with f:
        video_id = _dataset(f, path, "video_id", 1, "S")
        n = len(video_id)
        if n == 0:
            raise EmbeddingsError(f"{path}: no clips")
        clip = _dataset(f, path, "clip", 1, "iu", n).astype(np.int64)
        label = _dataset(f, path, "label", 2, "uib", n)
        if label.shape[1] != len(CLASSES):
            raise EmbeddingsError(f"{path}: label has {label.shape[1]} columns, expected {len(CLASSES)}")
        kind = _dataset(f, path, "kind", 1, "S", n)
        bad = sorted(set(kind.tolist()) - {b"solo", b"duet"})
        if bad:
            raise EmbeddingsError(f"{path}: kind has value {bad[0]!r}, expected solo or duet")
        valid = _dataset(f, path, "valid/pose", 2, "b", n)
        features = {}
        for k in KINDS:
            for m in MODALITIES:
                x = _dataset(f, path, f"{k}/{m}", 3, "f", n).astype(np.float32)
                if not np.isfinite(x).all():
                    raise EmbeddingsError(f"{path}: {k}/{m} has non-finite values")
                if m == "pose":
                    if valid.shape[1] != x.shape[1]:
                        raise EmbeddingsError(f"{path}: valid/pose has {valid.shape[1]} tokens, "
                                              f"{k}/pose has {x.shape[1]}")
                    x = x * valid[:, :, None]
                features[(k, m)] = x.reshape(n, -1)
    return Embeddings(str(path), np.char.decode(video_id, "utf-8"), clip, features)


def load_splits(directory: str | Path) -> dict[str, Embeddings]:
    """The three splits, checked to share every feature width."""
    splits = {s: load_embeddings(Path(directory) / f"{s}.h5") for s in SPLITS}
    train = splits["train"]
    for s in ("val", "test"):
        for key, x in splits[s].features.items():
            if x.shape[1] != train.features[key].shape[1]:
                raise EmbeddingsError(f"{splits[s].path}: {key[0]}/{key[1]} flattens to "
                                      f"{x.shape[1]} values, {train.path} to "
                                      f"{train.features[key].shape[1]}")
    return splits


def standardize(splits: dict[str, Embeddings], kind: str, on: bool) -> dict[str, dict]:
    """Per split, modality -> (n, D) float32 tensor of ``kind``, z-scored with train statistics."""
    out = {s: {} for s in splits}
    for m in MODALITIES:
        train = splits["train"].features[(kind, m)]
        mean = train.mean(0) if on else 0.0
        std = train.std(0) if on else 1.0
        if on:
            std = np.where(std < 1e-6, 1.0, std)
        for s, emb in splits.items():
            out[s][m] = torch.from_numpy(((emb.features[(kind, m)] - mean) / std).astype(np.float32))
    return out


def pool_indices(emb: Embeddings, pool: str) -> np.ndarray:
    """Rows forming the evaluation pool: every clip, or per video the row with the smallest
    ``clip`` value (the embed stage numbers clips in dataset order, so: the first one)."""
    if pool == "clips":
        return np.arange(len(emb))
    order = np.lexsort((emb.clip, emb.video_id))
    _, first = np.unique(emb.video_id[order], return_index=True)
    return np.sort(order[first])


# --------------------------------------------------------------------------------------------
# negatives (supplement Sec. 1)


def nearest_neighbours(x: torch.Tensor, codes: np.ndarray, k: int, exclude_same_video: bool,
                       chunk: int = 1024) -> np.ndarray:
    """(n, k') indices of each row's nearest rows (Euclidean), never itself nor, when asked, a
    row of its own video; k' = min(k, the fewest allowed rows of any anchor)."""
    n = x.shape[0]
    codes_t = torch.from_numpy(codes)
    largest_group = int(np.bincount(codes).max()) if exclude_same_video else 1
    k = min(k, n - largest_group)
    if k < 1:
        raise ValueError("no negative candidates: every training clip comes from one video")
    out = []
    for s in range(0, n, chunk):
        d = torch.cdist(x[s:s + chunk], x)
        rows = torch.arange(d.shape[0])
        d[rows, rows + s] = float("inf")
        if exclude_same_video:
            d[codes_t[s:s + chunk, None] == codes_t[None, :]] = float("inf")
        out.append(torch.topk(d, k, dim=1, largest=False).indices)
    return torch.cat(out).numpy()


def sample_negatives(anchors: np.ndarray, neighbours: np.ndarray, codes: np.ndarray,
                     variant: Variant, exclude_same_video: bool,
                     gen: np.random.Generator) -> np.ndarray:
    """(B, easy + hard) negative rows for ``anchors``: hard ones drawn without replacement from
    the anchor's nearest neighbours, easy ones uniformly from the whole training set."""
    b, k = len(anchors), neighbours.shape[1]
    if k >= variant.hard:
        pick = np.argsort(gen.random((b, k)), axis=1)[:, :variant.hard]
    else:
        pick = gen.integers(0, k, size=(b, variant.hard))
    hard = neighbours[anchors[:, None], pick]
    easy = gen.integers(0, len(codes), size=(b, variant.easy))
    while True:
        bad = easy == anchors[:, None]
        if exclude_same_video:
            bad |= codes[easy] == codes[anchors][:, None]
        if not bad.any():
            break
        easy[bad] = gen.integers(0, len(codes), size=int(bad.sum()))
    return np.concatenate([easy, hard], axis=1)


# --------------------------------------------------------------------------------------------
# the scorer (paper Sec. 4.2)


class Scorer(nn.Module):
    """Query and result -> common width -> element-wise product -> 4-layer tanh MLP -> logit."""

    def __init__(self, query_dims: tuple[int, ...], result_dim: int, width: int):
        super().__init__()
        self.query = nn.ModuleList(nn.Linear(d, width) for d in query_dims)
        self.result = nn.Linear(result_dim, width)
        self.fuse = (nn.Sequential(nn.Linear(width, width), nn.Tanh(), nn.Linear(width, width))
                     if len(query_dims) == 2 else None)
        w = width
        self.head = nn.Sequential(nn.Linear(w, w // 2), nn.Tanh(), nn.Linear(w // 2, w // 4),
                                  nn.Tanh(), nn.Linear(w // 4, w // 8), nn.Tanh(),
                                  nn.Linear(w // 8, 1))

    def embed_query(self, queries: list[torch.Tensor]) -> torch.Tensor:
        """(B, width); two queries (vision, audio) fuse as h = softmax(a*v) v + a,
        z = MLP(h) + h (Music Gesture's self-guided fusion, paper [15])."""
        parts = [proj(q) for proj, q in zip(self.query, queries)]
        if self.fuse is None:
            return parts[0]
        v, a = parts
        h = torch.softmax(a * v, dim=-1) * v + a
        return self.fuse(h) + h

    def embed_result(self, results: torch.Tensor) -> torch.Tensor:
        return self.result(results)

    def score(self, q: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
        """q (B, W) against r (B, n, W) -> (B, n) logits."""
        assert q.dim() == 2 and r.dim() == 3 and r.shape[0] == q.shape[0], (q.shape, r.shape)
        return self.head(q[:, None, :] * r).squeeze(-1)

    def forward(self, queries: list[torch.Tensor], results: torch.Tensor) -> torch.Tensor:
        """queries: tensors (B, D_i); results (B, n, D) -> (B, n) logits."""
        return self.score(self.embed_query(queries), self.embed_result(results))


# --------------------------------------------------------------------------------------------
# evaluation


@torch.no_grad()
def pool_ranks(scorer: Scorer, queries: list[torch.Tensor], results: torch.Tensor,
               max_pairs: int = 1 << 16) -> np.ndarray:
    """Rank (0 = best) of each item's own result among ALL results of the pool, scoring every
    query against every candidate; ties count against the true match."""
    p = results.shape[0]
    assert all(q.shape[0] == p for q in queries), "queries and results must pair row by row"
    scorer.eval()
    q = scorer.embed_query(queries)
    r = scorer.embed_result(results)
    step = max(1, max_pairs // p)
    ranks = []
    for s in range(0, p, step):
        rows = torch.arange(s, min(s + step, p))
        scores = scorer.score(q[rows], r[None].expand(len(rows), -1, -1))
        true = scores[torch.arange(len(rows)), rows][:, None]
        ranks.append((scores > true).sum(1) + (scores == true).sum(1) - 1)
    return torch.cat(ranks).numpy()


def topk_percent(ranks: np.ndarray) -> dict:
    """Top-1/5/10 accuracy in percent."""
    return {f"top{k}": round(float(np.mean(ranks < k)) * 100, 2) for k in TOP_K}


def mean_std(runs: list[dict]) -> dict:
    """Top-k of several scorers: the mean as ``topK`` and the (population) std as ``topK_std``."""
    out = {}
    for k in TOP_K:
        values = np.array([r[f"top{k}"] for r in runs])
        out[f"top{k}"] = round(float(values.mean()), 2)
        out[f"top{k}_std"] = round(float(values.std()), 2)
    return out


def random_percent(pool: int) -> dict:
    """A random ranking's expected top-k accuracy: k / pool."""
    return {f"top{k}": round(min(k, pool) / pool * 100, 2) for k in TOP_K}


# --------------------------------------------------------------------------------------------
# training


@dataclass(frozen=True)
class Fit:
    scorer: Scorer
    epoch: int       # the selected epoch (1-based)
    val_mrr: float
    seconds: float


def _mrr(ranks: np.ndarray) -> float:
    return float(np.mean(1.0 / (ranks + 1)))


def train_scorer(train: dict, train_codes: np.ndarray, val: dict | None, variant: Variant,
                 params: RetrievalParams, seed: int) -> Fit:
    """Train one scorer n-way on ``train`` (modality -> (n, D) tensors) and keep the epoch with
    the best val mean reciprocal rank (``val`` holds the val pool's rows; None: no pool to
    choose on, the last epoch is kept and val_mrr is nan)."""
    start = time.perf_counter()
    torch.manual_seed(seed)
    gen = np.random.default_rng(seed)
    scorer = Scorer(tuple(train[m].shape[1] for m in variant.query), train[variant.result].shape[1],
                    params.width)
    opt = torch.optim.Adam(scorer.parameters(), lr=params.lr)
    neighbours = nearest_neighbours(train[variant.space], train_codes, params.neighbours,
                                    params.exclude_same_video)
    n = len(train_codes)
    best = (-1.0, 0, None)
    for epoch in range(1, params.epochs + 1):
        scorer.train()
        order = gen.permutation(n)
        for s in range(0, n, params.batch_size):
            anchors = order[s:s + params.batch_size]
            negs = sample_negatives(anchors, neighbours, train_codes, variant,
                                    params.exclude_same_video, gen)
            cand = torch.from_numpy(np.concatenate([anchors[:, None], negs], axis=1))
            assert cand.shape == (len(anchors), variant.choices)
            logits = scorer([train[m][anchors] for m in variant.query], train[variant.result][cand])
            loss = F.cross_entropy(logits, torch.zeros(len(anchors), dtype=torch.long))
            opt.zero_grad()
            loss.backward()
            opt.step()
        mrr = (0.0 if val is None else
               _mrr(pool_ranks(scorer, [val[m] for m in variant.query], val[variant.result])))
        if mrr >= best[0]:  # on a tie the later (longer-trained) epoch
            best = (mrr, epoch, copy.deepcopy(scorer.state_dict()))
    scorer.load_state_dict(best[2])
    scorer.eval()
    return Fit(scorer, best[1], float("nan") if val is None else best[0],
               time.perf_counter() - start)


# --------------------------------------------------------------------------------------------
# the stage


def _rows(feats: dict, idx: np.ndarray) -> dict:
    t = torch.from_numpy(idx)
    return {m: x[t] for m, x in feats.items()}


def _scorer_run(data: dict, task: tuple) -> dict:
    """Train and test one scorer: ``data`` = {"codes": train video codes, kind: {"train",
    "val", "test": modality -> rows}}, task = (kind, variant index, params, seed) -> its test
    top-k, chosen epoch, val MRR and seconds (a module-level function:
    :func:`pipeline.executor.map_ordered` runs it in worker processes)."""
    kind, i, params, seed = task
    variant, d = VARIANTS[i], data[kind]
    fit = train_scorer(d["train"], data["codes"], d["val"], variant, params, seed)
    ranks = pool_ranks(fit.scorer, [d["test"][m] for m in variant.query], d["test"][variant.result])
    return {"topk": topk_percent(ranks), "epoch": fit.epoch, "val_mrr": fit.val_mrr,
            "seconds": fit.seconds}


def evaluate_all(splits: dict[str, Embeddings], params: RetrievalParams, log=print):
    """Train and test every variant on every embedding kind, ``repeats`` scorers each (seeds
    ``seed + r * 5 + variant index``, the same for every kind), spread over ``params.jobs``
    processes of ``params.threads`` threads (the figures do not depend on ``jobs``).

    Returns (metrics, details): metrics {variant: {kind: {top1, top5, top10, top1_std, ...}},
    random: {...}, pool: size} in percent (mean and std over the repeats); details
    {variant: {kind: {epochs, val_mrr, seconds}}} (selected epochs, mean val MRR, total time)."""
    _, codes = np.unique(splits["train"].video_id, return_inverse=True)
    val_pool = pool_indices(splits["val"], params.pool)
    test_pool = pool_indices(splits["test"], params.pool)
    if len(test_pool) < 2:
        raise EmbeddingsError(f"{splits['test'].path}: the {params.pool} pool has "
                              f"{len(test_pool)} item(s); retrieval needs at least 2")
    if len(val_pool) < 2:
        log(f"retrieval: {splits['val'].path}: a val pool of {len(val_pool)} cannot rank; "
            f"every scorer keeps its last epoch")
    data = {"codes": codes}
    for kind in KINDS:
        feats = standardize(splits, kind, params.standardize)
        data[kind] = {"train": feats["train"],
                      "val": _rows(feats["val"], val_pool) if len(val_pool) >= 2 else None,
                      "test": _rows(feats["test"], test_pool)}
    tasks = [(kind, i, params, params.seed + r * len(VARIANTS) + i)
             for kind in KINDS for i in range(len(VARIANTS)) for r in range(params.repeats)]
    results = iter(map_ordered(_scorer_run, tasks, params.jobs, params.threads, context=data))
    metrics = {v.name: {} for v in VARIANTS}
    details = {v.name: {} for v in VARIANTS}
    for kind in KINDS:
        for variant in VARIANTS:
            runs = [next(results) for _ in range(params.repeats)]
            metrics[variant.name][kind] = mean_std([r["topk"] for r in runs])
            details[variant.name][kind] = {
                "epochs": [r["epoch"] for r in runs],
                "val_mrr": round(float(np.mean([r["val_mrr"] for r in runs])), 4),
                "seconds": round(sum(r["seconds"] for r in runs), 2)}
            log(f"{variant.name:>20} {kind:>11}: {metrics[variant.name][kind]} "
                f"(epochs {details[variant.name][kind]['epochs']}, "
                f"{details[variant.name][kind]['seconds']:.1f} s)")
    metrics["random"] = random_percent(len(test_pool))
    metrics["pool"] = int(len(test_pool))
    return metrics, details


def table_markdown(metrics: dict, details: dict, params: RetrievalParams) -> str:
    """A markdown table shaped like paper Table 3, then the training details."""
    rnd, pool = metrics["random"], metrics["pool"]
    what = "one clip per test video" if params.pool == "videos" else "every test clip"
    head = ["Retrieval variant"] + [f"Top-{k} {KIND_TITLES[kind]}" for k in TOP_K for kind in KINDS]
    lines = [
        "# Multi-modal retrieval on the test split (paper Table 3)",
        "",
        f"Top-k accuracy (%) of the true match ranked among the whole test pool of {pool} "
        f"({what}). Random: top-1 {rnd['top1']}, top-5 {rnd['top5']}, top-10 {rnd['top10']}.",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    for v in VARIANTS:
        cells = []
        for k in TOP_K:
            for kind in KINDS:
                m = metrics[v.name][kind]
                cells.append(f"{m[f'top{k}']:.2f}" + (f" ± {m[f'top{k}_std']:.2f}"
                                                       if params.repeats > 1 else ""))
        lines.append(f"| {v.name} | " + " | ".join(cells) + " |")
    spread = (f"Mean ± std over {params.repeats} scorers per entry (seeds from {params.seed})."
              if params.repeats > 1 else f"One scorer per entry (seed {params.seed}).")
    lines += ["", f"{spread} Training: Adam lr {params.lr}, batch {params.batch_size}, "
              f"{params.epochs} epochs (epoch chosen on val by mean reciprocal rank), width "
              f"{params.width}, {params.neighbours} neighbours.", "",
              "| Retrieval variant | n-way | Embedding | Epochs chosen | Val MRR | Seconds |",
              "|---|---|---|---|---|---|"]
    for v in VARIANTS:
        for kind in KINDS:
            d = details[v.name][kind]
            epochs = ", ".join(map(str, d["epochs"]))
            lines.append(f"| {v.name} | {v.choices} | {KIND_TITLES[kind]} | {epochs} | "
                         f"{d['val_mrr']:.4f} | {d['seconds']:.2f} |")
    return "\n".join(lines) + "\n"


def run(embeddings_dir: str | Path, metrics_path: str | Path, table_path: str | Path,
        params: RetrievalParams, log=print) -> dict:
    """Stage ``retrieval``: read ``<embeddings_dir>/{train,val,test}.h5``, write the metrics JSON
    and the markdown table (atomically). Returns the metrics."""
    start = time.perf_counter()
    splits = load_splits(embeddings_dir)
    log(f"retrieval: train {len(splits['train'])}, val {len(splits['val'])}, "
        f"test {len(splits['test'])} clips; pool: {params.pool}")
    metrics, details = evaluate_all(splits, params, log=log)
    write_json(metrics_path, metrics)
    write_text(table_path, table_markdown(metrics, details, params))
    log(f"retrieval: done in {time.perf_counter() - start:.1f} s")
    return metrics
