"""The 21 synthetic instruments: General MIDI sound, register, playing style and look.

One :class:`Instrument` per MUSIC21 class. ``program`` is the 0-based General MIDI program given
to fluidsynth (the GM table numbers programs from 1: xylophone is GM 14, ``program=13``); the two
percussion classes play GM percussion keys on MIDI channel 10 (bank 128) instead. ``low``/``high``
bound the MIDI pitches the composer uses: the idiomatic range of the real instrument, so that the
classes differ in register as well as in timbre.
"""
from __future__ import annotations

from dataclasses import dataclass

from pipeline.classes import CLASSES

# GM percussion keys (channel 10)
KICK, SNARE, HIHAT, TOM_LOW, TOM_MID, TOM_HIGH, CRASH = 36, 38, 42, 45, 48, 50, 49
CONGA_MUTE_HIGH, CONGA_OPEN_HIGH, CONGA_LOW = 62, 63, 64


@dataclass(frozen=True)
class Instrument:
    name: str
    program: int | None        # 0-based GM program; None = GM percussion (channel 10)
    low: int                   # lowest MIDI pitch composed
    high: int                  # highest MIDI pitch composed
    style: str                 # composer style: melody | chords | arpeggio | bass | drums | congas
    hold: str                  # motion family (see pipeline.data.synth.motion)
    colour: tuple[int, int, int]   # base RGB of the instrument shape (varied per video)
    scale: str = "major"       # major | minor | pentatonic (the composer may switch to minor)
    percussion: tuple[int, ...] = ()  # GM percussion keys for drums/congas


INSTRUMENTS: dict[str, Instrument] = {i.name: i for i in (
    Instrument("bagpipe", 109, 67, 81, "melody", "wind_bagpipe", (150, 40, 50), "major"),
    Instrument("clarinet", 71, 52, 79, "melody", "wind_clarinet", (25, 25, 30)),
    Instrument("flute", 73, 72, 93, "melody", "wind_flute", (200, 200, 210)),
    Instrument("drum", None, 36, 50, "drums", "drums", (200, 30, 30),
               percussion=(KICK, SNARE, HIHAT, TOM_LOW, TOM_MID, TOM_HIGH, CRASH)),
    Instrument("acoustic_guitar", 25, 45, 72, "chords", "pluck_guitar", (190, 130, 60)),
    Instrument("ukulele", 24, 60, 81, "chords", "pluck_ukulele", (230, 170, 90)),
    Instrument("accordion", 21, 53, 81, "melody", "accordion", (180, 20, 40)),
    Instrument("bassoon", 70, 36, 62, "melody", "wind_bassoon", (120, 60, 30)),
    Instrument("guzheng", 107, 50, 86, "arpeggio", "zither", (160, 90, 40), "pentatonic"),
    Instrument("xylophone", 13, 65, 96, "melody", "mallets", (200, 120, 60)),
    Instrument("erhu", 110, 62, 86, "melody", "bow_erhu", (90, 40, 20), "pentatonic"),
    Instrument("tuba", 58, 31, 50, "bass", "wind_tuba", (210, 170, 50)),
    Instrument("congas", None, 62, 64, "congas", "congas", (170, 100, 50),
               percussion=(CONGA_MUTE_HIGH, CONGA_OPEN_HIGH, CONGA_LOW)),
    Instrument("saxophone", 65, 49, 77, "melody", "wind_sax", (220, 180, 60)),
    Instrument("cello", 42, 36, 64, "melody", "bow_cello", (140, 60, 20)),
    Instrument("violin", 40, 67, 93, "melody", "bow_violin", (170, 80, 20)),
    Instrument("electric_bass", 33, 28, 52, "bass", "pluck_bass", (40, 60, 160)),
    Instrument("piano", 0, 36, 96, "chords", "keys", (20, 20, 20)),
    Instrument("banjo", 105, 55, 79, "arpeggio", "pluck_banjo", (220, 220, 200)),
    Instrument("trumpet", 56, 58, 82, "melody", "wind_trumpet", (230, 190, 70)),
    Instrument("pipa", 106, 57, 86, "arpeggio", "pluck_pipa", (180, 110, 50), "pentatonic"),
)}
assert tuple(sorted(INSTRUMENTS)) == tuple(sorted(CLASSES)), "one instrument per MUSIC21 class"

# ``data.synthetic.styles: mixed``: the styles a class's part may be composed in, its own first.
# Chords only where the instrument sounds several notes at once; the percussion keeps its groove.
_MONOPHONIC = ("melody", "arpeggio", "bass")
_STRUMMED = ("chords", "arpeggio", "melody")
MIXED_STYLES: dict[str, tuple[str, ...]] = {
    **{n: _MONOPHONIC for n in ("bagpipe", "clarinet", "flute", "bassoon", "xylophone", "erhu",
                                "saxophone", "cello", "violin", "trumpet")},
    **{n: _STRUMMED for n in ("acoustic_guitar", "ukulele")},
    **{n: ("arpeggio", "chords", "melody") for n in ("guzheng", "pipa", "banjo")},
    "accordion": ("melody", "chords", "bass"), "piano": ("chords", "melody", "arpeggio"),
    "tuba": ("bass", "melody", "arpeggio"), "electric_bass": ("bass", "melody", "arpeggio"),
    "drum": ("drums",), "congas": ("congas",),
}
assert all(MIXED_STYLES[n][0] == i.style for n, i in INSTRUMENTS.items()), "own style first"


def instrument(name: str) -> Instrument:
    """The instrument of a class name; a clear error for an unknown class."""
    try:
        return INSTRUMENTS[name]
    except KeyError:
        raise ValueError(f"unknown instrument class {name!r}; known: {', '.join(CLASSES)}") from None
