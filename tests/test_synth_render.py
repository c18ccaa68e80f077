"""Rendering synthetic videos: determinism, real H.264 + AAC, keypoints that match the drawn
figures, resume after an interruption, and the dataset plan (pipeline.data.synth)."""
from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import ffmpeg
import numpy as np
import pytest

from support import require_tools
from pipeline.classes import CLASSES
from pipeline.params import SynthParams
from pipeline.data.synth import VideoSpec, id_lists, plan, render
from pipeline.data.synth.instruments import INSTRUMENTS, MIXED_STYLES, instrument
from pipeline.data.synth.render import build_scene, compose_parts, outputs, part_styles
from pipeline.data.synth.score import compose

PARAMS = SynthParams(videos_per_class=1, duets=4, duration=6.0, fps=10, size=224,
                     sample_rate=22050)
DUET = VideoSpec("dUeT_123-xy", ("violin", "violin"), "duet", 1234, "piano")


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    require_tools("ffmpeg", "ffprobe")
    if not Path(PARAMS.soundfont).is_file():
        pytest.skip(f"{PARAMS.soundfont} is absent")
    roots = [tmp_path_factory.mktemp(n) for n in ("a", "b")]
    records = [render(DUET, r, PARAMS) for r in roots]
    return roots, records


def test_same_seed_gives_the_same_bytes(rendered):
    (a, b), _ = rendered
    for rel in outputs(DUET, a).values():
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel


def test_a_different_seed_gives_a_different_video(rendered, tmp_path):
    (a, _), _ = rendered
    other = dataclasses.replace(DUET, seed=DUET.seed + 1)
    render(other, tmp_path, PARAMS)
    rel = outputs(DUET, a)["video"]
    assert (a / rel).read_bytes() != (tmp_path / rel).read_bytes()


def test_record_names_the_written_files(rendered):
    (a, _), (rec, _) = rendered
    assert rec["duration"] == pytest.approx(6.0)
    assert rec["video"] == f"videos/{DUET.video_id}.mp4"
    assert rec["annotations"] == f"annotations/{DUET.video_id}.json"
    assert set(rec) == {"video_id", "duration", "video", "annotations"}
    assert rec["video_id"] == DUET.video_id
    stems = [f"stems/{DUET.video_id}-1.wav", f"stems/{DUET.video_id}-2.wav"]
    assert all((a / p).is_file() for p in [rec["video"], rec["annotations"], *stems])


def test_mp4_is_h264_and_aac_at_the_params_fps_and_size(rendered):
    (a, _), (rec, _) = rendered
    info = ffmpeg.probe(str(a / rec["video"]))
    v = next(s for s in info["streams"] if s["codec_type"] == "video")
    au = next(s for s in info["streams"] if s["codec_type"] == "audio")
    assert v["codec_name"] == "h264" and au["codec_name"] == "aac"
    assert (v["width"], v["height"]) == (PARAMS.size, PARAMS.size)
    assert v["r_frame_rate"] == f"{PARAMS.fps}/1"
    assert int(v["nb_frames"]) == PARAMS.fps * 6
    assert int(au["sample_rate"]) == PARAMS.sample_rate


def test_annotations_are_alphapose_records_per_frame_and_performer(rendered):
    (a, _), (rec, _) = rendered
    records = json.loads((a / rec["annotations"]).read_text())
    assert len(records) == PARAMS.fps * 6 * 2
    first = [r for r in records if r["image_id"] == "000000.jpg"]
    assert sorted(r["idx"] for r in first) == [1, 2]
    for r in records:
        assert re.fullmatch(r"\d{6}\.jpg", r["image_id"]) and r["category_id"] == 1
        assert len(r["keypoints"]) == 68 * 3 and len(r["box"]) == 4 and r["score"] > 0
        x, y, w, h = r["box"]
        assert 0 <= x and 0 <= y and x + w <= PARAMS.size and y + h <= PARAMS.size
    left = np.array([r["box"][0] for r in records if r["idx"] == 1])
    right = np.array([r["box"][0] for r in records if r["idx"] == 2])
    assert (left < right).all(), "performer 1 is the left one"


def test_keypoint_dropout_reports_some_joints_with_score_zero(rendered):
    (a, _), (rec, _) = rendered
    kp = np.array([r["keypoints"] for r in json.loads((a / rec["annotations"]).read_text())])
    zero = (kp[:, 2::3] == 0).mean()
    assert 0.5 * PARAMS.keypoint_dropout < zero < 2 * PARAMS.keypoint_dropout


def test_annotations_are_the_drawn_joints_plus_detector_noise(rendered):
    (a, _), (rec, _) = rendered
    records = json.loads((a / rec["annotations"]).read_text())
    scene = build_scene(DUET, PARAMS, compose_parts(DUET, PARAMS))
    residuals = []
    for r in records[:20]:
        truth = scene.render(int(r["image_id"][:6]))[1][r["idx"] - 1]
        kp = np.array(r["keypoints"]).reshape(68, 3)
        residuals.append((kp[:, :2] - truth)[kp[:, 2] > 0])
    res = np.concatenate(residuals)
    assert 0.7 * PARAMS.keypoint_jitter < res.std() < 1.3 * PARAMS.keypoint_jitter
    assert abs(res.mean()) < 0.2


def test_an_unplayed_instrument_is_painted_into_the_scene():
    spec = VideoSpec("IIIIIIIIIII", ("flute",), "solo", 9)
    parts = compose_parts(spec, PARAMS)
    bare = build_scene(spec, PARAMS, parts).background
    idle = build_scene(dataclasses.replace(spec, idle="tuba"), PARAMS, parts).background
    changed = np.abs(bare.astype(int) - idle.astype(int)).max(2) > 20
    assert 0.005 < changed.mean() < 0.3


def _on_figure(img, bg, pts) -> float:
    ij = np.clip(np.round(pts).astype(int), 0, img.shape[0] - 1)
    diff = np.abs(img[ij[:, 1], ij[:, 0]].astype(int) - bg[ij[:, 1], ij[:, 0]].astype(int)).max(1)
    return float((diff > 8).mean())


@pytest.mark.parametrize("classes", [("cello",), ("drum", "flute"), ("piano", "acoustic_guitar")])
def test_drawn_figures_cover_their_keypoints(classes):
    spec = VideoSpec("XXXXXXXXXXX", classes, "solo" if len(classes) == 1 else "duet", 7)
    scene = build_scene(spec, PARAMS, compose_parts(spec, PARAMS))
    hits, misses = [], []
    for i in (0, 17, 33):
        img, joints = scene.render(i)
        for j in joints:
            hits.append(_on_figure(img, scene.background, j))
            misses.append(_on_figure(img, scene.background, j + (0.3 * PARAMS.size, 0)))
    assert min(hits) >= 0.95, hits
    assert max(misses) < 0.8, misses


@pytest.mark.parametrize("name,wrist", [("violin", 10), ("drum", 9), ("piano", 10)])
def test_playing_hand_moves_with_the_notes_and_rests_without(name, wrist):
    spec = VideoSpec("YYYYYYYYYYY", (name,), "solo", 3)
    frames = range(PARAMS.fps * 6)
    playing = build_scene(spec, PARAMS, compose_parts(spec, PARAMS))
    idle = build_scene(spec, PARAMS, [[]])
    moving = np.array([playing.render(i)[1][0][wrist] for i in frames])
    still = np.array([idle.render(i)[1][0][wrist] for i in frames])
    assert np.ptp(moving, axis=0).max() > 4, "the playing hand travels"
    assert np.ptp(still, axis=0).max() < 1, "without notes it stays put"


def test_interrupted_render_is_completed_without_partial_files(rendered, tmp_path):
    (a, _), (rec, _) = rendered
    (tmp_path / "videos").mkdir()
    (tmp_path / "videos" / f".tmp-{DUET.video_id}-abc.mp4").write_bytes(b"partial")
    (tmp_path / "stems").mkdir()
    (tmp_path / "stems" / f"{DUET.video_id}-1.wav").write_bytes(b"truncated")
    render(DUET, tmp_path, PARAMS)
    for rel in outputs(DUET, a).values():
        assert (tmp_path / rel).read_bytes() == (a / rel).read_bytes(), rel
    leftovers = [p.name for p in tmp_path.rglob(".tmp-*")]
    assert leftovers == []


def test_finished_video_is_skipped(rendered):
    (a, _), _ = rendered
    paths = [a / p for p in outputs(DUET, a).values()]
    before = [p.stat().st_mtime_ns for p in paths]
    render(DUET, a, PARAMS)
    assert [p.stat().st_mtime_ns for p in paths] == before


def test_plan_is_deterministic_and_complete():
    specs = plan(PARAMS, seed=3)
    assert specs == plan(PARAMS, seed=3)
    assert {s.video_id for s in specs}.isdisjoint({s.video_id for s in plan(PARAMS, seed=4)})
    solos = [s for s in specs if s.kind == "solo"]
    duets = [s for s in specs if s.kind == "duet"]
    assert sorted(s.classes[0] for s in solos) == sorted(CLASSES)
    assert len(duets) == PARAMS.duets
    assert sum(s.classes[0] == s.classes[1] for s in duets) == round(PARAMS.duets * PARAMS.same_class_duets)
    assert sum(s.idle is not None for s in specs) == round(len(specs) * PARAMS.unplayed_instrument)
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{11}", s.video_id) for s in specs)
    assert len({s.seed for s in specs}) == len(specs)


def test_id_lists_use_the_music_dataset_format():
    specs = plan(PARAMS, seed=0)
    lists = id_lists(specs)
    solo, duet = lists["MUSIC21_solo_videos.json"], lists["MUSIC21_duet_videos.json"]
    assert set(solo["videos"]) == set(CLASSES)
    assert sum(map(len, solo["videos"].values())) == len(CLASSES) * PARAMS.videos_per_class
    assert all(len(k.split(" ")) == 2 for k in duet["videos"])
    ids = [i for v in lists.values() for ids in v["videos"].values() for i in ids]
    assert sorted(ids) == sorted(s.video_id for s in specs)
    json.dumps(lists)


def test_plan_narrows_to_a_class_subset():
    sub = PARAMS.replace(classes=("violin", "tuba"), duets=3)
    specs = plan(sub, seed=0)
    assert {c for s in specs for c in s.classes} <= {"violin", "tuba"}
    assert sum(s.kind == "solo" for s in specs) == 2 * sub.videos_per_class
    one = plan(sub.replace(classes=("violin",)), seed=0)
    assert all(s.classes in (("violin",), ("violin", "violin")) for s in one)


def _simultaneous(notes) -> bool:
    """Some note starts while another still sounds (a strummed chord)."""
    return any(b.onset < a.onset + a.duration - 0.05 for a, b in zip(notes, notes[1:]))


def test_fixed_styles_compose_each_class_in_its_own_style():
    specs = plan(PARAMS, seed=0)
    for spec in specs:
        assert part_styles(spec, PARAMS) == [instrument(c).style for c in spec.classes]
        rngs = [np.random.default_rng([spec.seed, 1, k]) for k in range(len(spec.classes))]
        assert compose_parts(spec, PARAMS) == [compose(instrument(c), PARAMS.duration, r)
                                               for c, r in zip(spec.classes, rngs)]


def test_mixed_styles_draw_each_part_from_its_class_and_change_what_is_played():
    mixed = PARAMS.replace(styles="mixed")
    specs = [VideoSpec(f"v{k:010d}", (c,), "solo", 1000 * k + i)
             for i, c in enumerate(INSTRUMENTS) for k in range(40)]
    drawn: dict[str, set[str]] = {}
    for spec in specs:
        (style,) = part_styles(spec, mixed)
        drawn.setdefault(spec.classes[0], set()).add(style)
    assert drawn == {c: set(s) for c, s in MIXED_STYLES.items()}  # every alternative, no other
    guitar, violin = instrument("acoustic_guitar"), instrument("violin")
    rng = lambda: np.random.default_rng(7)  # noqa: E731
    assert _simultaneous(compose(guitar, 12.0, rng()))             # its own style: chords
    assert not _simultaneous(compose(guitar, 12.0, rng(), "melody"))
    assert compose(violin, 12.0, rng(), "bass") != compose(violin, 12.0, rng())


def test_compose_refuses_a_style_the_class_does_not_play():
    with pytest.raises(ValueError, match="flute is not composed in style 'chords'"):
        compose(instrument("flute"), 6.0, np.random.default_rng(0), "chords")
