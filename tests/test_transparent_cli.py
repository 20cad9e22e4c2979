"""``waylay transparent rules`` as a user meets it: the printed rules, and every refusal.

The command runs in this process. Nothing here may reach the machine's packet filter: PATH
holds only a fake ``iptables`` and ``ip6tables`` (a script keeping its rules in a JSON file),
so even a test that gets as far as ``--apply`` changes nothing but that file. The real
front ends are exercised in network namespaces, by tests/e2e/test_transparent_rules.py.
"""

from __future__ import annotations

import json
import os
import stat
import sys
import textwrap
from pathlib import Path

import pytest

from waylay.cli import main
from waylay.platform.iptables import FrontEnd, Gateway, RuleSet, script

# What `waylay transparent rules --gateway eth0` prints (docs/transparent.md shows it too).
GATEWAY_ETH0 = """\
# waylay transparent mode, gateway: TCP to ports 80,443 arriving on eth0 goes to waylay on port
# 8080. A REDIRECT delivers it to eth0's primary address, not to 127.0.0.1, so waylay must
# listen on that address: '*:8080' (every address, IPv4 and IPv6) does. Run it with:
#   waylay dump --mode transparent --listen '*:8080'
# The machine must forward the clients' packets (as root):
#   sysctl -w net.ipv4.ip_forward=1
#   sysctl -w net.ipv6.conf.all.forwarding=1
# To apply these rules, and to remove them:
#   waylay transparent rules --gateway eth0 --apply
#   waylay transparent rules --gateway eth0 --remove
iptables -t nat -A PREROUTING -i eth0 -p tcp -m multiport --dports 80,443 -m comment --comment waylay -j REDIRECT --to-ports 8080
ip6tables -t nat -A PREROUTING -i eth0 -p tcp -m multiport --dports 80,443 -m comment --comment waylay -j REDIRECT --to-ports 8080
"""  # noqa: E501

# A stand-in for iptables and ip6tables: -C, -A, -D and -S on chains kept in a JSON file;
# FAKE_IPTABLES_FAIL=-A makes every -A fail as iptables does for a rule it cannot take.
FAKE_IPTABLES = """\
import json, os, sys
state_path = os.environ["FAKE_IPTABLES_STATE"]
try:
    with open(state_path) as file:
        state = json.load(file)
except FileNotFoundError:
    state = {}
name = os.path.basename(sys.argv[0])
args = sys.argv[1:]
assert args[:3] == ["-w", "10", "-t"], args
table, operation, chain, spec = args[3], args[4], args[5], args[6:]
if operation == os.environ.get("FAKE_IPTABLES_FAIL"):
    sys.stderr.write(f"{name}: Bad argument `{spec[-1]}'\\nTry `{name} -h' for more.\\n")
    sys.exit(2)
rules = state.setdefault(f"{name} {table} {chain}", [])
if operation == "-C":
    sys.exit(0 if spec in rules else 1)
if operation == "-A":
    rules.append(spec)
elif operation == "-D":
    rules.remove(spec)
elif operation == "-S":
    print(f"-P {chain} ACCEPT")
    for rule in rules:
        print(f"-A {chain} " + " ".join(rule))
with open(state_path, "w") as file:
    json.dump(state, file)
"""


@pytest.fixture(autouse=True)
def fake_iptables(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """PATH with nothing but the fake front ends; their state file's path is returned."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("iptables", "ip6tables", "iptables-legacy", "ip6tables-legacy"):
        path = bin_dir / name
        path.write_text(f"#!{sys.executable}\n{FAKE_IPTABLES}")
        path.chmod(path.stat().st_mode | stat.S_IXUSR)
    state = tmp_path / "iptables.json"
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.setenv("FAKE_IPTABLES_STATE", str(state))
    monkeypatch.delenv("WAYLAY_IPTABLES", raising=False)
    monkeypatch.delenv("FAKE_IPTABLES_FAIL", raising=False)
    return state


@pytest.fixture
def as_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 0)


def rules(*args: str) -> int:
    return main(["transparent", "rules", *args])


def one_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one line on stderr, got:\n{stderr}"
    return lines[0]


# --- printing ----------------------------------------------------------------------------


def test_prints_the_gateway_rules(capsys: pytest.CaptureFixture[str]) -> None:
    assert rules("--gateway", "eth0") == 0
    out, err = capsys.readouterr()
    assert out == GATEWAY_ETH0
    assert err == ""


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--gateway", "wlan0", "--block-quic"], ["-i wlan0", "FORWARD -i wlan0 -p udp"]),
        (["--local", "--exclude-mark", "0x2a"], ["! --mark 0x2a", "--upstream-mark 0x2a"]),
        (["--local", "--exclude-user", "proxy"], ["! --uid-owner proxy", "sudo -u proxy"]),
        (
            ["--gateway", "eth0", "--proxy-port", "3128", "--ports", "80,443,8000:8100"],
            ["--dports 80,443,8000:8100", "--to-ports 3128", "--listen '*:3128'"],
        ),
    ],
)
def test_prints_what_the_flags_ask_for(
    capsys: pytest.CaptureFixture[str], args: list[str], expected: list[str]
) -> None:
    assert rules(*args) == 0
    out, err = capsys.readouterr()
    assert err == ""
    for text in expected:
        assert text in out
    # Every command line is one the shell can run; every other line is a comment.
    assert all(line.startswith(("#", "iptables ", "ip6tables ")) for line in out.splitlines())


def test_without_a_setup_prints_both_with_placeholders(capsys: pytest.CaptureFixture[str]) -> None:
    assert rules("--block-quic") == 0
    out, err = capsys.readouterr()
    assert err == ""
    for text in (
        "PREROUTING -i IFACE",
        "FORWARD -i IFACE -p udp",
        "-m owner ! --uid-owner USER",
        "-m mark ! --mark MARK",
        "--upstream-mark MARK",
        "#   waylay transparent rules --gateway IFACE --block-quic",
        "#   waylay transparent rules --local --exclude-user USER --block-quic",
        "#   waylay transparent rules --local --exclude-mark MARK --block-quic",
    ):
        assert text in out, text


def test_the_front_end_chosen_is_the_one_printed(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WAYLAY_IPTABLES", "iptables-legacy")
    assert rules("--gateway", "eth0") == 0
    out = capsys.readouterr().out
    assert out == script(RuleSet(Gateway("eth0")), FrontEnd.named("iptables-legacy"))
    assert "\niptables-legacy -t nat -A PREROUTING" in out
    assert "\nip6tables-legacy -t nat -A PREROUTING" in out


def test_help_names_every_flag_and_the_environment(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        rules("--help")
    assert exited.value.code == 0
    out = " ".join(capsys.readouterr().out.split())
    for flag in (
        "--gateway IFACE",
        "--local",
        "--exclude-user USER",
        "--exclude-mark MARK",
        "--proxy-port N",
        "--ports LIST",
        "--block-quic",
        "--apply",
        "--remove",
        "WAYLAY_IPTABLES",
    ):
        assert flag in out, flag


# --- refusals: one line, status 2, nothing printed or changed ------------------------------

REFUSALS = [
    (["--gateway", "eth0", "--local", "--exclude-mark", "1"], "not allowed with argument"),
    (["--local"], "--local needs --exclude-user USER or --exclude-mark MARK"),
    (["--local", "--exclude-user", "a", "--exclude-mark", "1"], "not allowed with argument"),
    (["--gateway", "eth0", "--exclude-mark", "1"], "--exclude-mark goes with --local"),
    (["--exclude-user", "root"], "--exclude-user goes with --local"),
    (["--gateway", "eth0", "--ports", "80,http"], "--ports '80,http': expected ports"),
    (["--gateway", "eth0", "--ports", "80,80"], "listed twice"),
    (["--gateway", "eth0", "--proxy-port", "70000"], "--proxy-port '70000'"),
    (["--local", "--exclude-mark", "0"], "--exclude-mark '0': expected a mark"),
    (["--local", "--exclude-mark", "lots"], "--exclude-mark 'lots': expected a mark"),
    (["--local", "--exclude-user", "a b"], "--exclude-user 'a b'"),
    (["--gateway", "eth/0"], "--gateway 'eth/0': expected a network interface name"),
    (["--apply"], "--apply needs a set-up: --gateway IFACE, or --local with"),
    (["--remove", "--block-quic"], "--remove needs a set-up"),
    (["--gateway", "eth0", "--apply", "--remove"], "not allowed with argument"),
    (["--gateway", "eth0", "--frobnicate"], "waylay transparent rules: error: unrecognized"),
    (["--gateway"], "expected one argument"),
]


@pytest.mark.parametrize(("args", "reason"), REFUSALS)
def test_refusals(capsys: pytest.CaptureFixture[str], args: list[str], reason: str) -> None:
    try:
        status = rules(*args)
    except SystemExit as exited:  # argparse's own refusals
        status = int(exited.code or 0)
    out, err = capsys.readouterr()
    assert status == 2
    assert reason in one_line(err)
    assert out == ""


def test_a_front_end_that_is_not_iptables_is_refused(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WAYLAY_IPTABLES", "nft")
    assert rules("--gateway", "eth0") == 2
    assert "WAYLAY_IPTABLES='nft': expected an iptables command" in one_line(
        capsys.readouterr().err
    )


@pytest.mark.parametrize("action", ["--apply", "--remove"])
def test_changing_rules_needs_root(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    fake_iptables: Path,
    action: str,
) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert rules("--gateway", "eth0", action) == 2
    line = one_line(capsys.readouterr().err)
    assert f"{action} changes the packet filter, which needs root: run it with sudo" in line
    assert not fake_iptables.exists()


@pytest.mark.usefixtures("as_root")
@pytest.mark.parametrize(
    ("environment", "missing"),
    [({}, "iptables"), ({"WAYLAY_IPTABLES": "iptables-nft"}, "iptables-nft")],
)
def test_a_missing_iptables_is_named(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    environment: dict[str, str],
    missing: str,
) -> None:
    if not environment:
        monkeypatch.setenv("PATH", str(tmp_path / "nothing"))
    for key, value in environment.items():
        monkeypatch.setenv(key, value)
    assert rules("--gateway", "eth0", "--apply") == 2
    line = one_line(capsys.readouterr().err)
    assert line.startswith(f"waylay: error: {missing} not found on PATH")
    assert "WAYLAY_IPTABLES=iptables-legacy" in line


@pytest.mark.usefixtures("as_root")
def test_an_unknown_user_is_refused_before_iptables_runs(
    capsys: pytest.CaptureFixture[str], fake_iptables: Path
) -> None:
    assert rules("--local", "--exclude-user", "no-such-user-wl", "--apply") == 2
    assert "--exclude-user 'no-such-user-wl': no such user here" in one_line(
        capsys.readouterr().err
    )
    assert not fake_iptables.exists()


# --- applying and removing, with the fake front end -----------------------------------------


def saved(state: Path) -> dict[str, list[list[str]]]:
    table: dict[str, list[list[str]]] = json.loads(state.read_text())
    return {chain: rules for chain, rules in table.items() if rules}


@pytest.mark.usefixtures("as_root")
def test_apply_twice_then_remove(capsys: pytest.CaptureFixture[str], fake_iptables: Path) -> None:
    args = ["--local", "--exclude-mark", "7", "--block-quic"]
    assert rules(*args, "--apply") == 0
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines() == [
        "waylay: 4 rules added, 0 already there (iptables, ip6tables)",
        "waylay: now run: waylay dump --mode transparent --listen '*:8080' --upstream-mark 7",
    ]
    after_one = saved(fake_iptables)
    assert sorted(after_one) == [
        "ip6tables filter OUTPUT",
        "ip6tables nat OUTPUT",
        "iptables filter OUTPUT",
        "iptables nat OUTPUT",
    ]
    assert rules(*args, "--apply") == 0
    assert "waylay: 0 rules added, 4 already there" in capsys.readouterr().err
    assert saved(fake_iptables) == after_one

    assert rules(*args, "--remove") == 0
    assert capsys.readouterr().err.splitlines() == [
        "waylay: 4 rules removed, 0 were not there (iptables, ip6tables)"
    ]
    assert saved(fake_iptables) == {}


@pytest.mark.usefixtures("as_root")
def test_remove_names_rules_made_with_other_flags(
    capsys: pytest.CaptureFixture[str], fake_iptables: Path
) -> None:
    assert rules("--gateway", "eth0", "--ports", "8443", "--apply") == 0
    capsys.readouterr()
    assert rules("--gateway", "eth0", "--remove") == 0
    err = capsys.readouterr().err
    assert err.splitlines()[:2] == [
        "waylay: 0 rules removed, 2 were not there (iptables, ip6tables)",
        "waylay: 2 other rules tagged waylay remain in these chains (made with other flags: "
        "remove them with those flags, or by hand):",
    ]
    assert (
        "waylay:   iptables -t nat -A PREROUTING -i eth0 -p tcp -m multiport --dports 8443" in err
    )
    assert len(saved(fake_iptables)) == 2


@pytest.mark.usefixtures("as_root")
def test_a_failing_iptables_is_status_1_with_its_message(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, fake_iptables: Path
) -> None:
    monkeypatch.setenv("FAKE_IPTABLES_FAIL", "-A")
    monkeypatch.setenv("WAYLAY_IPTABLES", "iptables-legacy")
    assert rules("--gateway", "eth0", "--apply") == 1
    line = one_line(capsys.readouterr().err)
    expected = textwrap.dedent("""\
        waylay: error: `iptables-legacy -t nat -A PREROUTING -i eth0 -p tcp -m multiport --dports
        80,443 -m comment --comment waylay -j REDIRECT --to-ports 8080` exited 2:
        iptables-legacy: Bad argument `8080'""").replace("\n", " ")
    assert line == expected


def test_the_documented_output_is_the_real_one() -> None:
    """docs/transparent.md shows what `--gateway eth0` prints, indented in a list item."""
    doc = (Path(__file__).parents[1] / "docs" / "transparent.md").read_text()
    shown = textwrap.indent(GATEWAY_ETH0, "   ")
    assert f"   $ waylay transparent rules --gateway eth0\n{shown}   ```" in doc
