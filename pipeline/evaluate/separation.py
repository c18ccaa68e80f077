"""Separation on the test split (paper Sec. 4.1, Table 1; REFERENCE.md "Metrics").

Two fixed, seeded sets of N=2 mixtures, each of clips from two different videos:

- ``single``: solo + solo (Table 1 "single-source");
- ``multi``: a duet clip + any clip (duet + solo or duet + duet; Table 1 "multi-source").

Each set takes every eligible clip once, in a seeded random order, as its first member (or
``evaluate.mixtures`` of them, cycling through new orders when more are asked for) and draws the
partner uniformly among the set's partner clips of another video. The sources are scaled by 1/N
and summed exactly as the training stage's val mixtures (:class:`pipeline.data.dataset.MixDataset`
without training gains); the model's masks are turned into waveforms by
:func:`pipeline.separation.infer.separation_estimates` (normalized ratio masks, ratio masks or
thresholded: ``evaluate.mask``) and each estimate is scored against its scaled source by
:func:`pipeline.separation.metrics.separation_metrics_many`. On the same mixtures every table also scores
the mixture as the estimate, the ideal binary mask through the same warp, threshold and iSTFT
(the ceiling of the recipe), the model's thresholded, ratio and normalized masks (one of them its output),
and the model with each mixture's two videos swapped (the drop shows how much the masks depend on the videos), with SI-SDR beside
BSS Eval and the mean gap between the two predicted masks. A silent estimate is scored as a
failure (:mod:`pipeline.separation.metrics`) and counted, never dropped. Every mean comes with its 95%
bootstrap interval.

Only the ``test`` split is ever read. The optional class subset (the fine-tuned MUSIC11 model,
paper Table 2) keeps the clips whose labels all lie in it.
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Optional, Sequence

import h5py
import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from model import checkpoint
from pipeline.separation.infer import output_masks, separation_estimates
from pipeline.separation.metrics import score_estimates
from pipeline import atomic
from pipeline.separation import metrics
from pipeline.data import shards
from pipeline.data import spectrogram as sp
from pipeline.classes import CLASSES
from pipeline.pose.trajectory import check_trajectory
from pipeline.data.dataset import CLIP_FIELDS, ClipDataset, MixDataset, collate, pose_extra
from pipeline.schema import EvaluateParams

N_MIX = 2
SETS = ("single", "multi")
SPLIT = "test"
SEPARATED_DB = 6.0  # a part this far above the mixture's SDR counts as separated (issue 11's bar)
RETURNED_DB = 2.0   # and one less than this far as the mixture handed back


# --------------------------------------------------------------------------------------------
# the test mixtures


@dataclass(frozen=True)
class SplitClips:
    """The test split's clips as the dataset indexes them: video, kind, classes, and whether a
    clip lies within the evaluated class subset."""

    video_id: np.ndarray   # (n,) str
    kind: np.ndarray       # (n,) "solo" | "duet"
    classes: tuple[tuple[str, ...], ...]
    eligible: np.ndarray   # (n,) bool

    @classmethod
    def of(cls, dataset: ClipDataset, subset: Optional[Sequence[str]] = None) -> "SplitClips":
        kinds = [shards.read_index(p, ("kind",))["kind"] for p in dataset.paths]
        kind = np.array([kinds[s][r] for s, r in zip(dataset.shard, dataset.row)], dtype=str)
        classes = tuple(tuple(CLASSES[j] for j in np.nonzero(lab)[0]) for lab in dataset.label)
        keep = np.array([subset is None or set(c) <= set(subset) for c in classes], bool)
        return cls(np.asarray(dataset.video_id, dtype=str), kind, classes, keep)


@dataclass(frozen=True)
class MixtureSet:
    """A named list of mixtures: ``pairs`` (M, N) dataset indices; ``note`` says why it is
    smaller than asked (e.g. no duet clips in the test split)."""

    name: str
    pairs: np.ndarray
    note: str = ""


def draw_pairs(first: np.ndarray, partners: np.ndarray, video_id: np.ndarray, count: int,
               rng: np.random.Generator) -> np.ndarray:
    """(M, 2) pairs: first members from ``first`` (each once in a random order when ``count``
    is 0, else ``count`` of them, a new order per pass), partners drawn uniformly from
    ``partners`` among the clips of another video. First members without such a partner are
    left out."""
    if not len(first):
        return np.zeros((0, N_MIX), np.int64)
    n_passes = 1 if count == 0 else -(-count // len(first))
    order = np.concatenate([rng.permutation(first) for _ in range(n_passes)])
    order = order if count == 0 else order[:count]
    pairs = []
    for i in order:
        others = partners[video_id[partners] != video_id[i]]
        if len(others):
            pairs.append((int(i), int(others[rng.integers(len(others))])))
    out = np.asarray(pairs, np.int64).reshape(-1, N_MIX)
    assert np.all(video_id[out[:, 0]] != video_id[out[:, 1]])
    return out


def mixture_sets(clips: SplitClips, count, seed: int) -> list[MixtureSet]:
    """The ``single`` (solo + solo) and ``multi`` (duet + any) sets of Table 1; ``count`` is one
    number for both or {"single": n, "multi": m}."""
    counts = count if isinstance(count, dict) else {name: count for name in SETS}
    idx = np.arange(len(clips.video_id))
    solo = idx[clips.eligible & (clips.kind == "solo")]
    duet = idx[clips.eligible & (clips.kind == "duet")]
    pools = {"single": (solo, solo, "solo"), "multi": (duet, idx[clips.eligible], "duet")}
    out = []
    for k, name in enumerate(SETS):
        first, partners, what = pools[name]
        pairs = draw_pairs(first, partners, clips.video_id, counts[name],
                           np.random.default_rng([seed, k]))
        note = ""
        if not len(first):
            note = f"the test split has no eligible {what} clips"
        elif not len(pairs):
            note = f"no two eligible {what} clips of different videos in the test split"
        out.append(MixtureSet(name, pairs, note))
    return out


# --------------------------------------------------------------------------------------------
# the model and the data


def load_model(path: str | Path) -> torch.nn.Module:
    """The model package at ``path`` (TriBERT or Sound-of-Pixels) in eval mode."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no model package (run the train stage first)")
    return checkpoint.load(path).eval()


def uses_pose(model: torch.nn.Module) -> bool:
    return "pose_channels" in model.init_kwargs


def reads_pose(model: torch.nn.Module) -> bool:
    """Whether the model reads the pose shards: a pose stream, or SoP's playing-area crops
    (model.sop_crop) from their keypoints."""
    return uses_pose(model) or model.init_kwargs.get("sop_crop") is not None


def check_data(model: torch.nn.Module, model_path, clip_dir: Path,
               pose_dir: Optional[Path]) -> None:
    """Raise ValueError naming the files when the shards do not fit the model's inputs."""
    kw = model.init_kwargs
    paths = shards.list_shards(clip_dir)
    if not paths:
        raise FileNotFoundError(f"{clip_dir}: no {shards.SHARD_GLOB} files")
    with h5py.File(paths[0], "r") as f:
        frames = int(f["frames"].shape[1])
    if frames != kw["frames"]:
        raise ValueError(f"{model_path}: the model takes {kw['frames']} frames per clip, "
                         f"{paths[0]} holds {frames}")
    if not reads_pose(model):
        return
    if pose_dir is None:
        raise ValueError(f"{model_path}: the model " + (
            "has a pose stream" if uses_pose(model) else
            "crops its frames to the keypoints (model.sop_crop)") + "; give the pose shards")
    first = pose_dir / paths[0].name
    if not first.is_file():
        raise FileNotFoundError(f"{first}: no pose shard for {paths[0]}")
    if not uses_pose(model):
        return
    with h5py.File(first, "r") as f:
        shape = tuple(f["features"].shape[1:]) if "features" in f else None
    want = (kw["frames"], kw["persons"], kw["pose_channels"], kw["pose_joints"])
    if shape != want:
        raise ValueError(f"{model_path}: the model takes pose features {want} per clip, "
                         f"{first} holds {shape}")
    if kw.get("motion"):
        check_trajectory(pose_dir, kw["motion_fps"])


class FixedMixtures(MixDataset):
    """:class:`MixDataset`'s val/test items (sources scaled by 1/N and summed, no gains) over the
    test split, for the given ``pairs`` (M, N) of clip indices instead of one per clip. Unlike
    MixDataset it opens a test split of a single video: its sets are then empty."""

    def __init__(self, clip_dir: Path, extra=None):
        ClipDataset.__init__(self, clip_dir, SPLIT, tuple(dict.fromkeys(CLIP_FIELDS + (
            "waveform",))), extra)
        self.n_mix, self.seed, self.epoch, self.train = N_MIX, 0, 0, False
        self.pairs = np.zeros((0, N_MIX), np.int64)

    def __len__(self) -> int:
        return len(self.pairs)


def open_test_split(clip_dir: Path, pose_dir: Optional[Path]) -> FixedMixtures:
    """The test split's clips, with the pose shards attached when given."""
    return FixedMixtures(clip_dir, pose_extra(pose_dir))


# --------------------------------------------------------------------------------------------
# inference and scores


@dataclass(frozen=True)
class Mixture:
    """One scored mixture of a set: the model's scores (``result``) and every variant's
    (:data:`pipeline.separation.metrics.VARIANTS`, the model's among them), and the mask gap."""

    set: str
    index: int
    video_ids: tuple[str, ...]
    kinds: tuple[str, ...]
    classes: tuple[tuple[str, ...], ...]   # the classes of each source (two for a duet clip)
    variants: dict
    mask_gap: float = float("nan")

    @property
    def result(self) -> metrics.Scores:
        return self.variants["model"]


@dataclass(frozen=True)
class Example:
    """What the example folders and the qualitative figure show of one mixture (numpy)."""

    mixture: Mixture
    mix: np.ndarray          # (L,) mixture waveform
    refs: np.ndarray         # (N, L) scaled sources
    ests: np.ndarray         # (N, L) estimates
    frames: np.ndarray       # (N, H, W, 3) uint8 centre frame of each video
    mag_mix: np.ndarray      # (256, T) warped mixture magnitude
    masks_gt: np.ndarray     # (N, 256, T) binary ground-truth masks
    masks_pred: np.ndarray   # (N, 256, T) predicted mask probabilities
    mags_gt: np.ndarray      # (N, 256, T) warped source magnitudes
    mags_pred: np.ndarray    # (N, 256, T) mag_mix * the predicted mask as the model applies it


def _examples(batch, feats, out, est, refs, mix, mask, threshold, mixtures) -> list[Example]:
    frames = batch["frames"]                                        # (B, N, F, H, W, 3)
    centre = frames[:, :, frames.shape[2] // 2].numpy()
    prob = torch.sigmoid(out["mask_logits"].float()).cpu()
    mag_mix = feats["mag_mix"][:, 0].cpu()
    pred_mags = mag_mix[:, None] * output_masks(prob, mask, threshold)
    return [Example(m, mix[b], refs[b], est[b], centre[b], mag_mix[b].numpy(),
                    feats["masks"][b].cpu().numpy(), prob[b].numpy(),
                    feats["mags"][b].cpu().numpy(), pred_mags[b].numpy())
            for b, m in enumerate(mixtures)]


def separate_set(model, dataset: FixedMixtures, clips: SplitClips, mset: MixtureSet,
                 params: EvaluateParams, device: torch.device,
                 progress: bool = True) -> Iterator[tuple[Mixture, Optional[Example]]]:
    """Separate and score every mixture of ``mset``; yields (mixture, example or None) in
    order, with an Example for the first ``params.examples`` and ``params.qualitative``."""
    dataset.pairs = mset.pairs
    loader = DataLoader(dataset, batch_size=params.batch_size, shuffle=False,
                        collate_fn=collate)
    keep = max(params.examples, params.qualitative)
    index = 0
    bar = tqdm(total=len(mset.pairs), desc=f"evaluate {mset.name}", unit="mix",
               disable=not progress)
    with torch.inference_mode():
        for batch in loader:
            feats, out, ests, gap = separation_estimates(model, batch, device, params.threshold,
                                                         swap=params.swap, mask=params.mask)
            est = ests["model"]
            L = est.shape[-1]
            assert est.shape[1:] == (N_MIX, sp.ISTFT_SAMPLES), est.shape
            refs = batch["audio"][..., :L].double().numpy()
            mix = feats["mix"][..., :L].double().cpu().numpy()
            mixtures = []
            scores = score_estimates(batch, feats, ests, params.backend)
            for b in range(est.shape[0]):
                members = [int(j) for j in batch["clip"][b]]
                mixtures.append(Mixture(
                    mset.name, index + b, tuple(batch["video_id"][b]),
                    tuple(str(clips.kind[j]) for j in members),
                    tuple(clips.classes[j] for j in members), scores[b], float(gap[b])))
            examples = (_examples(batch, feats, out, est, refs, mix,
                                  params.mask, params.threshold, mixtures)
                        if index < keep else [None] * len(mixtures))
            for m, ex in zip(mixtures, examples):
                yield m, (ex if m.index < keep else None)
            index += len(mixtures)
            bar.update(len(mixtures))
    bar.close()


@dataclass
class Evaluation:
    """Everything a run measured: the sets, their mixtures, and the kept examples."""

    sets: list[MixtureSet]
    mixtures: dict[str, list[Mixture]] = field(default_factory=dict)
    examples: dict[str, list[Example]] = field(default_factory=dict)


def evaluate(model_path: str | Path, clip_dir: str | Path, pose_dir: str | Path | None,
             params: EvaluateParams, subset: Optional[Sequence[str]] = None,
             device: str | torch.device = "cpu", progress: bool = True) -> Evaluation:
    """Separate and score the ``single`` and ``multi`` test sets with the model at
    ``model_path``. ``subset``: only clips whose classes all lie in it (e.g. MUSIC11)."""
    device = torch.device(device)
    clip_dir = Path(clip_dir)
    model = load_model(model_path).to(device)
    pose_dir = Path(pose_dir) if pose_dir and reads_pose(model) else None
    check_data(model, model_path, clip_dir, pose_dir)
    dataset = open_test_split(clip_dir, pose_dir)
    clips = SplitClips.of(dataset, subset)
    multi = params.mixtures if params.multi_mixtures is None else params.multi_mixtures
    run = Evaluation(mixture_sets(clips, {"single": params.mixtures, "multi": multi},
                                  params.seed))
    for mset in run.sets:
        run.mixtures[mset.name], run.examples[mset.name] = [], []
        for m, ex in separate_set(model, dataset, clips, mset, params, device, progress):
            run.mixtures[mset.name].append(m)
            if ex is not None:
                run.examples[mset.name].append(ex)
    return run


# --------------------------------------------------------------------------------------------
# tables


def _record(m: Mixture) -> metrics.Record:
    return metrics.Record(f"{m.set}/{m.index}", tuple("+".join(c) for c in m.classes),
                          m.variants)


def _source_records(m: Mixture) -> Iterator[metrics.Record]:
    """One single-source record per (source, class of that source): per-class statistics
    count a duet clip's source under each of its classes."""
    for k, classes in enumerate(m.classes):
        variants = {v: r.source(k) for v, r in m.variants.items()}
        for c in classes:
            yield metrics.Record(f"{m.set}/{m.index}/{k}", (c,), variants)


def failure_reasons(mixtures: Sequence[Mixture]) -> dict[str, int]:
    """The model's failed sources per reason, without the measured energy (e.g. "estimate 2 is
    silent")."""
    out: dict[str, int] = {}
    for m in mixtures:
        for reason in m.result.failed:
            if reason:
                reason = reason.split(" (")[0]
                out[reason] = out.get(reason, 0) + 1
    return dict(sorted(out.items()))


def set_metrics(mset: MixtureSet, mixtures: Sequence[Mixture]) -> dict:
    """metrics.json's entry of one set. Top level: the model's output (``evaluate.mask``: its
    normalized ratio masks by default, its ratio masks, or its thresholded masks as the paper
    reports them), means over mixtures of each mixture's source mean, with 95% bootstrap
    intervals (``*_lo``, ``*_hi``) and medians; ``improvement``: model SDR - mixture SDR per
    mixture, also with the interval of resampling the test videos the mixtures are made of
    (``improvement_videos_lo/hi`` over ``videos`` videos, :func:`metrics.mean_ci_units`: how far
    the mean could move on other videos, wider since mixtures share videos). Then the same
    mixtures through the thresholded, ratio and normalized masks (one of them the model's),
    with the videos swapped (``swap_drop`` = model - swapped SDR), and the
    ideal binary mask; ``failures`` counts the sources scored as failures (never dropped)."""
    agg = metrics.aggregate(_record(m) for m in mixtures)
    out = {"mixtures": agg["n_mixtures"], "failures": agg["failures"].get("model", 0),
           "failure_reasons": failure_reasons(mixtures)}
    model = agg["overall"].get("model", {})
    for name in metrics.METRICS:
        s = model.get(name, {"mean": None, "median": None, "lo": None, "hi": None})
        out[name] = s["mean"]
        out[f"{name}_median"] = s["median"]
        if name in ("sdr", "si_sdr", "sdr_mix"):
            out[f"{name}_lo"], out[f"{name}_hi"] = s["lo"], s["hi"]
    imp = agg["improvement"]
    out.update(improvement=imp["mean"], improvement_lo=imp["lo"], improvement_hi=imp["hi"])
    vid = metrics.mean_ci_units([m.result.mean()["sdr"] - m.result.mean()["sdr_mix"]
                                 for m in mixtures], [m.video_ids for m in mixtures])
    out.update(improvement_videos_lo=vid["lo"], improvement_videos_hi=vid["hi"],
               videos=vid["units"])
    for variant in metrics.VARIANTS[1:]:
        if variant in agg["overall"]:
            o = agg["overall"][variant]
            out[variant] = {"sdr": o["sdr"]["mean"], "sdr_lo": o["sdr"]["lo"],
                            "sdr_hi": o["sdr"]["hi"], "sir": o["sir"]["mean"],
                            "sar": o["sar"]["mean"], "si_sdr": o["si_sdr"]["mean"],
                            "failures": agg["failures"][variant]}
    if "swap" in agg["overall"] and mixtures:
        drop = [m.result.mean()["sdr"] - m.variants["swap"].mean()["sdr"] for m in mixtures]
        c = metrics.mean_ci(drop)
        out.update(swap_drop=c["mean"], swap_drop_lo=c["lo"], swap_drop_hi=c["hi"])
    gaps = [m.mask_gap for m in mixtures]
    out["mask_gap"] = float(np.mean(gaps)) if gaps else None
    out["parts_separated"], out["parts_returned"] = part_shares(mixtures)
    out["class_pair_r2"] = class_pair_r2(mixtures)
    if mset.note:
        out["note"] = mset.note
    return out


def part_improvements(m: Mixture) -> np.ndarray:
    """Per source of the mixture: the model's SDR - the mixture's SDR (dB)."""
    return np.asarray(m.result.sdr) - np.asarray(m.result.sdr_mix)


def part_shares(mixtures: Sequence[Mixture]) -> tuple[Optional[float], Optional[float]]:
    """The shares of the mixtures' parts (sources) separated (>= SEPARATED_DB over the
    mixture's SDR) and handed back as the mixture (< RETURNED_DB); None without mixtures."""
    if not mixtures:
        return None, None
    parts = np.concatenate([part_improvements(m) for m in mixtures])
    return float(np.mean(parts >= SEPARATED_DB)), float(np.mean(parts < RETURNED_DB))


def by_class_pair(mixtures: Sequence[Mixture]) -> dict[tuple[str, ...], list[Mixture]]:
    """The mixtures grouped by their classes in sorted order: one key per unordered pair of (a
    duet clip's joined) classes."""
    groups: dict[tuple[str, ...], list[Mixture]] = {}
    for m in mixtures:
        groups.setdefault(tuple(sorted("+".join(c) for c in m.classes)), []).append(m)
    return groups


def class_pair_r2(mixtures: Sequence[Mixture]) -> Optional[float]:
    """How much of the spread of the per-mixture improvement the pair of classes explains: the
    adjusted R^2 of the improvement on the class pair, over the mixtures whose pair occurs more
    than once. 1 - (within-pair variance, n - g degrees of freedom) / (variance, n - 1), so
    that pairs that do not matter give about 0 however small the groups (the plain R^2 of
    random groups of two is about one half), and 1 means the pair decides. None when fewer
    than two pairs repeat or the improvements do not vary."""
    kept = [np.asarray([np.mean(part_improvements(m)) for m in ms])
            for ms in by_class_pair(mixtures).values() if len(ms) > 1]
    if len(kept) < 2:
        return None
    values = np.concatenate(kept)
    total = float(np.sum((values - values.mean()) ** 2))
    if total <= 0.0:
        return None
    within = float(sum(np.sum((v - v.mean()) ** 2) for v in kept))
    n, g = len(values), len(kept)
    return 1.0 - (within / (n - g)) / (total / (n - 1))


CLASS_PAIR_COLUMNS = ("set", "classes_1", "classes_2", "mixtures", "improvement",
                      "improvement_min", "improvement_max", "parts_separated", "parts_returned")


def class_pairs_csv(run: Evaluation) -> str:
    """One row per set and unordered pair of classes: how many mixtures, the mean, lowest and
    highest improvement over the mixture (dB, per mixture as in ``metrics.json``) and the share
    of their parts separated (>= SEPARATED_DB) and handed back as the mixture (< RETURNED_DB);
    worst pairs first."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, CLASS_PAIR_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for s in run.sets:
        rows = []
        for pair, ms in by_class_pair(run.mixtures[s.name]).items():
            imp = np.asarray([np.mean(part_improvements(m)) for m in ms])
            rows.append((imp.mean(), pair, len(ms), imp.min(), imp.max(), *part_shares(ms)))
        for mean, pair, n, lo, hi, separated, returned in sorted(rows):
            writer.writerow({"set": s.name, "classes_1": pair[0], "classes_2": pair[-1],
                             "mixtures": n, "improvement": f"{mean:.6f}",
                             "improvement_min": f"{lo:.6f}", "improvement_max": f"{hi:.6f}",
                             "parts_separated": f"{separated:.6f}",
                             "parts_returned": f"{returned:.6f}"})
    return buf.getvalue()


def metrics_table(run: Evaluation) -> dict:
    return {s.name: set_metrics(s, run.mixtures[s.name]) for s in run.sets}


def per_class_table(run: Evaluation) -> dict:
    """Per set and class: sources, failures, mean and median SDR/SIR/SAR/SI-SDR (and SDR_mix,
    ideal-mask SDR) over the sources of that class."""
    return {s.name: metrics.aggregate(r for m in run.mixtures[s.name]
                                      for r in _source_records(m))["per_class"]
            for s in run.sets}


def csv_columns() -> list[str]:
    src = [f"{name}_{k + 1}" for name in metrics.METRICS for k in range(N_MIX)]
    ids = [f"{what}_{k + 1}" for what in ("video", "kind", "classes") for k in range(N_MIX)]
    other = [f"{v}_sdr" for v in metrics.VARIANTS if v != "model"]
    return ["set", "index", *ids, *metrics.METRICS, *src, *other, "mask_gap", "failed"]


def csv_row(m: Mixture) -> dict:
    row = {"set": m.set, "index": m.index,
           "failed": "; ".join(f for f in m.result.failed if f),
           "mask_gap": f"{m.mask_gap:.6f}"}
    for k in range(N_MIX):
        row[f"video_{k + 1}"] = m.video_ids[k]
        row[f"kind_{k + 1}"] = m.kinds[k]
        row[f"classes_{k + 1}"] = "+".join(m.classes[k])
    for v, r in m.variants.items():
        if v != "model":
            row[f"{v}_sdr"] = f"{r.mean()['sdr']:.6f}"
    row.update({name: f"{v:.6f}" for name, v in m.result.mean().items()})
    for name in metrics.METRICS:
        for k, v in enumerate(getattr(m.result, name)):
            row[f"{name}_{k + 1}"] = f"{v:.6f}"
    return row


def mixtures_csv(run: Evaluation) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, csv_columns(), lineterminator="\n")
    writer.writeheader()
    for s in run.sets:
        writer.writerows(csv_row(m) for m in run.mixtures[s.name])
    return buf.getvalue()


def write_tables(run: Evaluation, out_dir: str | Path) -> dict:
    """metrics.json, per_class.json, class_pairs.csv and mixtures.csv in ``out_dir`` (atomic);
    returns the metrics."""
    out_dir = Path(out_dir)
    table = metrics_table(run)
    atomic.write_json(out_dir / "metrics.json", table)
    atomic.write_json(out_dir / "per_class.json", per_class_table(run))
    atomic.write_text(out_dir / "class_pairs.csv", class_pairs_csv(run))
    atomic.write_text(out_dir / "mixtures.csv", mixtures_csv(run))
    return table


def summary(table: dict) -> str:
    """A short text table of the sets' means (dB), the model's SDR with its 95% interval."""
    fmt = lambda v, w: f"{v:>{w}.2f}" if v is not None else f"{'-':>{w}}"  # noqa: E731
    lines = [f"{'set':<7}{'mixtures':>9}{'failed':>7}{'SDR':>7}{'95% CI':>15}{'SIR':>7}"
             f"{'SAR':>7}{'SI-SDR':>7}{'mix':>7}{'binary':>7}{'ratio':>7}{'norm':>7}{'swap':>7}"
             f"{'IBM':>7}{'gap':>6}"]
    for name, s in table.items():
        ci = (f"[{s['sdr_lo']:.2f}, {s['sdr_hi']:.2f}]" if s.get("sdr_lo") is not None
              else "-")
        v = lambda k: (s.get(k) or {}).get("sdr")  # noqa: E731
        gap = s.get("mask_gap")
        lines.append(f"{name:<7}{s['mixtures']:>9}{s['failures']:>7}{fmt(s['sdr'], 7)}"
                     f"{ci:>15}{fmt(s['sir'], 7)}{fmt(s['sar'], 7)}{fmt(s['si_sdr'], 7)}"
                     f"{fmt(s['sdr_mix'], 7)}{fmt(v('binary'), 7)}{fmt(v('ratio'), 7)}"
                     f"{fmt(v('normalized'), 7)}{fmt(v('swap'), 7)}{fmt(v('ibm'), 7)}{fmt(gap, 6)}"
                     + (f"  ({s['note']})" if "note" in s else ""))
    return "\n".join(lines)
