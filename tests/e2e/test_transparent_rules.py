"""``waylay transparent rules --apply`` and ``--remove`` with the real iptables front ends.

Each test builds its own namespaces (tests/e2e/netns.py): a gateway ``gw`` joined to a client
by ``veth0`` (198.18.0.0/24, 2001:2::/64), with unrelated rules of its own in every chain
waylay uses. waylay runs inside ``gw`` — ``Host.run`` checks that ``gw`` is not the machine's
own namespace before anything runs there — with ``WAYLAY_IPTABLES`` naming the front end,
nft or legacy; what it did is read back with that front end's ``-save``. Then, with a plain
listener standing where waylay would, where the rules deliver a connection (a gateway's to the
interface's address, local capture's to 127.0.0.1 and ::1) and which ones they leave alone.
"""

from __future__ import annotations

import pwd
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from . import netns
from .waylay_process import clean_env, waylay_command

pytestmark = [
    pytest.mark.netns,
    pytest.mark.skipif(netns.available() is not None, reason=netns.available() or ""),
]

FRONT_ENDS = ["iptables-nft", "iptables-legacy"]
OTHER = {"iptables-nft": "iptables-legacy", "iptables-legacy": "iptables-nft"}

# Rules a user had before waylay: in every chain waylay adds to, one tagged like waylay's
# but not with its exact comment. They must survive every --apply and --remove.
UNRELATED = [
    ["-t", "nat", "-A", "PREROUTING", "-i", "veth0", "-p", "tcp", "--dport", "22", "-j", "ACCEPT"],
    ["-t", "nat", "-A", "OUTPUT", "-p", "tcp", "--dport", "25", "-j", "ACCEPT"],
    ["-t", "filter", "-A", "FORWARD", "-p", "udp", "--dport", "53", "-j", "ACCEPT"],
    ["-t", "filter", "-A", "OUTPUT", "-m", "comment", "--comment", "waylay-not", "-j", "ACCEPT"],
]

# (flags, what --apply adds to each family, text each added rule shows in -save)
SETUPS = {
    "gateway": (
        ["--gateway", "veth0", "--block-quic"],
        2,
        ["-i veth0"],
    ),
    "local-mark": (
        ["--local", "--exclude-mark", "7"],
        1,
        ["! -o lo", "-m mark ! --mark 0x7"],
    ),
    "local-user": (
        ["--local", "--exclude-user", "nobody", "--block-quic"],
        2,
        [f"-m owner ! --uid-owner {pwd.getpwnam('nobody').pw_uid}"],
    ),
}


def ipv6(front_end: str) -> str:
    return front_end.replace("iptables", "ip6tables")


@pytest.fixture
def gw() -> Iterator[netns.Host]:
    network = netns.Network("rules")
    try:
        gateway = network.host("gw")
        client = network.host("cl")
        network.link(
            gateway, "veth0", ["198.18.0.1/24", "2001:2::1/64"],
            client, "veth0", ["198.18.0.2/24", "2001:2::2/64"],
        )  # fmt: skip
        yield gateway
    finally:
        network.close()


def add_unrelated(host: netns.Host, front_end: str) -> None:
    for command in (front_end, ipv6(front_end)):
        for rule in UNRELATED:
            host.run(command, *rule)


def saved(host: netns.Host, front_end: str) -> list[str]:
    """Every rule of both families, as ``COMMAND TABLE -A CHAIN ...``, in order."""
    lines = []
    for command in (front_end, ipv6(front_end)):
        table = ""
        for line in host.run(f"{command}-save").stdout.splitlines():
            if line.startswith("*"):
                table = line[1:]
            elif line.startswith("-A "):
                lines.append(f"{command} {table} {line}")
    return lines


def waylay(
    host: netns.Host, home: Path, front_end: str, *args: str
) -> subprocess.CompletedProcess[str]:
    env = clean_env(home, {"WAYLAY_IPTABLES": front_end})
    return host.run(*waylay_command(["transparent", "rules", *args]), check=False, env=env)


def ran(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    return result.stderr


@pytest.mark.parametrize("front_end", FRONT_ENDS)
@pytest.mark.parametrize("setup", list(SETUPS))
def test_apply_twice_then_remove(gw: netns.Host, home: Path, front_end: str, setup: str) -> None:
    flags, per_family, shown = SETUPS[setup]
    add_unrelated(gw, front_end)
    before = saved(gw, front_end)
    tools = f"({front_end}, {ipv6(front_end)})"

    err = ran(waylay(gw, home, front_end, *flags, "--apply"))
    assert f"waylay: {2 * per_family} rules added, 0 already there {tools}" in err
    applied = saved(gw, front_end)
    added = [line for line in applied if line not in before]
    assert [line for line in applied if line in before] == before
    assert len(added) == 2 * per_family
    for command in (front_end, ipv6(front_end)):
        ours = [line for line in added if line.startswith(f"{command} ")]
        assert len(ours) == per_family, added
        assert any("-j REDIRECT --to-ports 8080" in line for line in ours)
    for line in added:
        assert "-m comment --comment waylay " in line
        for text in shown:
            assert text in line or "-p udp" in line, line
    # The other front end's tables were not touched.
    assert not any("--comment waylay " in line for line in saved(gw, OTHER[front_end]))

    err = ran(waylay(gw, home, front_end, *flags, "--apply"))
    assert f"waylay: 0 rules added, {2 * per_family} already there {tools}" in err
    assert saved(gw, front_end) == applied

    err = ran(waylay(gw, home, front_end, *flags, "--remove"))
    assert f"waylay: {2 * per_family} rules removed, 0 were not there {tools}" in err
    assert "remain" not in err
    assert saved(gw, front_end) == before

    err = ran(waylay(gw, home, front_end, *flags, "--remove"))
    assert f"waylay: 0 rules removed, {2 * per_family} were not there {tools}" in err


@pytest.mark.parametrize("front_end", FRONT_ENDS)
def test_pasted_rules_are_the_applied_rules(gw: netns.Host, home: Path, front_end: str) -> None:
    """What the command prints runs in a shell, and is what --apply and --remove act on."""
    flags = ["--local", "--exclude-mark", "0x2a", "--block-quic", "--ports", "80,443,8000:8100"]
    add_unrelated(gw, front_end)
    before = saved(gw, front_end)
    printed = waylay(gw, home, front_end, *flags)
    ran(printed)
    gw.run("sh", "-e", "-c", printed.stdout)
    pasted = saved(gw, front_end)
    assert len(pasted) == len(before) + 4

    err = ran(waylay(gw, home, front_end, *flags, "--apply"))
    assert "waylay: 0 rules added, 4 already there" in err
    assert saved(gw, front_end) == pasted
    err = ran(waylay(gw, home, front_end, *flags, "--remove"))
    assert "waylay: 4 rules removed, 0 were not there" in err
    assert saved(gw, front_end) == before


@pytest.mark.parametrize("front_end", FRONT_ENDS)
def test_remove_leaves_rules_made_with_other_flags(
    gw: netns.Host, home: Path, front_end: str
) -> None:
    ran(waylay(gw, home, front_end, "--gateway", "veth0", "--ports", "8443", "--apply"))
    applied = saved(gw, front_end)
    err = ran(waylay(gw, home, front_end, "--gateway", "veth0", "--remove"))
    assert "waylay: 0 rules removed, 2 were not there" in err
    assert "waylay: 2 other rules tagged waylay remain in these chains" in err
    assert f"waylay:   {front_end} -t nat -A PREROUTING -i veth0" in err
    assert saved(gw, front_end) == applied


def test_apply_warns_when_the_gateway_does_not_forward(gw: netns.Host, home: Path) -> None:
    gw.sysctl("net.ipv4.ip_forward", "0")
    gw.sysctl("net.ipv6.conf.all.forwarding", "0")
    err = ran(waylay(gw, home, "iptables-nft", "--gateway", "veth0", "--apply"))
    assert (
        "waylay: warning: net.ipv4.ip_forward is 0, so the clients' packets are not forwarded: "
        "sysctl -w net.ipv4.ip_forward=1"
    ) in err
    assert "waylay: warning: net.ipv6.conf.all.forwarding is 0" in err
    assert "waylay: now run: waylay dump --mode transparent --listen '*:8080'" in err

    gw.sysctl("net.ipv4.ip_forward", "1")
    gw.sysctl("net.ipv6.conf.all.forwarding", "1")
    err = ran(waylay(gw, home, "iptables-nft", "--gateway", "veth0", "--apply"))
    assert "warning" not in err


# --- the rules at work: where a redirected connection lands ----------------------------------
#
# No waylay here: a plain listener stands where waylay would, so these tests show what the
# rules themselves do, and what the printed text claims about them.

PROXY_PORT = 8080
SERVER_V4, SERVER_V6 = "198.18.1.2", "2001:2:0:1::2"


@pytest.fixture
def routed() -> Iterator[tuple[netns.Host, netns.Host, netns.Host]]:
    """client ── veth0 [gw] veth1 ── server, both families routed through gw."""
    network = netns.Network("route")
    try:
        client, gateway, server = (network.host(role) for role in ("cl", "gw", "sv"))
        network.link(
            client, "veth0", ["198.18.0.2/24", "2001:2::2/64"],
            gateway, "veth0", ["198.18.0.1/24", "2001:2::1/64"],
        )  # fmt: skip
        network.link(
            gateway, "veth1", ["198.18.1.1/24", "2001:2:0:1::1/64"],
            server, "veth0", [f"{SERVER_V4}/24", f"{SERVER_V6}/64"],
        )  # fmt: skip
        for host, v4, v6 in (
            (client, "198.18.0.1", "2001:2::1"),
            (server, "198.18.1.1", "2001:2:0:1::1"),
        ):
            host.run("ip", "route", "add", "default", "via", v4)
            host.run("ip", "-6", "route", "add", "default", "via", v6)
        gateway.sysctl("net.ipv4.ip_forward", "1")
        gateway.sysctl("net.ipv6.conf.all.forwarding", "1")
        yield client, gateway, server
    finally:
        network.close()


def listen(host: netns.Host, address: str, port: int) -> socket.socket:
    """A listening socket inside ``host``; ``::`` is dual-stack, as waylay's ``*`` is."""
    with host.inside():
        sock = socket.socket(socket.AF_INET6 if ":" in address else socket.AF_INET)
    if address == "::":
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((address, port))
    sock.listen()
    sock.settimeout(5)
    return sock


def connect(host: netns.Host, address: str, port: int, mark: int | None = None) -> socket.socket:
    with host.inside():
        sock = socket.socket(socket.AF_INET6 if ":" in address else socket.AF_INET)
    if mark is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_MARK, mark)
    sock.settimeout(5)
    sock.connect((address, port))
    return sock


def landed(listener: socket.socket) -> str:
    """The local address of the next connection ``listener`` accepts (IPv4 unmapped)."""
    conn, _ = listener.accept()
    with conn:
        return str(conn.getsockname()[0]).removeprefix("::ffff:")


@pytest.mark.parametrize("front_end", FRONT_ENDS)
def test_gateway_rules_deliver_to_the_interface_address(
    routed: tuple[netns.Host, netns.Host, netns.Host], home: Path, front_end: str
) -> None:
    client, gw, server = routed
    ran(waylay(gw, home, front_end, "--gateway", "veth0", "--apply"))
    with listen(server, "::", 80) as web, listen(server, "::", 22) as ssh:
        # Nothing on the interface's address: 127.0.0.1 is not where a REDIRECT delivers.
        with listen(gw, "127.0.0.1", PROXY_PORT), pytest.raises(ConnectionRefusedError):
            connect(client, SERVER_V4, 80).close()
        with listen(gw, "::", PROXY_PORT) as proxy:
            for server_address, interface_address in (
                (SERVER_V4, "198.18.0.1"),
                (SERVER_V6, "2001:2::1"),
            ):
                connect(client, server_address, 80).close()
                assert landed(proxy) == interface_address
                # Other ports are forwarded to the server, untouched.
                connect(client, server_address, 22).close()
                assert landed(ssh) == server_address
        web.settimeout(0.2)
        with pytest.raises(TimeoutError):
            web.accept()


@pytest.mark.parametrize("front_end", FRONT_ENDS)
def test_local_rules_capture_all_but_the_marked_connections(
    routed: tuple[netns.Host, netns.Host, netns.Host], home: Path, front_end: str
) -> None:
    client, _, server = routed
    ran(waylay(client, home, front_end, "--local", "--exclude-mark", "7", "--apply"))
    with listen(server, "::", 443) as web, listen(client, "::", PROXY_PORT) as proxy:
        for server_address, loopback, own in (
            (SERVER_V4, "127.0.0.1", "198.18.0.2"),
            (SERVER_V6, "::1", "2001:2::2"),
        ):
            connect(client, server_address, 443).close()
            assert landed(proxy) == loopback
            # waylay's own connections carry the mark (--upstream-mark 7): they reach the server.
            connect(client, server_address, 443, mark=7).close()
            assert landed(web) == server_address
            # Connections to this machine itself are left alone, its listener among them.
            connect(client, own, PROXY_PORT).close()
            assert landed(proxy) == own
