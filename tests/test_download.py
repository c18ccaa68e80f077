"""The YouTube download stage, offline: an injected downloader copies tiny real mp4s (made with
ffmpeg) or fails the way yt-dlp fails; ffprobe checks are real."""
from __future__ import annotations

import functools
import shutil
import socket
import subprocess
from pathlib import Path

import pytest
import yt_dlp
from yt_dlp.utils import DownloadError, ExtractorError, GeoRestrictedError

from support import require_tools
from pipeline.data import download
from pipeline.atomic import TMP_MARK
from pipeline.data.download import classify, download_all, download_one
from pipeline.data.lists import ListEntry
from pipeline.params import DownloadParams

PARAMS = DownloadParams(lists="unused", retries=2, backoff=0.5)


def _ffmpeg(out: Path, *inputs: str) -> Path:
    args = ["ffmpeg", "-nostdin", "-loglevel", "error", "-y"]
    for spec in inputs:
        args += ["-f", "lavfi", "-i", spec]
    subprocess.run(args + ["-c:v", "libx264", "-c:a", "aac", "-pix_fmt", "yuv420p", "-shortest",
                           str(out)], check=True)
    return out


@pytest.fixture(scope="session")
def clips(tmp_path_factory) -> dict[str, Path]:
    """A 1 s 64x64 mp4 with sound, and one without an audio stream."""
    require_tools("ffmpeg", "ffprobe")
    d = tmp_path_factory.mktemp("clips")
    return {
        "good": _ffmpeg(d / "good.mp4", "testsrc=size=64x64:rate=8:duration=1",
                        "sine=frequency=440:duration=1"),
        "mute": _ffmpeg(d / "mute.mp4", "testsrc=size=64x64:rate=8:duration=1"),
    }


def _entry(video_id: str, kind: str = "solo") -> ListEntry:
    classes = ("violin",) if kind == "solo" else ("flute", "violin")
    return ListEntry(video_id, classes, kind, "list.json", 1)


def copy_from(src: Path, video_id: str, tmp: Path) -> None:
    """A downloader that 'downloads' a local file (module level, so it pickles to workers)."""
    shutil.copyfile(src, tmp)


class Recorder:
    """A downloader that plays a script of outcomes per call and counts its calls."""

    def __init__(self, src: Path, script=()):
        self.src, self.script, self.calls = src, list(script), []

    def __call__(self, video_id: str, tmp: Path) -> None:
        self.calls.append(video_id)
        step = self.script.pop(0) if self.script else "copy"
        if isinstance(step, BaseException):
            raise step
        if step == "garbage":
            tmp.write_bytes(b"\x00not an mp4\xff" * 64)
        else:
            shutil.copyfile(self.src, tmp)


def _leftovers(root: Path) -> list[str]:
    return sorted(p.name for p in (root / "videos").glob(f"{TMP_MARK}*"))


def test_ok_video_lands_under_its_final_name(tmp_path, clips):
    row = download_one(_entry("aaaaaaaaaa1"), tmp_path, PARAMS, Recorder(clips["good"]))
    assert (row.status, row.reason, row.source) == ("ok", "", "youtube")
    assert row.video == "videos/aaaaaaaaaa1.mp4" and (tmp_path / row.video).is_file()
    assert 0.9 < row.duration < 1.2
    assert _leftovers(tmp_path) == []


def test_unavailable_video_is_reported_and_not_retried(tmp_path, clips):
    error = DownloadError("ERROR: [youtube] aaaaaaaaaa1: Video unavailable. This video has been "
                          "removed by the uploader")
    rec, sleeps = Recorder(clips["good"], [error]), []
    row = download_one(_entry("aaaaaaaaaa1"), tmp_path, PARAMS, rec, sleeps.append)
    assert (row.status, row.video) == ("unavailable", "")
    assert row.reason.startswith("Video unavailable")
    assert (len(rec.calls), sleeps) == (1, [])
    assert not (tmp_path / "videos" / "aaaaaaaaaa1.mp4").exists()


def test_corrupt_file_is_removed_and_reported(tmp_path, clips):
    rec, sleeps = Recorder(clips["good"], ["garbage"] * 3), []
    row = download_one(_entry("aaaaaaaaaa1"), tmp_path, PARAMS, rec, sleeps.append)
    assert row.status == "failed" and row.reason.startswith("corrupt: ffprobe")
    assert len(rec.calls) == PARAMS.retries + 1
    assert list((tmp_path / "videos").iterdir()) == []


def test_file_without_audio_is_rejected(tmp_path, clips):
    row = download_one(_entry("aaaaaaaaaa1"), tmp_path, PARAMS.__class__(retries=0),
                       Recorder(clips["mute"]))
    assert (row.status, row.reason) == ("failed", "corrupt: no audio stream")


def test_retries_back_off_then_succeed(tmp_path, clips):
    errors = [DownloadError("ERROR: Read timed out."), ConnectionResetError("reset by peer")]
    rec, sleeps = Recorder(clips["good"], errors), []
    row = download_one(_entry("aaaaaaaaaa1"), tmp_path, PARAMS, rec, sleeps.append)
    assert row.status == "ok"
    assert sleeps == [0.5, 1.0] and len(rec.calls) == 3


def test_retries_run_out_with_the_last_reason(tmp_path, clips):
    rec, sleeps = Recorder(clips["good"], [OSError("network is unreachable")] * 3), []
    row = download_one(_entry("aaaaaaaaaa1"), tmp_path, PARAMS, rec, sleeps.append)
    assert (row.status, row.reason) == ("failed", "network: OSError: network is unreachable")
    assert sleeps == [0.5, 1.0]


@pytest.mark.parametrize("error, status, prefix", [
    (DownloadError("ERROR: [youtube] aaaaaaaaaa1: Private video. Sign in if you've been granted access"),
     "unavailable", "Private video"),
    (DownloadError("ERROR: [youtube] aaaaaaaaaa1: Video unavailable. This video is no longer available "
                   "because the YouTube account associated with this video has been terminated."),
     "unavailable", "Video unavailable"),
    (DownloadError("ERROR: [youtube] aaaaaaaaaa1: Video unavailable. This video contains content from "
                   "SME, who has blocked it on copyright grounds"), "unavailable", "Video"),
    (DownloadError("ERROR: [youtube] aaaaaaaaaa1: Sign in to confirm your age. This video may be "
                   "inappropriate for some users."), "unavailable", "Sign in to confirm your age"),
    (GeoRestrictedError("The uploader has not made this video available in your country"),
     "unavailable", "The uploader"),
    (DownloadError("ERROR: [youtube] aaaaaaaaaa1: Sign in to confirm you're not a bot."), "failed",
     "blocked: Sign in"),
    (DownloadError("ERROR: unable to download video data: HTTP Error 429: Too Many Requests"),
     "failed", "blocked: unable"),
    (DownloadError("ERROR: Requested format is not available."), "failed", "download: Requested"),
    (ExtractorError("Unable to download webpage: <urlopen error timed out>"), "failed", "network:"),
    (TimeoutError("timed out"), "failed", "network: TimeoutError"),
    (ValueError("a bug in the downloader"), "failed", "error: ValueError"),
])
def test_errors_are_classified(error, status, prefix):
    outcome = classify(error)
    assert outcome.status == status and outcome.reason.startswith(prefix)


def test_a_damaged_final_file_is_downloaded_again(tmp_path, clips):
    final = tmp_path / "videos" / "aaaaaaaaaa1.mp4"
    final.parent.mkdir()
    final.write_bytes(b"half a file")
    rec = Recorder(clips["good"])
    row = download_one(_entry("aaaaaaaaaa1"), tmp_path, PARAMS, rec)
    assert row.status == "ok" and rec.calls == ["aaaaaaaaaa1"]


class Interrupting(Recorder):
    """Writes half a file on call ``at`` and then raises KeyboardInterrupt (a user's ^C)."""

    def __init__(self, src, at):
        super().__init__(src)
        self.at = at

    def __call__(self, video_id, tmp):
        super().__call__(video_id, tmp)
        if len(self.calls) == self.at:
            tmp.write_bytes(tmp.read_bytes()[:500])
            raise KeyboardInterrupt


def test_resume_after_an_interruption_skips_finished_videos(tmp_path, clips):
    entries = [_entry(f"aaaaaaaaaa{i}") for i in range(1, 6)]
    with pytest.raises(KeyboardInterrupt):
        download_all(entries, tmp_path, PARAMS, Interrupting(clips["good"], at=3), progress=False)
    finals = sorted(p.name for p in (tmp_path / "videos").iterdir())
    assert finals == ["aaaaaaaaaa1.mp4", "aaaaaaaaaa2.mp4"]  # no partial file, no temporaries
    rec = Recorder(clips["good"])
    rows = download_all(entries, tmp_path, PARAMS, rec, progress=False)
    assert rec.calls == ["aaaaaaaaaa3", "aaaaaaaaaa4", "aaaaaaaaaa5"]
    assert [r.status for r in rows] == ["ok"] * 5
    assert all(r.duration > 0.9 for r in rows)


def test_stale_temporaries_are_cleaned(tmp_path, clips):
    stale = tmp_path / "videos" / f"{TMP_MARK}aaaaaaaaaa1-ytdlp-xyz"
    stale.mkdir(parents=True)
    (stale / "aaaaaaaaaa1.f137.mp4.part").write_bytes(b"x")
    download_all([_entry("aaaaaaaaaa1")], tmp_path, PARAMS, Recorder(clips["good"]), progress=False)
    assert _leftovers(tmp_path) == []


def test_every_input_id_gets_one_row_in_input_order(tmp_path, clips):
    ids = ["aaaaaaaaaa1", "-aaaaaaaaa2", "aaaaaaaaaa3", "dddddddddd1"]
    entries = [_entry(i) for i in ids[:3]] + [_entry(ids[3], "duet")]
    script = [DownloadError("ERROR: Video unavailable"), "garbage", "garbage", "garbage"]
    rows = download_all(entries, tmp_path, PARAMS.__class__(retries=2, backoff=0.0),
                        Recorder(clips["good"], ["copy"] + script), progress=False)
    assert [r.video_id for r in rows] == ids
    assert [r.status for r in rows] == ["ok", "unavailable", "failed", "ok"]
    assert rows[3].kind == "duet" and rows[3].classes == ("flute", "violin")


def test_parallel_workers_account_for_every_id(tmp_path, clips):
    entries = [_entry(f"bbbbbbbbbb{i}") for i in range(4)]
    downloader = functools.partial(copy_from, clips["good"])
    rows = download_all(entries, tmp_path, PARAMS, downloader, jobs=2, progress=False)
    assert [r.video_id for r in rows] == [e.video_id for e in entries]
    assert {r.status for r in rows} == {"ok"}


def test_a_crash_outside_the_download_becomes_a_failed_row(tmp_path, clips, monkeypatch):
    """Without ffprobe on PATH every check fails: each video gets a failed row, none raises."""
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    rows = download_all([_entry("aaaaaaaaaa1"), _entry("aaaaaaaaaa2")], tmp_path, PARAMS,
                        Recorder(clips["good"]), progress=False)
    assert [r.status for r in rows] == ["failed", "failed"]
    assert all(r.reason.startswith("error: FileNotFoundError") for r in rows)
    assert not any((tmp_path / "videos").glob("*.mp4"))


def test_duplicate_ids_are_refused_before_any_work(tmp_path, clips):
    rec = Recorder(clips["good"])
    with pytest.raises(ValueError, match="'aaaaaaaaaa1' is listed twice"):
        download_all([_entry("aaaaaaaaaa1")] * 2, tmp_path, PARAMS, rec, progress=False)
    assert rec.calls == []


def test_malformed_ids_are_refused_before_any_work(tmp_path, clips):
    rec = Recorder(clips["good"])
    with pytest.raises(ValueError, match="malformed video ID '../../etc/x'"):
        download_all([_entry("aaaaaaaaaa1"), _entry("../../etc/x")], tmp_path, PARAMS, rec,
                     progress=False)
    assert rec.calls == []


def _fmt(fid, ext, height=None, vcodec="none", acodec="none"):
    return dict(format_id=fid, ext=ext, height=height, vcodec=vcodec, acodec=acodec, url="u",
                protocol="https")


FORMATS = [_fmt("18", "mp4", 360, "avc1", "mp4a"), _fmt("137", "mp4", 1080, "avc1"),
           _fmt("134", "mp4", 360, "avc1"), _fmt("243", "webm", 360, "vp9"),
           _fmt("140", "m4a", acodec="mp4a")]


@pytest.mark.parametrize("available, chosen", [
    (FORMATS, "134+140"),                  # best mp4 video within the cap, plus audio
    ([FORMATS[0], FORMATS[1]], "18"),      # a capped file with sound beats a bigger one
    ([FORMATS[1], FORMATS[4]], "137+140"),  # nothing within the cap: the smallest there is
])
def test_ytdlp_format_is_capped_and_has_audio(available, chosen):
    opts = download.ytdlp_options("/x/%(id)s.%(ext)s", 360, 30.0, 4)
    select = yt_dlp.YoutubeDL(opts).build_format_selector(opts["format"])
    picked = list(select({"formats": available, "has_merged_format": True,
                          "incomplete_formats": False}))
    assert picked[0]["format_id"] == chosen


def test_ytdlp_options_merge_to_mp4_without_playlists():
    opts = download.ytdlp_options("/x/%(ext)s", 360, 30.0, 4)
    assert (opts["merge_output_format"], opts["noplaylist"], opts["socket_timeout"],
            opts["retries"]) == ("mp4", True, 30.0, 4)
    assert "cookiefile" not in opts
    assert download.ytdlp_options("/x/%(ext)s", 360, 30.0, 4, "c.txt")["cookiefile"] == "c.txt"


def test_default_downloader_leaves_nothing_behind_when_offline(tmp_path):
    """The real yt-dlp path with no network: a failed row, no files; skipped if online."""
    try:
        socket.getaddrinfo("www.youtube.com", 443)
        socket_ok = True
    except OSError:
        socket_ok = False
    if socket_ok:
        pytest.skip("network available: this test must not contact YouTube")
    row = download_one(_entry("aaaaaaaaaa1"), tmp_path,
                       DownloadParams(lists="unused", retries=0, timeout=2.0))
    assert row.status == "failed" and row.reason.startswith(("network:", "download:"))
    assert list((tmp_path / "videos").iterdir()) == []


def _closed_port() -> int:
    """A local TCP port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_unreachable_host_fails_fast_with_its_address(monkeypatch):
    for v in download.PROXY_VARIABLES:
        monkeypatch.delenv(v, raising=False)
    port = _closed_port()
    with pytest.raises(download.Unreachable, match=f"127.0.0.1:{port}"):
        download.check_reachable("127.0.0.1", port, timeout=2.0)


def test_a_reachable_host_passes_the_check():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        download.check_reachable("127.0.0.1", server.getsockname()[1], timeout=2.0)


def test_offline_real_downloads_stop_before_any_video(tmp_path, monkeypatch):
    """The real yt-dlp path with no route: one clear error, not a retry loop per ID."""
    for v in download.PROXY_VARIABLES:
        monkeypatch.delenv(v, raising=False)
    monkeypatch.setattr(download, "YOUTUBE", ("127.0.0.1", _closed_port()))
    with pytest.raises(download.Unreachable, match="nothing was downloaded"):
        download.download_all([_entry("aaaaaaaaaa1"), _entry("aaaaaaaaaa2")], tmp_path,
                              DownloadParams(lists="unused", retries=3, timeout=2.0),
                              backend="local", jobs=1)


def test_an_injected_downloader_needs_no_network_check(tmp_path, clips, monkeypatch):
    monkeypatch.setattr(download, "check_reachable",
                        lambda *a, **kw: pytest.fail("the check must not run"))
    rows = download.download_all([_entry("aaaaaaaaaa1")], tmp_path,
                                 DownloadParams(lists="unused", retries=0),
                                 downloader=functools.partial(copy_from, clips["good"]), backend="local", jobs=1)
    assert rows[0].status == "ok"
