"""ID lists: parsing, validation errors that name file and line, the URL source, the writer,
and the real MUSIC / MUSIC21 lists."""
from __future__ import annotations

import functools
import http.server
import json
import socket
import threading
from pathlib import Path

import pytest

from pipeline.data import lists
from pipeline.data.lists import DUET_FILE, ListError, load_lists, read_list, write_list

DATA = Path(__file__).parent / "data" / "lists"


def _load(location, source: str = "music21", **kw):
    return load_lists(source, str(location), **kw)


def _write(tmp_path: Path, text: str, name: str = "MUSIC21_solo_videos.json") -> Path:
    (tmp_path / name).write_text(text)
    return tmp_path / name


def _line_of(path: Path, needle: str) -> int:
    return next(n for n, line in enumerate(path.read_text().splitlines(), 1) if needle in line)


def test_fixture_lists_parse_with_official_class_spellings():
    entries = _load(DATA, "music21")
    assert len(entries) == 8 + 3
    by_id = {e.video_id: e for e in entries}
    assert by_id["bbbbbbbbbb1"].classes == ("acoustic_guitar",)
    assert by_id["dddddddddd1"].classes == ("acoustic_guitar", "violin")
    assert by_id["dddddddddd1"].kind == "duet" and by_id["aaaaaaaaaa1"].kind == "solo"
    assert by_id["-aaaaaaaaa3"].classes == ("violin",)


def test_entries_carry_the_line_of_their_id():
    path = DATA / "MUSIC21_solo_videos.json"
    for e in read_list(str(DATA), path.name, "solo"):
        assert e.list_file == str(path)
        assert e.line == _line_of(path, f'"{e.video_id}"')


def test_duets_are_left_out_when_not_asked_for():
    entries = _load(DATA, "music", duets=False)
    assert [e.video_id for e in entries] == ["aaaaaaaaaa1", "aaaaaaaaaa2", "bbbbbbbbbb1"]


def test_limit_per_class_keeps_the_first_ids_of_each_key():
    entries = _load(DATA, "music21", limit_per_class=1)
    assert [e.video_id for e in entries] == ["aaaaaaaaaa1", "bbbbbbbbbb1", "cccccccc_c1",
                                             "dddddddddd1", "eeeeeeeeee1"]


def test_malformed_id_names_file_and_line(tmp_path):
    text = (DATA / "MUSIC21_solo_videos.json").read_text().replace("bbbbbbbbbb2", "bbbbbbbbb$2")
    path = _write(tmp_path, text)
    with pytest.raises(ListError, match=rf"^{path}:{_line_of(path, 'bbbbbbbbb$2')}: malformed "):
        read_list(str(tmp_path), path.name, "solo")


def test_wrong_length_id_is_malformed(tmp_path):
    path = _write(tmp_path, '{"videos": {"violin": [\n"aaaaaaaaaa1",\n"short"\n]}}')
    with pytest.raises(ListError, match=rf"^{path}:3: malformed video ID 'short'"):
        read_list(str(tmp_path), path.name, "solo")


def test_bad_json_names_file_and_line(tmp_path):
    path = _write(tmp_path, '{"videos": {"violin": [\n"aaaaaaaaaa1"\n"aaaaaaaaaa2"]}}')
    with pytest.raises(ListError, match=rf"^{path}:3: not valid JSON"):
        read_list(str(tmp_path), path.name, "solo")


def test_missing_file_names_the_file(tmp_path):
    with pytest.raises(ListError, match=rf"^{tmp_path / DUET_FILE}: cannot read list"):
        read_list(str(tmp_path), DUET_FILE, "duet")


def test_non_utf8_file_names_file_and_line(tmp_path):
    path = tmp_path / "x.json"
    path.write_bytes(b'{"videos":\n {"violin": ["\xff"]}}')
    with pytest.raises(ListError, match=rf"^{path}:2: not UTF-8"):
        read_list(str(tmp_path), path.name, "solo")


def test_unknown_class_names_the_line_of_its_key(tmp_path):
    path = _write(tmp_path, '{"videos": {\n"violin": ["aaaaaaaaaa1"],\n"kazoo": ["aaaaaaaaaa2"]}}')
    with pytest.raises(ListError, match=rf"^{path}:3: unknown instrument class 'kazoo'"):
        read_list(str(tmp_path), path.name, "solo")


def test_duet_key_must_name_two_classes(tmp_path):
    path = _write(tmp_path, '{"videos": {\n"violin": ["aaaaaaaaaa1"]}}', DUET_FILE)
    with pytest.raises(ListError, match=rf"^{path}:2: duet key 'violin' must name exactly two"):
        read_list(str(tmp_path), DUET_FILE, "duet")


def test_non_string_id_is_an_error(tmp_path):
    path = _write(tmp_path, '{"videos": {\n"violin": [\n"aaaaaaaaaa1", 12345]}}')
    with pytest.raises(ListError, match=rf"^{path}:3: 'violin': expected an ID string, got 12345"):
        read_list(str(tmp_path), path.name, "solo")


def test_missing_videos_object_is_an_error(tmp_path):
    path = _write(tmp_path, '{"version": 1.0, "video": {}}')
    with pytest.raises(ListError, match=rf"^{path}:1: expected an object"):
        read_list(str(tmp_path), path.name, "solo")


def test_id_in_two_classes_names_both_lines(tmp_path):
    path = _write(tmp_path, '{"videos": {\n"violin": ["aaaaaaaaaa1"],\n"cello": ["aaaaaaaaaa1"]}}')
    with pytest.raises(ListError, match=rf"^{path}:3: .*also listed at {path}:2 \(violin\)"):
        read_list(str(tmp_path), path.name, "solo")


def test_repeated_key_is_an_error(tmp_path):
    path = _write(tmp_path, '{"videos": {\n"violin": ["aaaaaaaaaa1"],\n"violin": ["aaaaaaaaaa2"]}}')
    with pytest.raises(ListError, match=rf"^{path}:3: key 'violin' appears twice"):
        read_list(str(tmp_path), path.name, "solo")


def test_id_in_a_solo_and_a_duet_list_is_an_error(tmp_path):
    _write(tmp_path, '{"videos": {"violin": ["aaaaaaaaaa1"]}}')
    _write(tmp_path, '{"videos": {"flute violin": ["aaaaaaaaaa1"]}}', DUET_FILE)
    with pytest.raises(ListError, match="also listed at"):
        _load(tmp_path, "music21")


def test_writer_round_trips(tmp_path):
    entries = _load(DATA, "music21")
    solos = [e for e in entries if e.kind == "solo"]
    write_list(tmp_path / "out.json", solos, version=2.0)
    back = read_list(str(tmp_path), "out.json", "solo")
    assert [(e.video_id, e.classes) for e in back] == [(e.video_id, e.classes) for e in solos]
    assert json.loads((tmp_path / "out.json").read_text())["version"] == 2.0


def test_list_files_are_named_like_the_canonical_ones(tmp_path):
    entries = _load(DATA, "music21", limit_per_class=1)
    for name, obj in lists.as_list_files(entries, "music21").items():
        (tmp_path / name).write_text(json.dumps(obj))
    again = _load(tmp_path, "music21")
    assert [(e.video_id, e.classes, e.kind) for e in again] == \
           [(e.video_id, e.classes, e.kind) for e in entries]


@pytest.fixture()
def http_lists():
    """A local HTTP server serving tests/data/lists (a stand-in for the public URL base)."""
    handler = functools.partial(_QuietHandler, directory=str(DATA))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def test_lists_load_from_a_url_base(http_lists):
    from_url = _load(http_lists, "music21", timeout=5.0)
    from_dir = _load(DATA, "music21")
    assert [(e.video_id, e.classes, e.line) for e in from_url] == \
           [(e.video_id, e.classes, e.line) for e in from_dir]
    assert from_url[0].list_file == f"{http_lists}/MUSIC21_solo_videos.json"


def test_missing_url_names_the_url(http_lists):
    with pytest.raises(ListError, match=rf"^{http_lists}/nothing.json: cannot download list"):
        read_list(http_lists, "nothing.json", "solo", timeout=5.0)


def test_unreachable_url_names_the_url():
    with socket.socket() as s:  # a port with nobody listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(ListError, match=rf"^http://127.0.0.1:{port}/x.json: cannot download"):
        read_list(f"http://127.0.0.1:{port}", "x.json", "solo", timeout=5.0)


# ------------------------------------------------------------------------------ the real lists


def test_real_music21_lists_have_the_reference_counts(music_lists):
    entries = _load(music_lists, "music21")
    solos = [e for e in entries if e.kind == "solo"]
    duets = [e for e in entries if e.kind == "duet"]
    assert (len(solos), len(duets)) == (1164, 149)
    assert len({e.classes[0] for e in solos}) == 21
    assert all(len(e.classes) == 2 for e in duets)


def test_real_music_list_is_the_11_class_subset(music_lists):
    music21 = {e.video_id: e.classes for e in _load(music_lists, "music21")}
    music = _load(music_lists, "music", duets=False)
    assert len(music) == 536
    assert len({e.classes for e in music}) == 11
    assert all(music21[e.video_id] == e.classes for e in music)
