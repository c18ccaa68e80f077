"""``tribert bench eval``: cost of the evaluation stage per mixture and separation speed (issue 7,
point 8).

Times what the evaluate stage scores per mixture (:func:`pipeline.separation.metrics.separation_metrics_many`:
the mixture baseline and the four estimate sets of :data:`pipeline.separation.metrics.VARIANTS` that it
computes, here the estimates, the estimates with more leakage, the swapped estimates and a
near-ideal estimate) with each backend on two-source mixtures of 65280 samples: the six real
MUSIC21 mixtures of ``../shared/data/music21_samples`` when that folder exists, otherwise seeded
generated ones. ``mir_eval`` and ``fast_bss_eval`` score one set per call, ``fast`` all of a
mixture in one call. Each backend's figure is the best of ``--repeats`` passes over all
mixtures (the least disturbed by other processes), divided by the number of mixtures; the
speed-ups are against serial mir_eval in the same run, and the largest difference to mir_eval
over every metric says the figures are the same.

Separation speed: seconds of audio separated per second of wall time by the ``tribert separate``
API (:func:`pipeline.tools.separate.separate`: decode, keypoints, ST-GCN features, model, overlap-add,
wav writing), best of ``--separation-repeats`` runs, on ``--video`` (keypoints from its
``--keypoints`` JSON, else MediaPipe) or on a synthetic duet rendered for the bench (its
AlphaPose-format annotations), with ``--checkpoint``/``--stgcn`` or random-init models of the
``tiny`` preset and the default ST-GCN width.
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Optional

import click
import numpy as np

from pipeline.benchmark import music21_samples, peak_rss_mb, report
from pipeline.separation.metrics import BACKENDS, METRICS, separation_metrics_many

N_SAMPLES = 65280  # the length of a separated clip (iSTFT of 256 frames, hop 256)
SAMPLE_RATE = 11025
DEFAULT_SAMPLES = music21_samples()


def real_mixtures(folder: Path) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(refs, ests, mix) of each ``<id>+<id>`` folder: gt1/gt2, pred1/pred2, mix wavs."""
    import soundfile as sf

    out = []
    for pair in sorted(p for p in folder.iterdir() if p.is_dir()):
        try:
            read = {n: sf.read(pair / f"{n}.wav", dtype="float64")[0]
                    for n in ("gt1", "gt2", "pred1", "pred2", "mix")}
        except (OSError, RuntimeError) as e:  # soundfile raises LibsndfileError(RuntimeError)
            raise click.ClickException(f"{pair}: cannot read its wavs ({e})")
        out.append((np.stack([read["gt1"], read["gt2"]]),
                    np.stack([read["pred1"], read["pred2"]]), read["mix"]))
    if not out:
        raise click.ClickException(f"{folder}: no mixture folders")
    return out


def generated_mixtures(n: int, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """``n`` seeded two-source mixtures: a vibrato tone with harmonics and a decaying noise
    pulse train, each scaled by 1/2; estimates leak 10% of the other source plus noise."""
    r = np.random.default_rng(seed)
    t = np.arange(N_SAMPLES) / SAMPLE_RATE
    out = []
    for _ in range(n):
        f0 = r.uniform(110, 880)
        phase = 2 * np.pi * f0 * t + 3 * np.sin(2 * np.pi * 5 * t)
        tone = sum(np.sin(k * phase) / k for k in (1, 2, 3))
        pulses = np.exp(-(t % r.uniform(0.2, 0.6)) * 20) * r.standard_normal(N_SAMPLES)
        refs = 0.5 * np.stack([tone / np.abs(tone).max(), pulses / np.abs(pulses).max()])
        ests = refs + 0.1 * refs[::-1] + 0.01 * r.standard_normal(refs.shape)
        out.append((refs, ests, refs.sum(axis=0)))
    return out


def variant_sets(refs: np.ndarray, ests: np.ndarray) -> dict[str, np.ndarray]:
    """Four estimate sets of one mixture, as many as evaluate scores per mixture."""
    return {"binary": ests, "ratio": 0.8 * ests + 0.2 * ests[::-1], "swap": ests[::-1].copy(),
            "ibm": refs + 0.01 * ests}


def seconds_per_mixture(mixtures, backend: str, repeats: int) -> tuple[float, list]:
    """Best-of-``repeats`` wall time per mixture (after one untimed warm-up call that pays the
    imports), and the last pass's results (one Scores per set and mixture)."""
    separation_metrics_many(mixtures[0][0], variant_sets(*mixtures[0][:2]), mixtures[0][2],
                            backend)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        results = [separation_metrics_many(refs, variant_sets(refs, ests), mix, backend)
                   for refs, ests, mix in mixtures]
        best = min(best, time.perf_counter() - start)
    return best / len(mixtures), [r for sets in results for r in sets.values()]


def max_difference_db(a: list, b: list) -> float:
    """Largest |difference| in dB between two backends' results over all metrics and sources."""
    diffs = [abs(x - y) for ra, rb in zip(a, b) for m in METRICS for x, y in zip(getattr(ra, m), getattr(rb, m))]
    return max(diffs, default=0.0)


def random_models(folder: Path) -> tuple[Path, Path]:
    """A random-init TriBERT of the ``tiny`` preset and a random ST-GCN (default width), saved as
    the training stages save them; returns their paths."""
    import torch

    from model.build import build_model
    from model.checkpoint import package
    from pipeline.atomic import write_torch
    from pipeline.schema import ModelParams
    from pipeline.classes import CLASSES
    from pipeline.schema import StgcnParams
    from pipeline.pose.stgcn import STGCN, save_checkpoint

    torch.manual_seed(0)
    write_torch(folder / "tribert.pt", package(build_model(ModelParams())))
    save_checkpoint(STGCN(width=StgcnParams().width).eval(), folder / "stgcn.pt",
                    {"classes": list(CLASSES), "window": StgcnParams().window})
    return folder / "tribert.pt", folder / "stgcn.pt"


def synthetic_duet(folder: Path, seconds: float) -> tuple[Path, Path]:
    """Render a seeded synthetic duet of ``seconds``; returns (video, AlphaPose JSON)."""
    from pipeline.params import SynthParams
    from pipeline.data.synth import VideoSpec, render

    spec = VideoSpec("benchDuet01", ("violin", "tuba"), "duet", 1)
    rec = render(spec, folder, SynthParams(duration=seconds))
    return folder / rec["video"], folder / rec["annotations"]


def separation_speed(video: Optional[Path], keypoints: Optional[Path], checkpoint: Optional[Path],
                     stgcn: Optional[Path], seconds: float, repeats: int) -> dict:
    """Figures of :func:`pipeline.tools.separate.separate` on one video (module docstring)."""
    import soundfile as sf
    import torch

    from pipeline.tools.separate import SeparateError, separate

    with tempfile.TemporaryDirectory(prefix="tribert-bench-separate-") as tmp:
        tmp = Path(tmp)
        label = str(video) if video else f"synthetic duet ({seconds:g} s)"
        if video is None:
            video, keypoints = synthetic_duet(tmp, seconds)
        if checkpoint is None or stgcn is None:
            random_tribert, random_stgcn = random_models(tmp)
        model_label = str(checkpoint) if checkpoint else "random-init tiny TriBERT"
        best, written = float("inf"), []
        for _ in range(repeats):
            start = time.perf_counter()
            try:
                written = separate([video], checkpoint or random_tribert, tmp / "out",
                                   stgcn=stgcn or random_stgcn,
                                   keypoints=[keypoints] if keypoints else None, progress=False)
            except SeparateError as e:
                raise click.ClickException(e.message) from None
            best = min(best, time.perf_counter() - start)
        audio_s = sf.info(str(written[0])).duration
    return {"separation_video": label, "separation_model": model_label,
            "separation_sources": len(written), "separation_audio_s": audio_s,
            "separation_wall_s": best, "separation_speed": audio_s / best,
            "separation_torch_threads": torch.get_num_threads()}


@click.command("eval")
@click.option("--samples", type=click.Path(path_type=Path), default=DEFAULT_SAMPLES,
              show_default=True, help="Folder of real mixtures (music21_samples layout); "
              "generated mixtures are used when it does not exist.")
@click.option("--generated", is_flag=True, help="Use generated mixtures even if --samples exists.")
@click.option("--mixtures", type=click.IntRange(1), default=6, show_default=True,
              help="How many generated mixtures.")
@click.option("--repeats", type=click.IntRange(1), default=3, show_default=True)
@click.option("--video", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Video to separate (default: a synthetic duet rendered for the bench).")
@click.option("--keypoints", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="AlphaPose-format JSON of --video (default: MediaPipe finds them).")
@click.option("--checkpoint", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="TriBERT package (default: a random-init model of the tiny preset).")
@click.option("--stgcn", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="ST-GCN checkpoint (default: a random-init one).")
@click.option("--seconds", type=click.FloatRange(6.0, 600.0), default=12.0, show_default=True,
              help="Length of the synthetic duet.")
@click.option("--separation-repeats", type=click.IntRange(1), default=1, show_default=True)
@click.option("--separation/--no-separation", default=True, show_default=True,
              help="Also measure the separation speed.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def bench_eval(samples: Path, generated: bool, mixtures: int, repeats: int, video, keypoints,
               checkpoint, stgcn, seconds, separation_repeats, separation: bool, as_json: bool):
    """Evaluation time per mixture with each BSS Eval backend (this project's, fast_bss_eval,
    mir_eval), and separation speed (seconds of audio per second of wall time)."""
    use_real = samples.is_dir() and not generated
    data = real_mixtures(samples) if use_real else generated_mixtures(mixtures)
    assert all(r.shape == e.shape == (2, N_SAMPLES) and m.shape == (N_SAMPLES,)
               for r, e, m in data), "mixtures must be 2 x 65280 samples"
    times, results = {}, {}
    for backend in BACKENDS:
        times[backend], results[backend] = seconds_per_mixture(data, backend, repeats)
    figures = {
        "data": "music21_samples" if use_real else "generated",
        "mixtures": len(data),
        "samples_per_mixture": N_SAMPLES,
        "repeats": repeats,
        "estimate_sets_per_mixture": len(variant_sets(*data[0][:2])),
        **{f"eval_{b}_s_per_mixture": times[b] for b in BACKENDS},
        "eval_fast_speedup": times["mir_eval"] / times["fast"],
        "eval_fast_bss_eval_speedup": times["mir_eval"] / times["fast_bss_eval"],
        "backends_max_diff_db": max(max_difference_db(results[b], results["mir_eval"])
                                    for b in BACKENDS),
        "failures": sum(r.failures for r in results["fast"]),
        **(separation_speed(video, keypoints, checkpoint, stgcn, seconds, separation_repeats)
           if separation else {}),
        "peak_rss_mb": peak_rss_mb(),
    }
    report("eval", figures, as_json, title="evaluation (per two-source mixture of 65280 samples) and "
                                   "separation (seconds of audio per second)")
