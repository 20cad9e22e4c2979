"""Addon scripts (`-s`) in a running `waylay dump`: hooks through real curl requests, the
addon's life (load, running, done on SIGTERM), `--set`, reloading while serving, and the
errors a user sees. The scripts write what they saw to a file, so the tests read the proof
from outside the process; none relies on a hook changing the flow.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from textwrap import dedent

import pytest

from waylay.memory import YOUNG_THRESHOLD

from .clients import curl as run_curl
from .clients import httpx_client
from .origin import Origin
from .waylay_process import RunWaylay, WaylayProcess, clean_env

# Each script appends lines to the file its `record` option names.
RECORDER = """\
from pathlib import Path
from urllib.parse import urlsplit

def load(loader):
    loader.add_option("record", str, "", "the file to append lines to")
    loader.add_option("label", str, "{label}", "the word each line starts with")
    global options
    options = loader.options

def note(text):
    with Path(options.record).open("a") as out:
        out.write(f"{{options.label}} {{text}}\\n")

def running():
    note("running")

def done():
    note("done")

def response(flow):
    url = urlsplit(flow.request.url)
    target = url.path + (f"?{{url.query}}" if url.query else "")
    note(f"response {{target}} {{flow.response.status_code}}")
"""


def write(path: Path, text: str) -> Path:
    """Replace the file at once, as an editor saving it does."""
    temporary = path.with_suffix(".tmp")
    temporary.write_text(dedent(text))
    os.replace(temporary, path)
    return path


def wait_for(check: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


StartScripted = Callable[..., WaylayProcess]


@pytest.fixture
def start_scripted(hosts_file: Path, confdir: Path, home: Path) -> Iterator[StartScripted]:
    """`waylay dump ARGS` as start_waylay starts it; these tests expect tracebacks on
    stderr (a failing hook, a failed reload), so only the exit status is checked at the end."""
    started: list[WaylayProcess] = []

    def start(*args: str) -> WaylayProcess:
        argv = ["dump", "--listen", "127.0.0.1:0", "--hosts", str(hosts_file), "--hosts-only"]
        argv += ["--confdir", str(confdir), *args]
        process = WaylayProcess(argv, clean_env(home))
        started.append(process)
        process.wait_ready()
        return process

    yield start
    statuses = [process.stop() for process in started]
    assert statuses == [0] * len(started)


def get(proxy: WaylayProcess, origin: Origin, home: Path, path: str) -> bytes:
    result = run_curl(proxy.url, origin.url(path), home=home)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_hooks_run_on_real_requests_and_done_on_sigterm(
    start_scripted: StartScripted, origin: Origin, home: Path, tmp_path: Path
) -> None:
    record = tmp_path / "record.txt"
    script = write(tmp_path / "recorder.py", RECORDER.format(label="v1"))
    proxy = start_scripted("-s", str(script), "--set", f"record={record}")
    # running() comes once the proxy listens, so it may follow the ready line by a moment.
    assert wait_for(lambda: lines(record) == ["v1 running"]), lines(record)
    get(proxy, origin, home, "/echo/one")
    get(proxy, origin, home, "/status/404?x=1")
    assert wait_for(lambda: len(lines(record)) == 3), lines(record)
    assert proxy.stop(signal.SIGTERM) == 0
    assert lines(record) == [
        "v1 running",
        "v1 response /echo/one 200",
        "v1 response /status/404?x=1 404",
        "v1 done",
    ]
    # The dumper is still first in line and prints its own lines.
    assert [line.split()[3] for line in proxy.stdout_lines()] == [
        origin.url("/echo/one"),
        origin.url("/status/404?x=1"),
    ]


def test_set_gives_the_addon_its_option_value(
    start_scripted: StartScripted, origin: Origin, home: Path, tmp_path: Path
) -> None:
    record = tmp_path / "record.txt"
    script = write(tmp_path / "recorder.py", RECORDER.format(label="default"))
    proxy = start_scripted("-s", str(script), "--set", f"record={record}", "--set", "label=set")
    get(proxy, origin, home, "/echo/x")
    assert wait_for(lambda: "set response /echo/x 200" in lines(record)), lines(record)


def test_addons_list_and_a_helper_module_next_to_the_script(
    start_scripted: StartScripted, origin: Origin, home: Path, tmp_path: Path
) -> None:
    record = tmp_path / "record.txt"
    write(tmp_path / "waylay_e2e_words.py", "WORD = 'helped'\n")
    script = write(
        tmp_path / "classy.py",
        f"""\
        import waylay_e2e_words

        class Counter:
            def __init__(self):
                self.count = 0

            def response(self, flow):
                self.count += 1
                with open({str(record)!r}, "a") as out:
                    out.write(f"{{waylay_e2e_words.WORD}} {{self.count}}\\n")

        addons = [Counter()]
        """,
    )
    proxy = start_scripted("-s", str(script))
    get(proxy, origin, home, "/echo/a")
    get(proxy, origin, home, "/echo/b")
    assert wait_for(lambda: lines(record) == ["helped 1", "helped 2"]), lines(record)


def test_an_edited_script_is_reloaded_and_a_broken_edit_keeps_the_old_one(
    start_scripted: StartScripted, origin: Origin, home: Path, tmp_path: Path
) -> None:
    record = tmp_path / "record.txt"
    script = write(tmp_path / "live.py", RECORDER.format(label="v1"))
    proxy = start_scripted("-s", str(script), "--set", f"record={record}")
    get(proxy, origin, home, "/echo/first")
    assert wait_for(lambda: "v1 response /echo/first 200" in lines(record)), lines(record)

    # A syntax error: logged with where it is, and v1 goes on serving.
    write(script, "def response(flow):\n    return (\n")
    assert proxy.wait_for_stderr("not reloaded, the previous version keeps running")
    stderr = proxy.stderr_text()
    assert f"script {script}, line 2: SyntaxError" in stderr
    assert f'File "{script}", line 2' in stderr
    get(proxy, origin, home, "/echo/still-v1")
    assert wait_for(lambda: "v1 response /echo/still-v1 200" in lines(record)), lines(record)

    # A good edit: v1 is done, v2 loaded (the --set value kept) and running, and serving.
    write(script, RECORDER.format(label="v2"))
    assert proxy.wait_for_stderr(f"script {script} reloaded"), proxy.stderr_text()
    get(proxy, origin, home, "/echo/second")
    assert wait_for(lambda: "v2 response /echo/second 200" in lines(record)), lines(record)
    assert lines(record) == [
        "v1 running",
        "v1 response /echo/first 200",
        "v1 response /echo/still-v1 200",
        "v1 done",
        "v2 running",
        "v2 response /echo/second 200",
    ]


def test_an_exception_in_a_hook_is_logged_with_the_script_line_and_the_flow_goes_on(
    start_scripted: StartScripted, origin: Origin, home: Path, tmp_path: Path
) -> None:
    script = write(
        tmp_path / "buggy.py",
        """\
        def response(flow):
            raise ValueError("addon bug")
        """,
    )
    proxy = start_scripted("-s", str(script))
    body = get(proxy, origin, home, "/echo/bug")
    assert b'"target": "/echo/bug"' in body
    assert proxy.wait_for_stderr(f"addon hook response in {script} failed")
    stderr = proxy.stderr_text()
    assert f'File "{script}", line 2, in response' in stderr
    assert "ValueError: addon bug" in stderr
    # And the next request is served as well.
    assert b'"target": "/echo/again"' in get(proxy, origin, home, "/echo/again")


def test_help_lists_the_scripts_options(run_waylay: RunWaylay, tmp_path: Path) -> None:
    script = write(tmp_path / "recorder.py", RECORDER.format(label="v1"))
    result = run_waylay("dump", "-s", str(script), "--help")
    assert result.returncode == 0, result.stderr
    assert f"options of {script}:" in result.stdout
    assert "--set record=TEXT" in result.stdout and "the file to append lines to" in result.stdout
    assert "--set label=TEXT" in result.stdout and "default 'v1'" in result.stdout
    # Loaded to be described, never started.
    assert "v1 running" not in result.stdout


@pytest.mark.parametrize(
    ("script_text", "argv", "message"),
    [
        (RECORDER.format(label="x"), ["--set", "lable=y"], "--set lable=y: no such option"),
        (RECORDER.format(label="x"), ["--set", "record"], "--set record: expected --set record="),
        ("def response(flow):\n    return (\n", [], "{script}, line 2: SyntaxError"),
        ("import waylay_no_such_module\n", [], "{script}, line 1: ModuleNotFoundError"),
        ("def respnse(flow): ...\n", [], "{script}: defines no addon"),
        ("def load(loader):\n    loader.add_option('quiet', bool, False, '')\n", [],
         "option 'quiet' of {script} clashes with waylay's own option --quiet"),
    ],
)  # fmt: skip
def test_a_bad_script_or_setting_at_start_is_one_line_and_status_2(
    run_waylay: RunWaylay,
    confdir: Path,
    tmp_path: Path,
    script_text: str,
    argv: list[str],
    message: str,
) -> None:
    script = write(tmp_path / "bad.py", script_text)
    result = run_waylay(
        "dump", "--listen", "127.0.0.1:0", "--confdir", str(confdir), "-s", str(script), *argv
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("waylay: error: ")
    assert message.format(script=script) in result.stderr
    assert "waylay listening" not in result.stderr


def test_a_scripts_logging_is_shown_and_named(
    start_scripted: StartScripted, origin: Origin, home: Path, tmp_path: Path
) -> None:
    script = write(
        tmp_path / "talks.py",
        """\
        import logging

        def response(flow):
            flow.metadata["seen"] = flow.request.path
            logging.info("saw %s", flow.metadata["seen"])
            logging.getLogger("talks").warning("named")
            logging.debug("not shown")
        """,
    )
    proxy = start_scripted("-s", str(script))
    get(proxy, origin, home, "/echo/said")
    assert wait_for(lambda: "talks: named" in proxy.stderr_text().splitlines())
    said = proxy.stderr_text().splitlines()
    assert "addon: saw /echo/said" in said
    assert not any("not shown" in line for line in said)


def test_the_serving_process_has_its_memory_settled(
    start_scripted: StartScripted, tmp_path: Path
) -> None:
    # memory.py: once serving, start-up's objects are frozen and young collections are rare,
    # and a socket read's 256 KiB buffer comes from the heap, not from an mmap of its own.
    # An addon's `running` hook is the probe: it runs in the proxy, after it started.
    record = tmp_path / "memory.txt"
    script = write(
        tmp_path / "probe.py",
        f"""\
        import ctypes, gc, socket
        from pathlib import Path

        class MallInfo2(ctypes.Structure):
            _fields_ = [(name, ctypes.c_size_t) for name in (
                "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
                "uordblks", "fordblks", "keepcost")]

        def running():
            libc = ctypes.CDLL(None)
            libc.mallinfo2.restype = MallInfo2
            a, b = socket.socketpair()
            before = libc.mallinfo2().hblks
            held = []
            for _ in range(10):
                a.send(b"x" * 1024)
                held.append(b.recv(256 * 1024))
            mmapped = libc.mallinfo2().hblks - before
            Path({str(record)!r}).write_text(
                f"{{gc.get_threshold()[0]}} {{gc.get_freeze_count()}} {{mmapped}}")
        """,
    )
    start_scripted("-s", str(script))
    assert wait_for(record.exists)
    threshold, frozen, mmapped = map(int, record.read_text().split())
    assert threshold == YOUNG_THRESHOLD
    assert frozen > 10_000  # every module start-up imported
    assert mmapped == 0


@pytest.mark.parametrize("kind", ["async", "plain"])
def test_passive_response_hooks_see_every_keep_alive_request_in_order(
    start_scripted: StartScripted, origin: Origin, tmp_path: Path, kind: str
) -> None:
    # Requests on a kept-alive connection are served on callbacks when nothing needs the
    # connection's coroutine (connection.py, "the fast lane"); a passive hook that is a
    # coroutine hands each flow back to it. Either way every flow reaches the hook, in order,
    # and the next request is not answered before the previous flow's hook has finished.
    record = tmp_path / "record.txt"
    prefix = "async " if kind == "async" else ""
    pause = "await asyncio.sleep(0.02)" if kind == "async" else "pass"
    script = write(
        tmp_path / "watcher.py",
        f"""\
        import asyncio
        from waylay import passive

        @passive
        {prefix}def response(flow):
            {pause}
            with open({str(record)!r}, "a") as out:
                out.write(f"{{flow.request.path}} {{flow.response.status_code}}\\n")
        """,
    )
    proxy = start_scripted("-s", str(script))
    paths = [f"/echo/{n}" for n in range(8)]
    expected = [f"{path} 200" for path in paths]
    with httpx_client(proxy.url) as client:
        for n, path in enumerate(paths):
            assert client.get(origin.url(path)).status_code == 200
            # The previous flow's hook finished before this request went to the server.
            assert lines(record)[:n] == expected[:n]
    assert wait_for(lambda: lines(record) == expected), lines(record)
