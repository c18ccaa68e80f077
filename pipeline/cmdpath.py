"""User paths handed to external programs (ffprobe, ffmpeg, AlphaPose, yt-dlp's ffmpeg).

A relative path such as ``-x.mp4`` reaches ffprobe as an option (``Missing argument for option
'x.mp4'``), and ``./-x.mp4`` does not help because :class:`pathlib.Path` drops the ``./``; a name
such as ``take:1.mp4`` is read by ffmpeg as a URL of protocol ``take``. An absolute path starts
with ``/``, so it is never an option and never a URL: every command line in this project gets
its file arguments through :func:`arg`.
"""
from __future__ import annotations

import os


def arg(path: str | os.PathLike) -> str:
    """``path`` as a command-line argument that every program reads as a file: absolute, with
    the name kept exactly (no symlink resolution, so the user's spelling is what errors name)."""
    return os.path.abspath(os.fspath(path))
