"""The embedded synthetic data's composer style of each class (those its composer plays,
``pipeline.data.synth.instruments``; ``tests/test_styles.py`` checks that they agree): what
``train.same_style_partners`` draws training partners by and ``tribert styles`` groups an
evaluation by. Kept apart from the renderer so that the stages that read clips do not depend on
it."""
from __future__ import annotations

STYLES: dict[str, str] = {
    "bagpipe": "melody", "clarinet": "melody", "flute": "melody", "drum": "drums",
    "acoustic_guitar": "chords", "ukulele": "chords", "accordion": "melody",
    "bassoon": "melody", "guzheng": "arpeggio", "xylophone": "melody", "erhu": "melody",
    "tuba": "bass", "congas": "congas", "saxophone": "melody", "cello": "melody",
    "violin": "melody", "electric_bass": "bass", "piano": "chords", "banjo": "arpeggio",
    "trumpet": "melody", "pipa": "arpeggio",
}
