"""Download the MUSIC / MUSIC21 videos from YouTube with yt-dlp's Python API (no shell).

Many IDs are gone (the paper lost 314 of 1365 videos, 23%; REFERENCE.md "Data"), so a missing
video is an expected outcome, never a reason to stop: :func:`download_one` always returns a
manifest :class:`~pipeline.data.manifest.Row` with status ``ok``, ``unavailable`` (private, removed,
terminated account, copyright, age or geo restriction: not retried) or ``failed`` with a reason
(``network: ...``, ``blocked: ...``, ``download: ...``, ``corrupt: ...``, ``error: ...``).

Each file is written under a temporary name by the downloader, checked with ffprobe (a video
stream, an audio stream, a positive duration) and only then renamed to ``videos/<id>.mp4``, so an
interrupted run never leaves a partial file under a final name, and a run started again skips
every video already present and intact (resume).

The downloader is injectable, ``downloader(video_id, tmp_path)`` writes the file at
``tmp_path``, so the stage is tested offline with local files.
"""
from __future__ import annotations

import functools
import os
import re
import shutil
import socket
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import ffmpeg
import yt_dlp
from yt_dlp.utils import GeoRestrictedError, YoutubeDLError

from pipeline import atomic, cmdpath
from pipeline.executor import Failure, map_videos
from pipeline.data.lists import ID_RE
from pipeline.data.manifest import Row

Downloader = Callable[[str, Path], None]

# yt-dlp / YouTube messages that mean the video cannot be had at all (lower case substrings).
UNAVAILABLE = (
    "video unavailable", "this video is unavailable", "this video is not available",
    "private video", "has been removed", "no longer available", "has been terminated",
    "copyright", "confirm your age", "age-restricted", "age restricted",
    "inappropriate for some users", "not made this video available in your country",
    "not available from your location", "not available in your country", "geo restriction",
    "members-only", "join this channel", "does not exist",
)
# Messages that look like the ones above but are the session's problem, worth a retry.
BLOCKED = ("not a bot", "captcha", "try again later", "rate-limit", "http error 429",
           "too many requests")
NETWORK = ("timed out", "timeout", "connection", "network", "temporary failure",
           "name resolution", "http error", "ssl", "unable to download", "incomplete read",
           "eof occurred", "urlopen error")


class CorruptVideo(Exception):
    """A file that ffprobe cannot read, or without a video stream, an audio stream or length."""


@dataclass(frozen=True)
class Outcome:
    """The result of one download attempt."""

    status: str            # ok | unavailable | failed
    reason: str = ""
    duration: float = 0.0
    retry: bool = False    # worth another attempt after a back-off


# --------------------------------------------------------------------------------------------
# checking files


def probe(path: str | Path) -> float:
    """Duration in seconds of a playable video with sound; raises :class:`CorruptVideo`."""
    path = Path(path).resolve()
    if not path.is_file() or path.stat().st_size == 0:
        raise CorruptVideo("empty file")
    try:
        info = ffmpeg.probe(cmdpath.arg(path))
    except ffmpeg.Error as e:
        lines = (e.stderr or b"").decode("utf-8", "replace").strip().splitlines()
        raise CorruptVideo(f"ffprobe: {lines[-1] if lines else 'cannot read the file'}"[:300]) from None
    kinds = {s.get("codec_type") for s in info.get("streams", [])}
    for kind in ("video", "audio"):
        if kind not in kinds:
            raise CorruptVideo(f"no {kind} stream")
    durations = [info.get("format", {}).get("duration")]
    durations += [s.get("duration") for s in info.get("streams", [])]
    duration = max((float(d) for d in durations if d not in (None, "N/A")), default=0.0)
    if not duration > 0:
        raise CorruptVideo("duration is zero")
    return duration


# --------------------------------------------------------------------------------------------
# the default downloader (yt-dlp)


class _QuietLogger:
    """yt-dlp logger that prints nothing: errors reach us as exceptions, with their message."""

    def debug(self, msg):
        pass

    info = warning = error = debug


def ytdlp_options(outtmpl: str, max_height: int, timeout: float, retries: int,
                  cookies: str = "") -> dict:
    """yt-dlp options: best video up to ``max_height`` with audio, merged/remuxed to mp4;
    ``cookies`` is a Netscape cookies file ("" = none) for when YouTube demands a sign-in."""
    h = int(max_height)
    opts = {
        "format": (f"bv*[height<={h}][ext=mp4]+ba[ext=m4a]/b[height<={h}][ext=mp4]/"
                   f"bv*[height<={h}]+ba/b[height<={h}]/wv*+ba/w"),
        "merge_output_format": "mp4",
        "postprocessors": [{"key": "FFmpegVideoRemuxer", "preferedformat": "mp4"}],
        "outtmpl": outtmpl,
        "noplaylist": True,
        "socket_timeout": timeout,
        "retries": retries,
        "fragment_retries": retries,
        "overwrites": True,
        "continuedl": False,
        "quiet": True,
        "no_warnings": True,
        "noprogress": True,
        "logger": _QuietLogger(),
    }
    if cookies:
        opts["cookiefile"] = cookies
    return opts


def ytdlp_download(video_id: str, tmp_path: Path, *, max_height: int = 360, timeout: float = 60.0,
                   retries: int = 3, cookies: str = "") -> None:
    """Download YouTube video ``video_id`` into ``tmp_path`` (mp4) with yt-dlp's Python API.

    yt-dlp writes its own intermediates (format parts, ``.part`` files) in a private temporary
    directory beside ``tmp_path``, removed afterwards; ``atomic.clean_temporaries`` removes it
    if the process was killed. The ID goes into a full URL, so an ID starting with "-" is
    never read as an option.
    """
    tmp_path = Path(tmp_path)
    work = Path(tempfile.mkdtemp(prefix=f"{atomic.TMP_MARK}{video_id}-ytdlp-",
                                dir=cmdpath.arg(tmp_path.parent)))
    try:
        opts = ytdlp_options(str(work / f"{video_id}.%(ext)s"), max_height, timeout, retries,
                             cookies)
        with yt_dlp.YoutubeDL(opts) as ydl:
            ydl.download([f"https://www.youtube.com/watch?v={video_id}"])
        produced = work / f"{video_id}.mp4"
        if not produced.is_file():
            names = ", ".join(sorted(p.name for p in work.iterdir())) or "nothing"
            raise yt_dlp.utils.DownloadError(f"yt-dlp produced no mp4 (it wrote {names})")
        os.replace(produced, tmp_path)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def default_downloader(params) -> Downloader:
    """The yt-dlp downloader configured from :class:`~pipeline.params.DownloadParams`."""
    return functools.partial(ytdlp_download, max_height=params.max_height, timeout=params.timeout,
                             retries=params.retries, cookies=params.cookies)


# --------------------------------------------------------------------------------------------
# classifying errors


def _message(error: BaseException) -> str:
    """One clean line: yt-dlp's "ERROR: [youtube] <id>: " prefix and its "(caused by ...)"
    repetition of the underlying error removed."""
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    text = re.sub(r"^(ERROR:\s*)?(\[[^\]]+\]\s*)?([A-Za-z0-9_-]{11}:\s*)?", "", text)
    return text.split(" (caused by ")[0][:300]


def _chain(error: BaseException):
    """The error, its yt-dlp ``exc_info`` original and its causes."""
    seen = []
    stack = [error]
    while stack:
        e = stack.pop()
        if e is None or any(e is s for s in seen):
            continue
        seen.append(e)
        info = getattr(e, "exc_info", None)
        stack += [info[1] if isinstance(info, tuple) and len(info) > 1 else None,
                  e.__cause__, e.__context__]
    return seen


def classify(error: Exception) -> Outcome:
    """Map a downloader exception to an :class:`Outcome` (unavailable is final; the session's
    and the network's problems are retried; an unexpected exception type is a bug, not retried)."""
    msg = _message(error)
    low = " ".join(str(e).lower() for e in _chain(error))
    if isinstance(error, YoutubeDLError):
        if any(b in low for b in BLOCKED):
            return Outcome("failed", f"blocked: {msg}", retry=True)
        if any(isinstance(e, GeoRestrictedError) for e in _chain(error)) or any(
                u in low for u in UNAVAILABLE):
            return Outcome("unavailable", msg)
        if any(n in low for n in NETWORK):
            return Outcome("failed", f"network: {msg}", retry=True)
        return Outcome("failed", f"download: {msg}", retry=True)
    if isinstance(error, OSError):  # includes socket timeouts and urllib's URLError
        return Outcome("failed", f"network: {type(error).__name__}: {msg}", retry=True)
    return Outcome("failed", f"error: {type(error).__name__}: {msg}")


# --------------------------------------------------------------------------------------------
# one video, all videos

YOUTUBE = ("www.youtube.com", 443)
PROXY_VARIABLES = ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")


class Unreachable(OSError):
    """No connection to YouTube at all: every download would fail after its retries."""


def check_reachable(host: str = YOUTUBE[0], port: int = YOUTUBE[1], timeout: float = 10.0) -> None:
    """Fail fast when ``host:port`` cannot be reached (offline machine, firewall): without it,
    each of a thousand IDs would spend its retries and back-off (~14 s with the defaults)
    before being marked failed. Skipped behind a proxy (yt-dlp uses it; a direct socket would
    not), so it never refuses a setup that works."""
    if any(os.environ.get(v) for v in PROXY_VARIABLES):
        return
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as e:
        raise Unreachable(f"cannot reach {host}:{port} ({type(e).__name__}: {e}); nothing was "
                          f"downloaded; videos already under videos/ are kept. Run again with "
                          f"a network, or set HTTPS_PROXY") from e


def video_path(root: str | Path, video_id: str) -> Path:
    return Path(root) / "videos" / f"{video_id}.mp4"


class _DownloadFailed(Exception):
    def __init__(self, outcome: Outcome):
        super().__init__(outcome.reason)
        self.outcome = outcome


def attempt(video_id: str, final: Path, downloader: Downloader) -> Outcome:
    """One download into a temporary name, probed, then renamed onto ``final``.

    The downloader's exceptions become an :class:`Outcome`; a missing ffprobe and
    KeyboardInterrupt propagate. On any failure the temporary file is removed."""
    try:
        with atomic.atomic_path(final) as tmp:
            try:
                downloader(video_id, tmp)
            except Exception as e:  # noqa: BLE001 - every problem of one video becomes its row
                raise _DownloadFailed(classify(e)) from e
            duration = probe(tmp)
    except _DownloadFailed as e:
        return e.outcome
    except CorruptVideo as e:
        return Outcome("failed", f"corrupt: {e}", retry=True)
    return Outcome("ok", duration=duration)


def download_one(entry, root: str | Path, params, downloader: Downloader | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> Row:
    """Fetch one list entry (a :class:`pipeline.data.lists.ListEntry`) into ``root/videos/<id>.mp4``.

    A file already there and intact is kept (resume); a damaged one is replaced. Up to
    ``params.retries`` further attempts follow a retryable failure, after ``params.backoff``
    seconds doubled each time. Never raises for the video's own problems.
    """
    final = video_path(root, entry.video_id)
    row = Row(entry.video_id, tuple(entry.classes), kind=entry.kind, source="youtube")
    done = row.with_(video=final.relative_to(Path(root)).as_posix())
    if final.exists():
        try:
            return done.with_(duration=probe(final))
        except CorruptVideo:
            final.unlink(missing_ok=True)
    downloader = downloader or default_downloader(params)
    outcome = Outcome("failed", "no attempt made")
    for n in range(params.retries + 1):
        if n:
            sleep(params.backoff * 2 ** (n - 1))
        outcome = attempt(entry.video_id, final, downloader)
        if outcome.status == "ok":
            return done.with_(duration=outcome.duration)
        if not outcome.retry:
            break
    return row.with_(status=outcome.status, reason=outcome.reason)


def check_entries(entries) -> list[str]:
    """The entries' IDs; ValueError for a malformed or repeated one."""
    ids = [e.video_id for e in entries]
    bad = [i for i in ids if not ID_RE.fullmatch(i)]
    if bad:  # an ID becomes a file name: never let "../x" or an option-like string through
        raise ValueError(f"malformed video ID {bad[0]!r} (expected 11 characters of [A-Za-z0-9_-])")
    if len(set(ids)) != len(ids):
        dup = next(i for i in ids if ids.count(i) > 1)
        raise ValueError(f"video ID {dup!r} is listed twice; each ID is downloaded once")
    return ids


def download_all(entries, root: str | Path, params, downloader: Downloader | None = None,
                 **executor) -> list[Row]:
    """Download every entry with :func:`pipeline.executor.map_videos` (``executor`` holds its
    keyword arguments: backend, jobs, ray_address, progress). Returns one row per entry, in
    the order of ``entries``: a worker that died becomes a failed row, so the manifest accounts
    for every input ID. Raises :class:`Unreachable` at once when the real downloader has no
    route to YouTube."""
    entries = list(entries)
    ids = check_entries(entries)
    atomic.clean_temporaries(Path(root) / "videos")
    if downloader is None:   # the real yt-dlp path (an injected downloader needs no network)
        check_reachable(*YOUTUBE, timeout=params.timeout)
    fn = functools.partial(download_one, root=Path(root), params=params, downloader=downloader)
    rows: dict[str, Row] = {}
    for out in map_videos(fn, entries, desc="download", **executor):
        if isinstance(out, Failure):
            e = out.item
            out = Row(e.video_id, tuple(e.classes), kind=e.kind, source="youtube",
                      status="failed", reason=f"error: {out.error}")
        rows[out.video_id] = out
    missing = [i for i in ids if i not in rows]
    if missing:  # map_videos yields exactly one result per item; guard the contract anyway
        raise RuntimeError(f"download: no result for {len(missing)} IDs, e.g. {missing[0]}")
    return [rows[i] for i in ids]
