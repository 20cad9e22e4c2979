"""Small networks of Linux network namespaces for the tests that need real routing.

A test builds hosts (namespaces) and joins them with veth pairs; everything it changes —
addresses, routes, sysctls, iptables rules — lives inside namespaces it created, never in
the machine's own. The safety rules (the transparent-mode issue's):

- every namespace is named ``wl-<pid>-<role>``, so a run can tell its own from another's;
- before any command that changes a namespace's packet filter or sysctls runs in it, the
  namespace is checked to differ from PID 1's (``/proc/self/ns/net``);
- namespaces are deleted when the network is closed (a finalizer), and namespaces left by
  runs whose process is gone are swept when the next network is built;
- addresses come from 198.18.0.0/15 and 2001:2::/48, the ranges reserved for benchmarking.

Sockets can be made inside a namespace from this process too: ``with host.inside():`` moves
the calling thread into the namespace (``setns(2)`` is per thread), and a socket created
there belongs to it for its whole life, whatever thread later uses it. That is how the
tests' Python origins listen inside a server namespace.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import shutil
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

NETNS_DIR = Path("/var/run/netns")
ETC_NETNS = Path("/etc/netns")
_NAME = re.compile(r"^wl-(?P<pid>\d+)-")
_CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def available() -> str | None:
    """Why namespaces cannot be built here, or None when they can."""
    if os.geteuid() != 0:
        return "needs root (network namespaces and iptables)"
    for tool in ("ip", "iptables", "ip6tables"):
        if shutil.which(tool) is None:
            return f"needs {tool} (make test installs iproute2 and iptables as root)"
    return None


def _setns(fd: int) -> None:
    if _libc.setns(fd, _CLONE_NEWNET) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"setns: {os.strerror(errno)}")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_stale() -> list[str]:
    """Delete the ``wl-*`` namespaces of test runs whose process is gone; their names."""
    swept = []
    if not NETNS_DIR.is_dir():
        return swept
    for entry in NETNS_DIR.iterdir():
        match = _NAME.match(entry.name)
        if match and not _alive(int(match.group("pid"))):
            subprocess.run(["ip", "netns", "delete", entry.name], check=False, capture_output=True)
            shutil.rmtree(ETC_NETNS / entry.name, ignore_errors=True)
            swept.append(entry.name)
    return swept


# The test process's own namespace is the machine's (tests never start inside one of theirs).
_OWN_NETNS_INODE = os.stat("/proc/self/ns/net").st_ino


def _machine_netns_inodes() -> set[int]:
    """The machine's namespace: PID 1's, and this process's own.

    PID 1's may be unreadable even to root (a sandbox's init runs as another user namespace's
    process): then this process's own stands for it.
    """
    inodes = {_OWN_NETNS_INODE}
    with contextlib.suppress(PermissionError):
        inodes.add(os.stat("/proc/1/ns/net").st_ino)
    return inodes


class Host:
    """One network namespace: a host of the test network."""

    def __init__(self, name: str) -> None:
        self.name = name
        subprocess.run(["ip", "netns", "add", name], check=True, capture_output=True)
        self.run("ip", "link", "set", "lo", "up")
        self.assert_not_the_machine()

    @property
    def prefix(self) -> list[str]:
        """What runs a command inside this namespace (``ip netns exec`` execs it: same pid)."""
        return ["ip", "netns", "exec", self.name]

    def assert_not_the_machine(self) -> None:
        inode = os.stat(NETNS_DIR / self.name).st_ino
        if inode in _machine_netns_inodes():
            raise AssertionError(f"namespace {self.name} is the machine's own: refusing")

    def run(
        self,
        *command: str,
        check: bool = True,
        input: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run ``command`` inside this namespace; raise with its stderr if it fails.

        The namespace is checked before every command, not only iptables and sysctl: a
        program (``waylay transparent rules --apply``) may change the packet filter too.
        """
        self.assert_not_the_machine()
        result = subprocess.run(
            [*self.prefix, *command],
            capture_output=True,
            text=True,
            input=input,
            timeout=30,
            env=None if env is None else dict(env),
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"{' '.join(command)} in {self.name} exited {result.returncode}: "
                f"{result.stderr.strip()}"
            )
        return result

    def sysctl(self, key: str, value: str) -> None:
        self.run("sysctl", "-q", "-w", f"{key}={value}")

    def write_hosts(self, text: str) -> None:
        """This namespace's own /etc/hosts (``ip netns exec`` bind-mounts it over the real one)."""
        folder = ETC_NETNS / self.name
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "hosts").write_text(text)

    @contextlib.contextmanager
    def inside(self) -> Iterator[None]:
        """Move the calling thread into this namespace for the block, then back."""
        home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        target = os.open(NETNS_DIR / self.name, os.O_RDONLY)
        try:
            _setns(target)
            try:
                yield
            finally:
                _setns(home)
        finally:
            os.close(target)
            os.close(home)

    def delete(self) -> None:
        subprocess.run(["ip", "netns", "delete", self.name], check=False, capture_output=True)
        shutil.rmtree(ETC_NETNS / self.name, ignore_errors=True)


class Network:
    """The namespaces and links of one test; ``close()`` removes them all."""

    def __init__(self, tag: str = "") -> None:
        sweep_stale()
        self._prefix = f"wl-{os.getpid()}-{tag}{id(self) % 10000:04d}-"
        self.hosts: list[Host] = []

    def host(self, role: str) -> Host:
        host = Host(self._prefix + role)
        self.hosts.append(host)
        return host

    def link(
        self,
        a: Host,
        a_interface: str,
        a_addresses: Sequence[str],
        b: Host,
        b_interface: str,
        b_addresses: Sequence[str],
    ) -> None:
        """A veth pair between ``a`` and ``b``, made directly inside them, addresses up.

        Interface names are per namespace, so they never clash with another run's; IPv6
        addresses skip duplicate-address detection so they are usable at once.
        """
        subprocess.run(
            ["ip", "-n", a.name, "link", "add", a_interface, "type", "veth",
             "peer", "name", b_interface, "netns", b.name],
            check=True, capture_output=True,
        )  # fmt: skip
        ends = ((a, a_interface, a_addresses), (b, b_interface, b_addresses))
        for host, interface, addresses in ends:
            for address in addresses:
                extra = ["nodad"] if ":" in address else []
                host.run("ip", "addr", "add", address, "dev", interface, *extra)
            host.run("ip", "link", "set", interface, "up")

    def close(self) -> None:
        for host in reversed(self.hosts):
            host.delete()
        self.hosts.clear()
