"""The synthetic dataset's sound: level, duet sums, and class differences (pipeline.data.synth)."""
from __future__ import annotations

from pathlib import Path

import librosa
import numpy as np
import pytest
import soundfile as sf

from pipeline.params import SynthParams
from pipeline.data.synth import audio as au
from pipeline.data.synth.dataset import VideoSpec
from pipeline.data.synth.instruments import instrument
from pipeline.data.synth.render import compose_parts, synthesize
from pipeline.data.synth.score import compose

SR = 22050
PARAMS = SynthParams(duration=6.0, sample_rate=SR)


@pytest.fixture(scope="module")
def soundfont():
    path = Path(SynthParams().soundfont)
    if not path.is_file():
        pytest.skip(f"{path} is absent (scripts/setup.sh installs it)")
    return str(path)


def solo(name: str, seed: int, soundfont: str) -> np.ndarray:
    inst = instrument(name)
    notes = compose(inst, 6.0, np.random.default_rng(seed))
    return au.normalise_solo(au.render_part(notes, inst, 6 * SR, SR, soundfont))


@pytest.mark.parametrize("name", ["drum", "flute", "tuba", "guzheng"])
def test_solo_audio_is_in_range_and_not_silent(name, soundfont):
    x = solo(name, 0, soundfont)
    assert x.dtype == np.float32 and x.shape == (6 * SR,)
    assert np.abs(x).max() <= 1.0
    assert np.sqrt(np.mean(x ** 2)) > 0.01


def test_duet_mixture_is_the_sum_of_its_stems(soundfont, tmp_path):
    spec = VideoSpec("AAAAAAAAAAA", ("cello", "flute"), "duet", 11)
    parts, mix = synthesize(spec, PARAMS, compose_parts(spec, PARAMS))
    assert len(parts) == 2 and all(np.sqrt(np.mean(p ** 2)) > 0.01 for p in parts)
    np.testing.assert_array_equal(mix, parts[0] + parts[1])
    assert np.abs(mix).max() <= au.PEAK + 1e-6


def test_duet_stems_on_disk_sum_to_the_rendered_mixture(soundfont, tmp_path):
    from pipeline.data.synth.render import render

    params = PARAMS.replace(fps=8, size=224)
    spec = VideoSpec("BBBBBBBBBBB", ("violin", "tuba"), "duet", 5)
    render(spec, tmp_path, params)
    stems = [sf.read(tmp_path / "stems" / f"BBBBBBBBBBB-{k}.wav", dtype="float32")[0] for k in (1, 2)]
    _, mix = synthesize(spec, params, compose_parts(spec, params))
    np.testing.assert_array_equal(stems[0] + stems[1], mix)


def median_f0(x: np.ndarray) -> float:
    rms = librosa.feature.rms(y=x, frame_length=2048, hop_length=512)[0]
    f0 = librosa.yin(x, fmin=30, fmax=3000, sr=SR, frame_length=2048, hop_length=512)
    n = min(len(f0), len(rms))
    return float(np.median(f0[:n][rms[:n] > 0.2 * rms.max()]))


def test_low_and_high_instruments_differ_in_pitch(soundfont):
    low = [median_f0(solo(n, 1, soundfont)) for n in ("tuba", "cello", "electric_bass")]
    high = [median_f0(solo(n, 1, soundfont)) for n in ("flute", "violin", "xylophone")]
    assert max(low) * 2 < min(high), (low, high)


def median_flatness(x: np.ndarray) -> float:
    rms = librosa.feature.rms(y=x, frame_length=2048, hop_length=512)[0]
    flat = librosa.feature.spectral_flatness(y=x, n_fft=2048, hop_length=512)[0]
    return float(np.median(flat[rms > 0.2 * rms.max()]))


def test_drums_are_noisier_than_tonal_instruments(soundfont):
    drums = median_flatness(solo("drum", 2, soundfont))
    tonal = [median_flatness(solo(n, 2, soundfont)) for n in ("flute", "cello", "piano", "trumpet")]
    assert drums > 10 * max(tonal), (drums, tonal)
