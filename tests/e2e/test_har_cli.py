"""`waylay har import` and `waylay har export` as processes, on real exports and real flows.

The real exports of tests/data/har go in with `har import`, are listed by `waylay flows`
and come out again with `har export`; a flow recorded by a real proxy run comes out with its
bodies; an imported HAR answers requests through --server-replay; and bad input is one line,
status 2, and leaves every file as it was.
"""

from __future__ import annotations

import base64
import json
import os
import sqlite3
import stat
from pathlib import Path
from typing import Any

import pytest

from tests.testdata import HAR_EXPORTS

from .clients import curl as run_curl
from .origin import Origin, pattern_bytes
from .test_save import _wait_for_flows
from .waylay_process import RunWaylay, StartWaylay

EXPORTS = HAR_EXPORTS


def export_names() -> list[str]:
    return sorted(path.name for path in EXPORTS.glob("*.har")) or ["missing-testdata.har"]


def _one_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one line on stderr, got:\n{stderr}"
    assert "Traceback" not in stderr
    return lines[0]


def _entries(path: Path) -> list[dict[str, Any]]:
    document = json.loads(path.read_bytes().decode("utf-8-sig"))
    return document["log"]["entries"]  # type: ignore[no-any-return]


def _content_bytes(content: dict[str, Any]) -> bytes | None:
    if "text" not in content:
        return None
    if content.get("encoding") == "base64":
        return base64.b64decode(content["text"])
    return content["text"].encode()  # type: ignore[no-any-return]


@pytest.mark.parametrize("name", export_names())
def test_a_real_export_goes_in_is_listed_and_comes_out(
    run_waylay: RunWaylay, tmp_path: Path, name: str
) -> None:
    source = EXPORTS / name
    original = _entries(source)
    database = tmp_path / "flows.db"
    imported = run_waylay("har", "import", str(source), "-o", str(database))
    assert imported.returncode == 0, imported.stderr
    assert _one_line(imported.stderr) == f"waylay: imported {len(original)} flows into {database}"
    assert stat.S_IMODE(os.stat(database).st_mode) == 0o600

    listed = run_waylay("flows", str(database), "--json")
    assert listed.returncode == 0, listed.stderr
    flows = [json.loads(line) for line in listed.stdout.splitlines()]
    assert [(f["method"], f["url"]) for f in flows] == [
        (e["request"]["method"], e["request"]["url"]) for e in original
    ]
    assert [f["status"] for f in flows] == [e["response"]["status"] or None for e in original]

    out = tmp_path / "out.har"
    exported = run_waylay("har", "export", str(database), "-o", str(out))
    assert exported.returncode == 0, exported.stderr
    assert _one_line(exported.stderr) == f"waylay: exported {len(original)} flows to {out}"
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o600
    again = _entries(out)
    assert [(e["request"]["method"], e["request"]["url"], e["response"]["status"])
            for e in again] == [
        (e["request"]["method"], e["request"]["url"], e["response"]["status"]) for e in original
    ]  # fmt: skip
    for before, after in zip(original, again, strict=True):
        assert _content_bytes(after["response"]["content"]) == _content_bytes(
            before["response"]["content"]
        )


def test_export_with_a_filter_writes_the_matching_flows(
    run_waylay: RunWaylay, tmp_path: Path
) -> None:
    database = tmp_path / "flows.db"
    assert run_waylay("har", "import", str(EXPORTS / "chrome.har"), "-o",
                      str(database)).returncode == 0  # fmt: skip
    out = tmp_path / "google.har"
    result = run_waylay("har", "export", str(database), "-o", str(out), "--filter",
                        "~d google & !~q")  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert _one_line(result.stderr) == f"waylay: exported 1 flows to {out}"
    (entry,) = _entries(out)
    assert entry["request"]["url"].endswith("googlelogo_light_color_272x92dp.png")

    bad = run_waylay("har", "export", str(database), "-o", str(out), "--filter", "~c abc")
    assert bad.returncode == 2
    line = _one_line(bad.stderr)
    assert line.startswith("waylay: error: --filter '~c abc': ") and "column 4" in line
    assert _entries(out) == [entry]  # the earlier export, untouched


def test_importing_twice_appends(run_waylay: RunWaylay, tmp_path: Path) -> None:
    database = tmp_path / "flows.db"
    for _ in range(2):
        result = run_waylay("har", "import", str(EXPORTS / "chrome.har"), "-o", str(database))
        assert result.returncode == 0, result.stderr
    listed = run_waylay("flows", str(database), "--json")
    assert [json.loads(line)["id"] for line in listed.stdout.splitlines()] == [1, 4, 2, 5, 3, 6]


def test_a_flow_recorded_by_the_proxy_exports_with_its_bodies(
    start_waylay: StartWaylay,
    origin: Origin,
    run_waylay: RunWaylay,
    home: Path,
    tmp_path: Path,
) -> None:
    database = tmp_path / "flows.db"
    proxy = start_waylay("--save", str(database))
    url = origin.url("/echo/posted?x=1&y=two")
    json_type = "Content-Type: application/json"
    posted = run_curl(proxy.url, "-H", json_type, "--data-binary", '{"hello": "wörld"}', url,
                      home=home)  # fmt: skip
    assert posted.returncode == 0, posted.stderr
    binary = run_curl(proxy.url, origin.url("/bytes/70000"), home=home)
    assert binary.stdout == pattern_bytes(70000)
    _wait_for_flows(database, 2)
    out = tmp_path / "recorded.har"
    result = run_waylay("har", "export", str(database), "-o", str(out))  # while it runs
    assert result.returncode == 0, result.stderr

    echo, download = _entries(out)
    request = echo["request"]
    assert (request["method"], request["url"]) == ("POST", url)
    assert request["httpVersion"] == "HTTP/1.1"
    assert {"name": "Content-Type", "value": "application/json"} in request["headers"]
    assert request["postData"] == {"mimeType": "application/json", "text": '{"hello": "wörld"}'}
    assert request["queryString"] == [{"name": "x", "value": "1"}, {"name": "y", "value": "two"}]
    assert echo["response"]["status"] == 200
    assert _content_bytes(echo["response"]["content"]) == posted.stdout
    assert echo["serverIPAddress"] == "127.0.0.1"
    assert echo["_waylay_server"] == ["127.0.0.1", origin.port]
    assert echo["_waylay_client"][0] == "127.0.0.1"
    assert 0 <= echo["time"] < 10_000
    timings = echo["timings"]
    assert timings["send"] + timings["wait"] + timings["receive"] == pytest.approx(
        echo["time"], abs=0.01
    )

    content = download["response"]["content"]
    assert content["encoding"] == "base64" and content["size"] == 70000
    assert base64.b64decode(content["text"]) == binary.stdout
    assert content["mimeType"] == "application/octet-stream"


def test_an_imported_har_answers_through_server_replay(
    start_waylay: StartWaylay, run_waylay: RunWaylay, home: Path, tmp_path: Path
) -> None:
    # As browsers export it: the body decoded, its Content-Encoding field still there.
    url = "http://origin.example.test:9/page?lang=en"
    page_text = "<p>hé, replayed</p>"
    entry = {
        "startedDateTime": "2024-05-01T10:00:00.000+02:00",
        "time": 12.5,
        "request": {"method": "GET", "url": url, "httpVersion": "http/2.0",
                    "headers": [{"name": ":authority", "value": "origin.example.test:9"},
                                {"name": "accept", "value": "text/html"}]},
        "response": {"status": 200, "statusText": "", "httpVersion": "http/2.0",
                     "headers": [{"name": "content-type", "value": "text/html; charset=utf-8"},
                                 {"name": "content-encoding", "value": "br"},
                                 {"name": "x-from", "value": "the har"}],
                     "content": {"size": 20, "mimeType": "text/html", "text": page_text}},
    }  # fmt: skip
    har = tmp_path / "page.har"
    har.write_text(json.dumps({"log": {"version": "1.2", "entries": [entry]}}))
    database = tmp_path / "flows.db"
    assert run_waylay("har", "import", str(har), "-o", str(database)).returncode == 0

    proxy = start_waylay("--server-replay", str(database), "--server-replay-strict")
    result = run_curl(proxy.url, "-i", url, home=home)
    head, _, page = result.stdout.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), result.stdout
    assert b"x-from: the har" in head
    assert b"content-encoding" not in head.lower()
    assert page == page_text.encode()


# --- bad input ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"{\n  \"log\": {\n    \"entries\": [}\n}", "invalid JSON (Expecting value at line 3 "
                                                      "column 17)"),
        (b'{"entries": []}', 'not a HAR file: no "log" object at the top'),
        (b'{"log": {"entries": [{"request": {"url": "https://a.example/"}}]}}',
         "entry 1: no request.method"),
        (b'{"log": {"entries": [{"startedDateTime": "2024-01-01T00:00:00Z", "request": {"method":'
         b' "GET", "url": "https://a.example/"}, "response": {"status": 200, "content": '
         b'{"text": "%%%", "encoding": "base64"}}}]}}',
         "entry 1 (GET https://a.example/): response.content.text is not valid base64 "
         "(Only base64 data is allowed)"),
    ],
)  # fmt: skip
def test_a_bad_har_is_one_line_status_2_and_changes_nothing(
    run_waylay: RunWaylay, tmp_path: Path, content: bytes, message: str
) -> None:
    har = tmp_path / "bad.har"
    har.write_bytes(content)
    existing = tmp_path / "flows.db"
    assert run_waylay("har", "import", str(EXPORTS / "insomnia.har"), "-o",
                      str(existing)).returncode == 0  # fmt: skip
    before = existing.read_bytes()
    for target in (existing, tmp_path / "new.db"):
        result = run_waylay("har", "import", str(har), "-o", str(target))
        assert result.returncode == 2
        line = _one_line(result.stderr)
        assert line.startswith(f"waylay: error: {har}: ") and line.endswith(message)
    assert existing.read_bytes() == before
    assert not (tmp_path / "new.db").exists()


def test_import_into_a_file_that_is_not_a_flow_database_leaves_it_alone(
    run_waylay: RunWaylay, tmp_path: Path
) -> None:
    other = tmp_path / "other.db"
    db = sqlite3.connect(other)
    db.execute("CREATE TABLE notes (x)")
    db.commit()
    db.close()
    before = other.read_bytes()
    result = run_waylay("har", "import", str(EXPORTS / "chrome.har"), "-o", str(other))
    assert result.returncode == 2
    assert "not a waylay flow database" in _one_line(result.stderr)
    assert other.read_bytes() == before


def test_export_of_a_bad_database_leaves_the_output_alone(
    run_waylay: RunWaylay, tmp_path: Path
) -> None:
    here = tmp_path / "files"
    here.mkdir()
    notes = here / "notes.db"
    notes.write_text("not flows\n" * 100)
    out = here / "out.har"
    out.write_text("an earlier export")
    for database in (notes, here / "missing.db"):
        result = run_waylay("har", "export", str(database), "-o", str(out))
        assert result.returncode == 2
        assert _one_line(result.stderr).startswith(f"waylay: error: {database}")
        assert out.read_text() == "an earlier export"
    assert sorted(p.name for p in here.iterdir()) == ["notes.db", "out.har"]


def test_a_missing_har_or_output_flag_is_status_2(run_waylay: RunWaylay, tmp_path: Path) -> None:
    missing = run_waylay("har", "import", str(tmp_path / "nope.har"), "-o", str(tmp_path / "f.db"))
    assert missing.returncode == 2
    assert "cannot read" in _one_line(missing.stderr) and "nope.har" in missing.stderr
    assert not (tmp_path / "f.db").exists()
    for args in (["har"], ["har", "export", "f.db"], ["har", "import", "in.har"]):
        result = run_waylay(*args)
        assert result.returncode == 2, args
        _one_line(result.stderr)
