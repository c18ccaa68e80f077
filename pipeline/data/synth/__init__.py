"""The embedded synthetic performer dataset (``data.source: synthetic``).

Offline and deterministic by seed: :func:`plan` lists the videos, :func:`render` writes one
(an H.264 + AAC mp4, AlphaPose-format keypoints and, for duets, one stem per performer),
:func:`id_lists` gives the ID lists in the MUSIC_dataset format. ``tribert synth render`` makes
a performer video for any wav file (pipeline.data.synth.cli).

Sound: each class plays a General MIDI program of the FluidR3 GM soundfont, rendered in-process
by fluidsynth (GM numbers from 1; fluidsynth's 0-based program in brackets):

==================  =============================================  ==============
class               GM program                                     MIDI range
==================  =============================================  ==============
bagpipe             110 Bag pipe (109)                             67-81
clarinet            72 Clarinet (71)                               52-79
flute               74 Flute (73)                                  72-93
drum                percussion, channel 10: kick 36, snare 38,     -
                    closed hi-hat 42, toms 45/48/50, crash 49
acoustic_guitar     26 Acoustic Guitar (steel) (25)                45-72, chords
ukulele             25 Acoustic Guitar (nylon) (24), high register 60-81, chords
accordion           22 Accordion (21)                              53-81
bassoon             71 Bassoon (70)                                36-62
guzheng             108 Koto (107)                                 50-86, pentatonic
xylophone           14 Xylophone (13)                              65-96
erhu                111 Fiddle (110)                               62-86, pentatonic
tuba                59 Tuba (58)                                   31-50
congas              percussion, channel 10: mute high conga 62,    -
                    open high conga 63, low conga 64
saxophone           66 Alto Sax (65)                               49-77
cello               43 Cello (42)                                  36-64
violin              41 Violin (40)                                 67-93
electric_bass       34 Electric Bass (finger) (33)                 28-52
piano               1 Acoustic Grand Piano (0)                     36-96, two hands
banjo               106 Banjo (105)                                55-79, broken chords
trumpet             57 Trumpet (56)                                58-82
pipa                107 Shamisen (106)                             57-86, pentatonic
==================  =============================================  ==============

Parts are composed per video (pipeline.data.synth.score): tempo 75-150 BPM, any key, major or minor
(pentatonic for the Chinese instruments), phrases of 4-12 events with a velocity arc, rhythm
values by style, rests inside and between phrases; drums and congas play seeded grooves with
fills and breaks. Solos peak at 0.8; in a duet both parts are brought to the same RMS and scaled
together so the mixture peaks at 0.8, and the mixture is exactly the sum of the stems.

Picture (pipeline.data.synth.scene, draw): a random room with clutter; each performer is a figure
drawn on a 68-joint Halpe skeleton (pipeline.data.synth.skeleton) holding an instrument of a
class-specific shape and colour (pipeline.data.synth.draw). A share of the scenes also hold an
instrument nobody plays, and a share of the duets pair two performers of the same class.

Motion (pipeline.data.synth.motion, holds): every moving joint is a function of the performer's own
note events - the bow arm follows a bow position that sweeps once per note and reverses at each
note; picking hands, sticks, mallets and key-pressing hands strike at each onset and lift in
between; the fretting/stopping hand and keyboard hands move with the pitch; wind players'
fingering follows the pitch, the instrument nods at each attack and the shoulders rise in rests;
accordion bellows move while notes sound; the drummer's right foot presses the kick. So the
picture carries the instrument's identity and the pose carries the timing.
"""
from pipeline.data.synth.dataset import VideoSpec, id_lists, plan
from pipeline.data.synth.render import render

__all__ = ["VideoSpec", "plan", "render", "id_lists"]
