"""``tribert separate`` (pipeline.tools.separate): output names and lengths, overlap-add, two videos with
a mixture, clear errors, the CLI. Real synthetic mp4s (ffmpeg), a random-init tiny TriBERT
package and a tiny random ST-GCN saved the way the training stages save them."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import ffmpeg
import numpy as np
import pytest
import soundfile as sf
import torch
from click.testing import CliRunner

from support import require_tools
from model import checkpoint
from pipeline.atomic import write_torch
from pipeline.train.task import SeparationTask
from model.tribert import TriBERT
from pipeline.data import spectrogram as sp
from pipeline.cli import main
from pipeline.classes import CLASSES
from pipeline.data.decode import DecodeParams, decode_audio
from pipeline.params import SynthParams
from pipeline.schema import PoseFeaturesParams
from pipeline.pose.stgcn import STGCN, save_checkpoint
from pipeline.separation.infer import (SPAN, cut_windows, estimate_waveforms, overlap_add,
                                       window_starts)
from pipeline.tools.separate import SeparateError, find_performers, separate
from pipeline.data.synth import VideoSpec, render

# 3-second videos, below the 6 s that data.synthetic.duration accepts: built without validation
SYNTH = SynthParams.model_construct(videos_per_class=1, duets=1, duration=3.0, fps=8, size=224,
                                    sample_rate=22050)
TINY = dict(backbone="resnet_tiny", image_size=64, hidden_visual=16, hidden_pose=16,
            hidden_audio=8, hidden_coattention=16, heads=2, ffn=32, layers=1, dropout=0.1,
            vggish_channels=(4, 4, 4, 4, 4, 4, 4), unet_depth=3, unet_channels=4,
            unet_max_channels=8, num_classes=21, frames=3, persons=2, pose_channels=256,
            pose_joints=68)
POSE = PoseFeaturesParams(context=16, batch_size=16, threads=1)
SOLO = VideoSpec("soloVideo01", ("flute",), "solo", 11)
DUET = VideoSpec("duetVideo01", ("violin", "tuba"), "duet", 12)


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """Two 3-s synthetic videos with their AlphaPose JSON, an 8-s mixture wav, tiny models."""
    require_tools("ffmpeg", "ffprobe")
    if not Path(SYNTH.soundfont).is_file():
        pytest.skip(f"{SYNTH.soundfont} is absent")
    root = tmp_path_factory.mktemp("separate")
    for spec in (SOLO, DUET):
        render(spec, root, SYNTH)
    t = np.arange(8 * 22050) / 22050
    sf.write(root / "mix.wav", 0.3 * np.sin(2 * np.pi * 440 * t) * (t % 1 < 0.5), 22050)
    torch.manual_seed(0)
    write_torch(root / "tribert.pt", checkpoint.package(TriBERT(**TINY)))
    save_checkpoint(STGCN(width=0.0625).eval(), root / "stgcn.pt",
                    {"classes": list(CLASSES), "window": 16})
    return root


def video(data, spec):
    return data / "videos" / f"{spec.video_id}.mp4"


def ann(data, spec):
    return data / "annotations" / f"{spec.video_id}.json"


def run(data, out, specs, **kw):
    kw.setdefault("keypoints", [ann(data, s) for s in specs])
    checkpoint = kw.pop("checkpoint", data / "tribert.pt")
    return separate([video(data, s) for s in specs], checkpoint, out,
                    stgcn=data / "stgcn.pt", pose_params=POSE, progress=False, **kw)


def test_one_performer_gives_one_wav_named_after_the_video(data, tmp_path):
    written = run(data, tmp_path, [SOLO])
    assert written == [tmp_path / "soloVideo01.wav"]
    wave, rate = sf.read(written[0])
    assert rate == 11025
    assert len(wave) == len(decode_audio(str(video(data, SOLO)), DecodeParams()))
    assert np.abs(wave).max() > 0


def test_two_performers_give_one_wav_each_left_to_right(data, tmp_path):
    written = run(data, tmp_path, [DUET])
    assert written == [tmp_path / "duetVideo01-1.wav", tmp_path / "duetVideo01-2.wav"]
    n = len(decode_audio(str(video(data, DUET)), DecodeParams()))
    assert [sf.info(str(p)).frames for p in written] == [n, n]


def test_two_videos_and_a_mixture_give_one_wav_per_performer_of_both(data, tmp_path):
    written = run(data, tmp_path, [SOLO, DUET], audio=data / "mix.wav")
    assert [p.name for p in written] == ["soloVideo01.wav", "duetVideo01-1.wav",
                                         "duetVideo01-2.wav"]
    n = len(decode_audio(str(data / "mix.wav"), DecodeParams()))
    assert n == 8 * 11025
    assert all(sf.info(str(p)).frames == n for p in written)


def test_four_sources_run_in_one_pass(data, tmp_path):
    other = tmp_path / "duetVideo02.mp4"
    shutil.copy(video(data, DUET), other)
    written = separate([video(data, DUET), other], data / "tribert.pt", tmp_path / "out",
                       audio=data / "mix.wav", stgcn=data / "stgcn.pt",
                       keypoints=[ann(data, DUET)] * 2, pose_params=POSE, progress=False)
    assert [p.name for p in written] == ["duetVideo01-1.wav", "duetVideo01-2.wav",
                                         "duetVideo02-1.wav", "duetVideo02-2.wav"]


@pytest.mark.parametrize("n", [1000, SPAN, 65535, 100_000, 250_001])
def test_overlap_add_of_all_ones_masks_gives_back_the_input(n):
    wave = np.random.default_rng(0).uniform(-0.5, 0.5, n).astype(np.float32)
    starts = window_starts(n)
    feats = sp.mixture_features(torch.from_numpy(cut_windows(wave, starts))[:, None])
    ones = torch.full((len(starts), 1, 256, 256), 30.0)
    pieces = estimate_waveforms(ones, feats).numpy()
    assert pieces.shape == (len(starts), 1, SPAN)
    out = overlap_add(pieces, starts, n)
    assert out.shape == (1, n)
    np.testing.assert_allclose(out[0], wave, atol=1e-5)


@pytest.mark.parametrize("n", [1000, SPAN, 65535, 70_000, 250_001])
def test_windows_lie_inside_the_input_at_most_half_a_window_apart(n):
    starts = window_starts(n)
    assert starts[0] == 0
    if n <= SPAN:
        assert list(starts) == [0]
    else:
        assert starts[-1] + SPAN == n
        assert np.diff(starts).max() <= SPAN // 2
    # a window holds the input's own samples, zeros only past its end
    wave = np.arange(1, n + 1, dtype=np.float32)
    for start, win in zip(starts, cut_windows(wave, starts)):
        inside = min(len(win), n - start)
        np.testing.assert_array_equal(win[:inside], wave[start:start + inside])
        assert not win[inside:].any()


def test_overlap_add_is_a_weighted_mean_of_the_windows():
    n = 100_000
    starts = window_starts(n)
    assert len(starts) == 3
    np.testing.assert_allclose(overlap_add(np.ones((3, 1, SPAN)), starts, n), 1.0, atol=1e-9)
    # where one window alone has weight, the output is its estimate; between, a cross-fade
    pieces = np.stack([np.full((1, SPAN), float(k)) for k in range(3)])
    out = overlap_add(pieces, starts, n)[0]
    assert (out[:starts[1]] == 0.0).all() and (out[starts[1] + SPAN:] == 2.0).all()
    assert (np.diff(out) >= -1e-9).all() and ((out > 0.0) & (out < 2.0)).any()


def test_performers_are_frequent_persons_left_to_right():
    boxes = np.zeros((10, 2, 4), np.float32)
    boxes[:, 0] = [300, 0, 400, 100]          # slot 0 stands right of slot 1
    boxes[:, 1] = [0, 0, 100, 100]
    absent = np.zeros((10, 2), bool)
    assert find_performers(boxes, absent, 0.1) == [1, 0]
    absent[1:, 1] = True                      # slot 1 in one frame of ten
    assert find_performers(boxes, absent, 0.2) == [0]
    assert find_performers(boxes, np.ones((10, 2), bool), 0.1) == []


# ---- a second performer must be a person (issue 12, item 9) ----------------------------------


def _detections(data, spec):
    from pipeline.pose.annotations import read_alphapose

    by_frame = read_alphapose(ann(data, spec))
    return [by_frame[t] for t in sorted(by_frame)]


def _copy(det, scale=(1.0, 1.0), shift=(0.0, 0.0), about=None):
    """``det`` scaled about ``about`` (default its box centre) and shifted, as a new find."""
    from pipeline.pose.annotations import Detection, box_from_joints

    kp = det.keypoints.copy()
    c = np.asarray(about if about is not None else (det.box[:2] + det.box[2:]) / 2)
    kp[:, :2] = (kp[:, :2] - c) * scale + c + shift
    return Detection(kp, box_from_joints(kp), det.score * 0.9)


def test_a_phantom_beside_or_inside_the_performer_is_not_a_second_performer(data):
    from pipeline.pose import keypoints as kpio
    from pipeline.tools.separate import keep_people, two_people

    solo = [d[0] for d in _detections(data, SOLO)]
    w = float(solo[0].box[2] - solo[0].box[0])
    phantoms = {   # the shapes MediaPipe's second pass found in rendered one-performer videos
        "thin, beside": lambda d: _copy(d, (0.2, 0.5), (0.65 * w, 0)),
        "inside, lower half": lambda d: _copy(d, (0.5, 0.5), (0, 0.2 * w)),
        "small, beside": lambda d: _copy(d, (0.35, 0.35), (0.8 * w, 0)),
    }
    for name, make in phantoms.items():
        frames = [[d, make(d)] for d in solo]
        assert not any(two_people(*f) for f in frames), name
        kept, people = keep_people(frames, 0.1)
        kp, boxes, absent = kpio.assign_slots(kept)
        assert people == 1 and find_performers(boxes, absent, 0.1) == [0], name
        assert all(k == [d] for k, d in zip(kept, solo)), name   # the performer, not the phantom
    # a second person of the same build beside the first is one, in enough frames
    frames = [[d, _copy(d, shift=(1.2 * w, 0))] for d in solo]
    assert sum(two_people(*f) for f in frames) >= 0.8 * len(frames)   # shoulders seen
    assert keep_people(frames, 0.1)[1] == 2
    few = [f if t < 2 else f[:1] for t, f in enumerate(frames)]     # 2 of 24 frames: too few
    assert keep_people(few, 0.1)[1] == 1
    # the rendered duet's two performers stay two
    assert keep_people(_detections(data, DUET), 0.1)[1] == 2


def test_mediapipe_phantom_in_a_rendered_one_performer_video_is_dropped(tmp_path):
    """A rendered one-performer video in which MediaPipe's second pass finds a 'person' in 12
    of 64 frames (the performer's lower body and instrument; before the fix: two performers)."""
    from pipeline.schema import KeypointsParams
    from pipeline.tools.separate import load_video
    from pipeline.data.synth.dataset import VideoSpec as Spec
    from pipeline.data.synth.render import compose_parts, synthesize

    require_tools("ffmpeg", "ffprobe")
    pytest.importorskip("mediapipe")
    params = SynthParams(duration=8.0, sample_rate=22050)
    if not Path(params.soundfont).is_file():
        pytest.skip(f"{params.soundfont} is absent")
    spec = Spec("solo05", (CLASSES[25 % len(CLASSES)],), "solo", 505)
    _, mix = synthesize(spec, params, compose_parts(spec, params))
    sf.write(tmp_path / "a.wav", mix, params.sample_rate)
    res = CliRunner().invoke(main, ["synth", "render", "--audio", str(tmp_path / "a.wav"),
                                    "--instrument", spec.classes[0], "--out",
                                    str(tmp_path / "v.mp4"), "--seed", "5"])
    assert res.exit_code == 0, res.output
    v = load_video(tmp_path / "v.mp4", None, KeypointsParams(backend="mediapipe"),
                   DecodeParams(), 0.1, tmp_path / "kp.npz")
    assert v.performers == [0]
    absent = np.load(tmp_path / "kp.npz")["absent"]
    assert absent[:, 1].all() and (~absent[:, 0]).mean() > 0.8   # the performer, in slot 0


def test_a_truncated_video_gets_a_warning_naming_it(data, tmp_path):
    """An mp4 whose index (at the front) declares 3 s but whose data stops at about 1.2 s:
    it separates what is there, and says so."""
    whole = tmp_path / "front.mp4"
    ffmpeg.input(str(video(data, SOLO))).output(str(whole), c="copy", movflags="+faststart") \
        .run(quiet=True)
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(whole.read_bytes()[:int(whole.stat().st_size * 0.4)])
    n = decode_frames_count(cut)
    records = [r for r in json.loads(ann(data, SOLO).read_text())
               if int(r["image_id"][:6]) < n]
    (tmp_path / "cut.json").write_text(json.dumps(records))
    warnings = []
    written = separate([cut], data / "tribert.pt", tmp_path / "o", stgcn=data / "stgcn.pt",
                       keypoints=[tmp_path / "cut.json"], pose_params=POSE, progress=False,
                       log=warnings.append)
    assert [p.name for p in written] == ["cut.wav"]
    assert len(warnings) == 2 and all(w.startswith(f"warning: {cut}: the container says 3.0 s")
                                      and "truncated" in w for w in warnings), warnings
    quiet = []
    run(data, tmp_path / "o2", [SOLO], log=quiet.append)
    assert quiet == []


def decode_frames_count(path) -> int:
    from pipeline.pose.keypoints import probe

    return probe(path).frames


def test_a_training_checkpoint_separates_like_its_model_package(data, tmp_path):
    """``--checkpoint checkpoints/last.pt`` (issue 12, item 8): the training state written by
    the real solver holds the package; separating with it gives the package's exact sound."""
    from pipeline.train import distrib
    from pipeline.train.solver import Paths, Solver

    torch.manual_seed(0)
    model = TriBERT(**TINY)
    settings = dict(lr=1e-3, batch_size=1, epochs=1, steps_per_epoch=1, betas=(0.9, 0.999),
                    weight_decay=0.0, schedule="constant", warmup_steps=0, grad_clip=0.0,
                    workers=0, amp="off", checkpoint_every=0, seed=0)
    paths = Paths(tmp_path / "checkpoints" / "last.pt", tmp_path / "models" / "tribert.pt",
                  tmp_path / "dvclive", tmp_path / "plots")
    solver = Solver(SeparationTask({}, None), model, [0, 1], settings, paths,
                    distrib.World(0, 1, torch.device("cpu")), log=lambda m: None)
    solver.save()
    write_torch(paths.best, checkpoint.package(model))
    from_state = run(data, tmp_path / "a", [SOLO], checkpoint=paths.last)
    from_package = run(data, tmp_path / "b", [SOLO], checkpoint=paths.best)
    assert np.array_equal(sf.read(from_state[0])[0], sf.read(from_package[0])[0])
    res = CliRunner().invoke(main, [
        "separate", str(video(data, SOLO)), "--keypoints", str(ann(data, SOLO)),
        "--checkpoint", str(paths.last), "--stgcn", str(data / "stgcn.pt"),
        "--out", str(tmp_path / "c"), "--no-progress"])
    assert res.exit_code == 0, res.output
    assert res.output.split() == [str(tmp_path / "c" / "soloVideo01.wav")]



# ---- paths that look like options (issue 12, item 6) -------------------------------------------


@pytest.fixture()
def dashed(data, tmp_path, monkeypatch):
    """The solo and duet videos, their keypoints and the mixture under names starting with "-"
    or holding ":" (ffmpeg's protocol separator), in the working directory."""
    for src, name in ((video(data, SOLO), "-x.mp4"), (ann(data, SOLO), "-x.json"),
                      (video(data, DUET), "take:2.mp4"), (ann(data, DUET), "-take2.json"),
                      (data / "mix.wav", "-dash.wav")):
        shutil.copy(src, tmp_path / name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_decoders_read_files_whose_names_look_like_options(dashed):
    from pipeline.data import decode, download
    from pipeline.pose import keypoints as kpio
    from pipeline.pose.mediapipe_backend import read_frames

    p = DecodeParams()
    for name in ("-x.mp4", "take:2.mp4"):   # read, then refused for being shorter than a clip
        with pytest.raises(decode.Skip, match="too short: 3.00 s"):
            decode.probe(name, p)
    assert len(decode_audio("-x.mp4", p)) == pytest.approx(3 * 11025, abs=600)
    kept, n = decode.decode_frames("-x.mp4", p, {0})
    assert n == 24 and list(kept) == [0]
    info = kpio.probe("-x.mp4")
    assert info.frames == 24
    assert len(list(read_frames("-x.mp4", 8, info))) == 24
    assert download.probe("-x.mp4") == pytest.approx(3.0, abs=0.1)


def test_separate_cli_takes_videos_audio_and_out_dirs_that_look_like_options(data, dashed):
    stgcn = str(data / "stgcn.pt")
    res = CliRunner().invoke(main, [
        "separate", "--keypoints", "-x.json", "--checkpoint", str(data / "tribert.pt"),
        "--stgcn", stgcn, "--out", "-out", "--with-video", "--no-progress", "--", "-x.mp4"])
    assert res.exit_code == 0, res.output
    assert res.output.split() == ["-out/-x.wav", "-out/-x.mp4"]
    assert ffmpeg.probe(str(dashed / "-out" / "-x.mp4"))["format"]["duration"]
    res = CliRunner().invoke(main, [
        "separate", "./-x.mp4", "take:2.mp4", "--audio", "-dash.wav",
        "--keypoints", "./-x.json", "--keypoints", "-take2.json",
        "--checkpoint", str(data / "tribert.pt"), "--stgcn", stgcn, "--out", "./-o2",
        "--no-progress"])
    assert res.exit_code == 0, res.output
    n = len(decode_audio(str(data / "mix.wav"), DecodeParams()))
    names = ["-x.wav", "take:2-1.wav", "take:2-2.wav"]
    assert [sf.info(str(dashed / "-o2" / k)).frames for k in names] == [n, n, n]


# ---- errors ----------------------------------------------------------------------------------


def _error(fn) -> str:
    with pytest.raises(SeparateError) as e:
        fn()
    return e.value.message


def test_unreadable_video_is_named(data, tmp_path):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"not a video at all")
    msg = _error(lambda: separate([bad], data / "tribert.pt", tmp_path / "o",
                                  stgcn=data / "stgcn.pt", keypoints=[ann(data, SOLO)],
                                  progress=False))
    assert str(bad) in msg


def test_a_video_without_sound_is_named(data, tmp_path):
    silent = tmp_path / "silent.mp4"
    ffmpeg.input(str(video(data, SOLO))).output(str(silent), an=None, vcodec="copy").run(quiet=True)
    msg = _error(lambda: separate([silent], data / "tribert.pt", tmp_path / "o",
                                  stgcn=data / "stgcn.pt", keypoints=[ann(data, SOLO)],
                                  progress=False))
    assert msg == f"{silent}: no audio track"


def test_a_video_with_nobody_is_named(data, tmp_path):
    empty = tmp_path / "nobody.json"
    empty.write_text("[]")
    msg = _error(lambda: run(data, tmp_path / "o", [SOLO], keypoints=[empty]))
    assert str(video(data, SOLO)) in msg and "no performer" in msg


@pytest.mark.parametrize("kind", ["garbage", "not_a_package", "wrong_pose", "sop", "other_version",
                                  "oracle"])
def test_a_checkpoint_that_does_not_fit_is_named(data, tmp_path, kind):
    bad = tmp_path / f"{kind}.pt"
    if kind == "garbage":
        bad.write_bytes(b"\0" * 100)
    elif kind == "not_a_package":
        torch.save({"weights": torch.zeros(3)}, bad)
    elif kind == "wrong_pose":
        write_torch(bad, checkpoint.package(TriBERT(**{**TINY, "pose_channels": 8})))
    elif kind == "other_version":   # a package with an argument this code does not know
        pkg = checkpoint.package(TriBERT(**TINY))
        pkg["kwargs"]["future_option"] = 1
        torch.save(pkg, bad)
    elif kind == "oracle":
        write_torch(bad, checkpoint.package(TriBERT(**{**TINY, "oracle": True})))
    else:
        from model.sop import SoundOfPixels

        sop = SoundOfPixels(backbone="resnet_tiny", image_size=64, sop_channels=4, unet_depth=3,
                            unet_channels=4, unet_max_channels=8)
        write_torch(bad, checkpoint.package(sop))
    msg = _error(lambda: separate([video(data, SOLO)], bad, tmp_path / "o",
                                  stgcn=data / "stgcn.pt", keypoints=[ann(data, SOLO)],
                                  progress=False))
    assert str(bad) in msg
    assert kind != "other_version" or "unknown here: future_option" in msg
    assert kind != "oracle" or "oracle-conditioned" in msg


@pytest.mark.parametrize("frames", ["past_the_end", "first_third"])
def test_keypoints_of_another_video_are_refused_naming_both(data, tmp_path, frames):
    """A keypoint JSON whose frames do not fit the video (24 frames here): one reaching frame
    59, or one stopping at frame 7, is another video's (issue 12, item 7)."""
    records = json.loads(ann(data, SOLO).read_text())
    if frames == "past_the_end":
        more = [dict(r, image_id=f"{int(r['image_id'][:6]) + 36:06d}.jpg") for r in records]
        records = records + more
    else:
        records = [r for r in records if int(r["image_id"][:6]) < 8]
    other = tmp_path / "other.json"
    other.write_text(json.dumps(records))
    msg = _error(lambda: separate([video(data, SOLO)], data / "tribert.pt", tmp_path / "o",
                                  stgcn=data / "stgcn.pt", keypoints=[other], progress=False))
    assert msg.startswith(f"{video(data, SOLO)}: {other}: keypoints for frames 0..")
    assert "(24 frames)" in msg and "\n" not in msg
    assert not (tmp_path / "o").exists()


def test_out_under_an_existing_file_is_refused_by_every_command(data, tmp_path):
    """``--out`` below a file: one line naming it, nothing written (issue 12, item 7)."""
    blocker = tmp_path / "taken"
    blocker.write_text("a file\n")
    runs = {
        "separate": ["separate", str(video(data, SOLO)), "--keypoints", str(ann(data, SOLO)),
                     "--checkpoint", str(data / "tribert.pt"), "--stgcn", str(data / "stgcn.pt"),
                     "--out", str(blocker / "sep"), "--no-progress"],
        "synth render": ["synth", "render", "--audio", str(data / "mix.wav"), "--instrument",
                         "flute", "--out", str(blocker / "v.mp4")],
    }
    for name, args in runs.items():
        res = CliRunner().invoke(main, args)
        assert res.exit_code == 1, (name, res.output)
        assert isinstance(res.exception, SystemExit), (name, res.exception)
        assert res.output.strip().splitlines()[-1] == (
            f"Error: {blocker / args[args.index('--out') + 1].split('/')[-1]}: cannot write "
            f"here: {blocker} is a file, not a folder"), (name, res.output)
    assert blocker.read_text() == "a file\n"


def test_a_bad_stgcn_checkpoint_is_named(data, tmp_path):
    bad = tmp_path / "stgcn.pt"
    torch.save({"nothing": 1}, bad)
    msg = _error(lambda: separate([video(data, SOLO)], data / "tribert.pt", tmp_path / "o",
                                  stgcn=bad, keypoints=[ann(data, SOLO)], progress=False))
    assert str(bad) in msg


def test_audio_with_one_video_is_refused_naming_the_audio(data, tmp_path):
    msg = _error(lambda: run(data, tmp_path, [SOLO], audio=data / "mix.wav"))
    assert str(data / "mix.wav") in msg


def test_two_videos_without_audio_are_refused_naming_them(data, tmp_path):
    msg = _error(lambda: run(data, tmp_path, [SOLO, DUET]))
    assert str(video(data, SOLO)) in msg and str(video(data, DUET)) in msg and "--audio" in msg


def test_an_unreadable_mixture_is_named(data, tmp_path):
    bad = tmp_path / "mix.wav"
    bad.write_bytes(b"RIFF....garbage")
    msg = _error(lambda: run(data, tmp_path / "o", [SOLO, DUET], audio=bad))
    assert str(bad) in msg


# ---- the command -----------------------------------------------------------------------------


def test_cli_writes_wavs_and_videos_with_the_separated_sound(data, tmp_path):
    out = tmp_path / "out"
    res = CliRunner().invoke(main, [
        "separate", str(video(data, DUET)), "--keypoints", str(ann(data, DUET)),
        "--checkpoint", str(data / "tribert.pt"), "--stgcn", str(data / "stgcn.pt"),
        "--out", str(out), "--with-video", "--no-progress"])
    assert res.exit_code == 0, res.output
    names = ["duetVideo01-1.wav", "duetVideo01-2.wav", "duetVideo01-1.mp4", "duetVideo01-2.mp4"]
    assert res.output.split() == [str(out / n) for n in names]
    info = ffmpeg.probe(str(out / "duetVideo01-2.mp4"))
    kinds = sorted(s["codec_type"] for s in info["streams"])
    assert kinds == ["audio", "video"]
    assert float(info["format"]["duration"]) == pytest.approx(
        sf.info(str(out / "duetVideo01-2.wav")).duration, abs=0.1)


def test_cli_error_names_the_file_and_fails(data, tmp_path):
    res = CliRunner().invoke(main, [
        "separate", str(video(data, SOLO)), "--audio", str(data / "mix.wav"),
        "--checkpoint", str(data / "tribert.pt"), "--out", str(tmp_path)])
    assert res.exit_code == 1
    assert f"Error: {data / 'mix.wav'}" in res.output
    assert not list(tmp_path.glob("*.wav"))


def test_bench_eval_reports_the_separation_speed():
    from pipeline.tools.bench_eval import bench_eval

    require_tools("ffmpeg", "ffprobe")
    if not Path(SYNTH.soundfont).is_file():
        pytest.skip(f"{SYNTH.soundfont} is absent")

    res = CliRunner().invoke(bench_eval, ["--generated", "--mixtures", "1", "--repeats", "1",
                                          "--seconds", "6", "--json"])
    assert res.exit_code == 0, res.output
    figures = json.loads(res.output)
    assert figures["separation_sources"] == 2
    assert figures["separation_audio_s"] == pytest.approx(6.0, abs=0.05)
    assert figures["separation_speed"] == pytest.approx(
        figures["separation_audio_s"] / figures["separation_wall_s"])
    assert figures["eval_fast_s_per_mixture"] > 0 and figures["eval_mir_eval_s_per_mixture"] > 0


def _motion_package(path: Path, scale: float) -> Path:
    """A TriBERT with the pose-motion branch whose output layer is random times ``scale``."""
    torch.manual_seed(0)
    model = TriBERT(**TINY, synthesizer=4, motion=8).eval()
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():
        model.motion.out.weight.copy_(torch.randn(model.motion.out.weight.shape, generator=g)
                                      * scale)
    write_torch(path, checkpoint.package(model))
    return path


def test_the_motion_branch_reads_each_performers_trajectory(data, tmp_path):
    """With model.motion, separate builds each window's trajectory as the pose shards do (the
    frames from the window's start, the performer in slot 0) and the output depends on it: the
    same model with the branch's output zeroed separates differently."""
    from pipeline.pose.features import VideoPose
    from pipeline.pose.trajectory import first_frame, trajectory_frames
    from pipeline.tools.separate import source_inputs, trajectory_window

    starts = np.array([0, 32640, 65280])
    model = TriBERT(**TINY, synthesizer=4, motion=8)
    first, length = trajectory_window(model, starts, DecodeParams())
    assert length == trajectory_frames(65535, 11025, 8) == 48
    assert first.tolist() == first_frame(starts, 11025, 8).tolist() == [0, 24, 47]
    assert trajectory_window(TriBERT(**TINY), starts, DecodeParams())[1] == 0   # not read

    from pipeline.schema import KeypointsParams
    from pipeline.tools.separate import load_video
    v = load_video(video(data, DUET), ann(data, DUET), KeypointsParams(backend="annotations"),
                   DecodeParams(), 0.1, tmp_path / "kp.npz")
    assert isinstance(v.pose, VideoPose) and v.performers == [0, 1]
    v.frames = {t: np.zeros((224, 224, 3), np.uint8) for t in range(11, 14)}
    v.features = {t: np.zeros((2, 256, 68), np.float32) for t in range(11, 14)}
    got = source_inputs(v, 1, np.array([11, 12, 13]), 2, first=5, length=10)["trajectory"]
    want = v.pose.x[:, 5:15, :, 1].transpose(1, 2, 0)           # slot 1's frames 5..14
    np.testing.assert_array_equal(got[:, 0], want)
    assert (got[:, 1] == 0).all() and np.abs(want).sum() > 0

    plain = run(data, tmp_path / "a", [DUET], checkpoint=_motion_package(tmp_path / "m0.pt", 0.0))
    moved = run(data, tmp_path / "b", [DUET], checkpoint=_motion_package(tmp_path / "m1.pt", 1.0))
    a = np.stack([sf.read(p)[0] for p in plain])
    b = np.stack([sf.read(p)[0] for p in moved])
    assert np.abs(a - b).max() > 1e-4
