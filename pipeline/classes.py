"""Instrument classes of MUSIC21 in the official label order, and the MUSIC (11-class) subset.

The order is the one the official TriBERT code uses for its label indices (REFERENCE.md); every
multi-hot label in this project is over these 21 classes. The 11-class MUSIC set is a mapping of
it, not a second label space.
"""
from __future__ import annotations

CLASSES: tuple[str, ...] = (
    "bagpipe", "clarinet", "flute", "drum", "acoustic_guitar", "ukulele", "accordion",
    "bassoon", "guzheng", "xylophone", "erhu", "tuba", "congas", "saxophone", "cello",
    "violin", "electric_bass", "piano", "banjo", "trumpet", "pipa",
)
NUM_CLASSES = len(CLASSES)
CLASS_INDEX = {name: i for i, name in enumerate(CLASSES)}

# The MUSIC dataset (Sound-of-Pixels), a subset of MUSIC21.
MUSIC11: tuple[str, ...] = (
    "accordion", "acoustic_guitar", "cello", "clarinet", "erhu", "flute", "saxophone",
    "trumpet", "tuba", "violin", "xylophone",
)
MUSIC11_INDEX = {name: i for i, name in enumerate(MUSIC11)}


def class_index(name: str) -> int:
    """Index of a class name; accepts MUSIC_dataset spellings such as "acoustic guitar"."""
    key = name.strip().lower().replace(" ", "_")
    try:
        return CLASS_INDEX[key]
    except KeyError:
        raise ValueError(f"unknown instrument class {name!r}; known: {', '.join(CLASSES)}") from None


def normalise_class(name: str) -> str:
    return CLASSES[class_index(name)]


def multi_hot(names) -> list[int]:
    """Multi-hot vector over the 21 classes for a collection of class names."""
    vec = [0] * NUM_CLASSES
    for n in names:
        vec[class_index(n)] = 1
    return vec
