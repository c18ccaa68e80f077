"""``tribert bench separate``: does the user's command separate? Pairs of test-split solo clips
of different classes; for each clip ``tribert synth render`` draws a performer playing exactly
that audio, the two clips' audio (each scaled 1/2, as in training and evaluation) is summed
into a mixture wav, and :func:`pipeline.tools.separate.separate` (the code behind ``tribert
separate``) separates the mixture given the two videos. Each written part is scored against its
clip with BSS Eval, beside the mixture as the estimate; the figures are means over the pairs with
95% bootstrap intervals, and ``per_pair`` gives each pair's classes and improvements (dB over
the mixture), so the parts that fail can be seen. Beside the model, the ideal binary mask of the
same mixture through the same warp, threshold and iSTFT (``ideal_*``, ``ideal_per_pair``): the
recipe's ceiling for each part, which says whether a part that fails could have passed. A pair
the CLI cannot separate (an error such as no performer found, or not one part per video) is
reported on stderr and both its parts are scored as failures (``failures``;
``metrics.FAILURE_DB``), as evaluation scores a silent estimate.

Keypoints come from the renderer's JSON by default (``--mediapipe``: MediaPipe finds them, as
for a user's video). Only test-split audio is used, so the model never trained on it; the
renderer draws new scenes (seeded by the pair), so the videos are new too.
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

import click
import numpy as np

from pipeline.benchmark import peak_rss_mb, report


MIN_RMS = 1e-4   # decode.min_rms: quieter windows are not clips (nothing to render or hear)


def pick_pairs(clip_dir: Path, count: int, seed: int) -> list[tuple[int, int]]:
    """``count`` pairs of audible test solo clips (dataset indices) of different classes and
    videos."""
    from pipeline.data.dataset import ClipDataset
    from pipeline.evaluate.separation import SplitClips

    ds = ClipDataset(clip_dir, "test", fields=("waveform",))
    clips = SplitClips.of(ds)
    audible = np.array([float(np.sqrt(np.mean(ds[i]["waveform"].numpy() ** 2))) >= MIN_RMS
                        for i in range(len(ds))])
    solo = np.nonzero((clips.kind == "solo") & audible)[0]
    if len(solo) < 2:
        raise click.ClickException(f"{clip_dir}: fewer than 2 solo clips in the test split")
    rng = np.random.default_rng(seed)
    pairs: list[tuple[int, int]] = []
    for _ in range(100 * count):
        if len(pairs) == count:
            break
        i, j = (int(x) for x in rng.choice(solo, 2, replace=False))
        if clips.video_id[i] != clips.video_id[j] and set(clips.classes[i]) != set(clips.classes[j]):
            pairs.append((i, j))
    if len(pairs) < count:
        raise click.ClickException(f"{clip_dir}: only {len(pairs)} test pairs of different "
                                   f"classes")
    return pairs


def render_clip(wave: np.ndarray, rate: int, instrument: str, out: Path, seed: int,
                fps: int) -> None:
    """An mp4 (and its keypoint JSON beside it) of a performer playing ``wave``, at ``fps``
    frames per second (the decode section's rate, which the model's trajectories assume)."""
    import soundfile as sf
    from click.testing import CliRunner

    from pipeline.data.synth.cli import render_cmd

    wav = out.with_suffix(".src.wav")
    sf.write(str(wav), wave, rate)
    result = CliRunner().invoke(render_cmd, ["--audio", str(wav), "--instrument", instrument,
                                             "--out", str(out), "--seed", str(seed),
                                             "--fps", str(fps)])
    if result.exit_code != 0:
        raise click.ClickException(f"{out}: rendering failed: {result.output.strip()}")


@click.command("separate")
@click.option("--checkpoint", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=Path("models/tribert.pt"), show_default=True)
@click.option("--stgcn", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=Path("models/stgcn.pt"), show_default=True)
@click.option("--clips", type=click.Path(exists=True, file_okay=False, path_type=Path),
              default=Path("data/clips"), show_default=True)
@click.option("--pairs", "count", type=click.IntRange(1), default=20, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--mediapipe", is_flag=True, help="MediaPipe finds the keypoints (default: the "
              "renderer's JSON).")
@click.option("--mask", type=click.Choice(["normalized", "ratio", "binary"]), default="normalized",
              show_default=True, help="tribert separate --mask")
@click.option("--params", "params_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A params.yaml whose decode, keypoints and pose_features sections the model "
                   "was trained with (tribert separate --params; the videos are rendered at its "
                   "decode.fps). Default: the built-in defaults, those of the shipped params.yaml.")
@click.option("--threads", type=click.IntRange(1), default=2, show_default=True)
@click.option("--json", "as_json", is_flag=True)
def bench_separate(checkpoint, stgcn, clips, count, seed, mediapipe, mask, params_path, threads,
                   as_json):
    """`tribert separate` on rendered videos of test-split audio: SDR of each part vs the
    mixture's."""
    import soundfile as sf
    import torch

    from pipeline.separation import metrics
    from pipeline.classes import CLASSES
    from pipeline.data.dataset import ClipDataset
    from pipeline.data.decode import DecodeParams
    from pipeline.tools.separate import SeparateError, params_sections, separate

    decode, keypoint_params, pose_params = params_sections(params_path)
    fps = (decode or DecodeParams()).fps
    torch.set_num_threads(threads)
    ds = ClipDataset(clips, "test", fields=("waveform", "label"))
    rate = 11025
    sdr, sdr_mix, si, ideal, ideal_mix, failures, wall, names = [], [], [], [], [], 0, 0.0, []
    with tempfile.TemporaryDirectory(prefix="tribert-bench-separate-") as tmp:
        tmp = Path(tmp)
        for k, (i, j) in enumerate(pick_pairs(clips, count, seed)):
            folder = tmp / f"pair{k:03d}"
            folder.mkdir()
            refs, videos = [], []
            for side, c in enumerate((i, j)):
                item = ds[c]
                wave = item["waveform"].numpy().astype(np.float64)
                name = CLASSES[int(np.nonzero(item["label"].numpy())[0][0])]
                names.append(name)
                video = folder / f"v{side + 1}.mp4"
                render_clip(wave.astype(np.float32), rate, name, video, seed * 1000 + 2 * k + side,
                            fps)
                refs.append(wave / 2)
                videos.append(video)
            mix = refs[0] + refs[1]
            best, best_mix = ideal_mask_sdr(np.stack(refs))
            ideal += list(best)
            ideal_mix += list(best_mix)
            sf.write(str(folder / "mix.wav"), mix.astype(np.float32), rate, subtype="FLOAT")
            start = time.perf_counter()
            try:
                written = separate(videos, checkpoint, folder / "out", audio=folder / "mix.wav",
                                   stgcn=stgcn, keypoints=None if mediapipe else
                                   [v.with_suffix(".json") for v in videos], mask=mask,
                                   decode=decode, keypoint_params=keypoint_params,
                                   pose_params=pose_params, progress=False)
            except SeparateError as e:    # e.g. no performer found: the pair's parts fail
                click.echo(f"pair {k}: {e.message}", err=True)
                written = []
            wall += time.perf_counter() - start
            if len(written) != 2:    # not one part per video: both parts count as failures
                failures += 2
                sdr += [metrics.FAILURE_DB] * 2
                si += [metrics.FAILURE_DB] * 2
                sdr_mix += list(metrics.separation_metrics(np.stack(refs), np.stack(refs)).sdr_mix)
                continue
            ests = [sf.read(str(w), dtype="float64")[0] for w in written]
            n = min(len(refs[0]), *(len(e) for e in ests))
            r = metrics.separation_metrics(np.stack([x[:n] for x in refs]),
                                           np.stack([e[:n] for e in ests]), mix[:n])
            sdr += list(r.sdr)
            si += list(r.si_sdr)
            sdr_mix += list(r.sdr_mix)
            failures += r.failures
    imp = np.asarray(sdr) - np.asarray(sdr_mix)
    ideal_imp = np.asarray(ideal) - np.asarray(ideal_mix)
    figures = {"checkpoint": str(checkpoint),   # report() adds the CPU model and ISA
               "keypoints": "mediapipe" if mediapipe else "renderer JSON", "mask": mask,
               "fps": fps,
               "pairs": count, "parts": len(sdr), "failures": failures}
    for name, values in (("sdr", sdr), ("si_sdr", si), ("sdr_mix", sdr_mix),
                         ("improvement", imp), ("ideal_sdr", ideal),
                         ("ideal_improvement", ideal_imp)):
        c = metrics.mean_ci(values)
        figures.update({name: c["mean"], f"{name}_lo": c["lo"], f"{name}_hi": c["hi"]})
    figures["parts_above_6db"] = float(np.mean(imp >= 6.0))
    figures["ideal_parts_above_6db"] = float(np.mean(ideal_imp >= 6.0))
    for key, gains in (("per_pair", imp), ("ideal_per_pair", ideal_imp)):
        figures[key] = "; ".join(f"{names[a]} {gains[a]:+.1f} / {names[a + 1]} {gains[a + 1]:+.1f}"
                                 for a in range(0, len(gains), 2))
    figures["separate_s_per_pair"] = wall / count
    figures["peak_rss_mb"] = peak_rss_mb()
    report("separate", figures, as_json, "tribert separate on rendered test-split pairs (dB)")


def ideal_mask_sdr(refs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """SDR (dB) of each of the N sources ``refs`` (N, L) as the ideal binary masks of their sum
    recover it: the masks ``mag_n > 0.5 mag_mix`` of the training targets, through the same
    warp, unwarp and iSTFT with the mixture's phase as the model's output (evaluation's ``ibm``
    column), and the mixture's SDR over the same samples."""
    import torch

    from pipeline.data import spectrogram as sp
    from pipeline.separation import metrics
    from pipeline.separation.infer import ideal_mask_waveforms

    feats = sp.mixture_features(torch.from_numpy(refs).float()[None])
    est = ideal_mask_waveforms(feats)[0].double().numpy()
    n = min(refs.shape[1], est.shape[1])
    r = metrics.separation_metrics(refs[:, :n], est[:, :n], refs.sum(0)[:n])
    return np.asarray(r.sdr), np.asarray(r.sdr_mix)
