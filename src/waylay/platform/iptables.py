"""The iptables rules of transparent mode: made as argument lists, printed, applied, removed.

Transparent mode needs the kernel to hand waylay connections that were going elsewhere. On
Linux a ``REDIRECT`` in the ``nat`` table does that, for IPv4 (``iptables``) and IPv6
(``ip6tables``) separately. There are two common set-ups:

- a **gateway** (``--gateway IFACE``): the clients' traffic is routed through this machine and
  arrives on IFACE; ``PREROUTING`` redirects it. The kernel delivers a redirected connection to
  IFACE's primary address, so waylay must listen there (``*:PORT``), not on 127.0.0.1.
- **local capture** (``--local``): this machine's own programs; ``OUTPUT`` redirects them to
  127.0.0.1 (IPv4) or ::1 (IPv6). waylay's own connections to servers leave through ``OUTPUT``
  too and would come straight back to it, so they are excluded — by the user waylay runs as
  (``--exclude-user``) or by the firewall mark it sets on them (``--exclude-mark``, waylay's
  ``--upstream-mark``). Connections to this machine itself (routed through ``lo``, waylay's
  own listener among them) are never redirected.

``--block-quic`` adds a ``filter`` rule that rejects UDP 443, so browsers fall back from
HTTP/3 to TCP instead of escaping interception.

Every rule carries the comment ``waylay``, so a reader of ``iptables-save`` knows where it came
from. Applying checks each rule with ``-C`` before appending it (twice is the same as once);
removing deletes each rule of the set with ``-D`` until ``-C`` finds it no more, and nothing
else. Both run the ``iptables`` and ``ip6tables`` on PATH, which may be the nft or the legacy
front end; ``WAYLAY_IPTABLES=iptables-legacy`` (or a path) chooses another.

Making the rules is pure; the few functions that run commands take a ``Runner``, which the
tests replace.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import textwrap
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePath
from typing import Literal

from waylay.errors import ConfigError, WaylayError

COMMENT = "waylay"
DEFAULT_PROXY_PORT = 8080
DEFAULT_PORTS = ("80", "443")
# HTTP/3 runs over QUIC on UDP 443.
QUIC_PORT = 443
# iptables' multiport match takes at most 15 ports, a range counting as two.
MULTIPORT_MAX = 15
# Seconds iptables waits for the xtables lock another iptables holds (`-w`).
LOCK_WAIT = 10

Family = Literal[4, 6]
FAMILIES: tuple[Family, ...] = (4, 6)


# --- the set-ups ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Gateway:
    """Clients route through this machine; their traffic arrives on ``interface``."""

    interface: str


@dataclass(frozen=True, slots=True)
class ExcludeUser:
    """waylay runs as ``user`` (a name or a uid); that user's connections are not redirected."""

    user: str


@dataclass(frozen=True, slots=True)
class ExcludeMark:
    """waylay marks its connections to servers with ``mark`` (``--upstream-mark``)."""

    mark: str


@dataclass(frozen=True, slots=True)
class LocalCapture:
    """This machine's own programs, except waylay's own connections to servers."""

    exclude: ExcludeUser | ExcludeMark


Setup = Gateway | LocalCapture


@dataclass(frozen=True, slots=True)
class Rule:
    """One rule: where it goes (family, table, chain) and what it says (matches, target)."""

    family: Family
    table: str
    chain: str
    spec: tuple[str, ...]

    def arguments(self, operation: str) -> list[str]:
        """The arguments after the command name; ``operation`` is ``-A``, ``-C`` or ``-D``."""
        return ["-t", self.table, operation, self.chain, *self.spec]


@dataclass(frozen=True, slots=True)
class FrontEnd:
    """The two commands that change the rules: ``iptables`` and ``ip6tables``, or variants."""

    ipv4: str = "iptables"
    ipv6: str = "ip6tables"

    @classmethod
    def named(cls, command: str) -> FrontEnd:
        """``iptables-legacy`` → it and ``ip6tables-legacy`` (same folder for a path)."""
        path = PurePath(command)
        if "iptables" not in path.name or "ip6tables" in path.name:
            raise ConfigError(
                f"WAYLAY_IPTABLES={command!r}: expected an iptables command such as "
                "iptables, iptables-nft or iptables-legacy (ip6tables is derived from it)"
            )
        head, _, tail = path.name.rpartition("iptables")
        return cls(command, str(path.with_name(f"{head}ip6tables{tail}")))

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> FrontEnd:
        command = environ.get("WAYLAY_IPTABLES")
        return cls.named(command) if command else cls()

    def command(self, family: Family) -> str:
        return self.ipv4 if family == 4 else self.ipv6


# --- validating what the user typed -----------------------------------------------------------


def parse_port(flag: str, text: str) -> int:
    if not (text.isascii() and text.isdecimal()) or not 0 < int(text) <= 65535:
        raise ConfigError(f"{flag} {text!r}: expected a port from 1 to 65535")
    return int(text)


def parse_ports(text: str) -> tuple[str, ...]:
    """``80,443`` or ``8000:8100,443``: the entries of iptables' multiport ``--dports``."""
    entries: list[str] = []
    slots = 0
    for item in text.split(","):
        low, sep, high = item.strip().partition(":")
        try:
            first = parse_port("--ports", low)
            last = parse_port("--ports", high) if sep else first
        except ConfigError:
            raise ConfigError(
                f"--ports {text!r}: expected ports from 1 to 65535 separated by commas, "
                "ranges as LOW:HIGH (80,443 or 8000:8100)"
            ) from None
        if last < first:
            raise ConfigError(f"--ports {text!r}: the range {item.strip()} ends before it starts")
        entry = f"{first}:{last}" if sep and last != first else str(first)
        if entry in entries:
            raise ConfigError(f"--ports {text!r}: {entry} is listed twice")
        entries.append(entry)
        slots += 2 if ":" in entry else 1
    if slots > MULTIPORT_MAX:
        raise ConfigError(
            f"--ports {text!r}: iptables takes at most {MULTIPORT_MAX} ports (a range counts "
            "as two); use ranges"
        )
    return tuple(entries)


def parse_mark(text: str) -> str:
    """A firewall mark as ``--upstream-mark`` takes it (1 to 0xffffffff), written as the user
    wrote it: decimal, or hex after ``0x`` (lower case, no leading zeros)."""
    hexadecimal = text[:2].lower() == "0x"
    digits = text[2:] if hexadecimal else text
    valid = digits.isascii() and (digits.isdecimal() or hexadecimal) and digits != ""
    try:
        mark = int(digits, 16 if hexadecimal else 10) if valid else 0
    except ValueError:
        mark = 0
    if not 0 < mark <= 0xFFFFFFFF:
        raise ConfigError(
            f"--exclude-mark {text!r}: expected a mark from 1 to 0xffffffff (decimal or 0x-hex)"
        )
    return f"{mark:#x}" if hexadecimal else str(mark)


# Linux's dev_valid_name(): at most 15 bytes, not "." or "..", no "/", ":" or white space.
# iptables reads a trailing "+" as a wildcard (eth+); a leading "-" or "!" would read as a flag.
_INTERFACE = re.compile(r"[^\s/:!-][^\s/:]{0,14}")


def check_interface(text: str) -> str:
    if not _INTERFACE.fullmatch(text) or text in (".", ".."):
        raise ConfigError(
            f"--gateway {text!r}: expected a network interface name such as eth0 "
            "(at most 15 characters, no '/', ':' or spaces)"
        )
    return text


# POSIX portable user names (and what useradd accepts), or a numeric uid.
_USER = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,31}\$?|[0-9]{1,10}")


def check_user(text: str) -> str:
    if not _USER.fullmatch(text):
        raise ConfigError(f"--exclude-user {text!r}: expected a user name or a numeric uid")
    return text


# --- making the rules ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RuleSet:
    """What ``waylay transparent rules`` was asked for: a set-up and where its traffic goes."""

    setup: Setup
    proxy_port: int = DEFAULT_PROXY_PORT
    ports: tuple[str, ...] = DEFAULT_PORTS
    block_quic: bool = False


def transparent_rules(ruleset: RuleSet) -> tuple[Rule, ...]:
    """The rules, IPv4's then IPv6's, each family's ``nat`` rule first."""
    setup = ruleset.setup
    tag = ("-m", "comment", "--comment", COMMENT)
    tcp = ("-p", "tcp", "-m", "multiport", "--dports", ",".join(ruleset.ports))
    redirect = ("-j", "REDIRECT", "--to-ports", str(ruleset.proxy_port))
    quic = ("-p", "udp", "--dport", str(QUIC_PORT))
    reject = ("-j", "REJECT")
    rules: list[Rule] = []
    for family in FAMILIES:
        if isinstance(setup, Gateway):
            where = ("-i", setup.interface)
            rules.append(Rule(family, "nat", "PREROUTING", (*where, *tcp, *tag, *redirect)))
            if ruleset.block_quic:
                rules.append(Rule(family, "filter", "FORWARD", (*where, *quic, *tag, *reject)))
        else:
            # Connections to this machine itself are routed through lo, waylay's own listener
            # among them: nothing addressed to it can be sent back to it.
            spec = ("!", "-o", "lo", *tcp, *_exclusion(setup.exclude), *tag, *redirect)
            rules.append(Rule(family, "nat", "OUTPUT", spec))
            if ruleset.block_quic:
                rules.append(Rule(family, "filter", "OUTPUT", (*quic, *tag, *reject)))
    return tuple(rules)


def _exclusion(exclude: ExcludeUser | ExcludeMark) -> tuple[str, ...]:
    if isinstance(exclude, ExcludeUser):
        return ("-m", "owner", "!", "--uid-owner", exclude.user)
    return ("-m", "mark", "!", "--mark", exclude.mark)


def shell_command(rule: Rule, front_end: FrontEnd, operation: str = "-A") -> str:
    """The rule as a command line to paste (a lone ``!`` needs no quotes in any shell)."""
    words = [front_end.command(rule.family), *rule.arguments(operation)]
    return " ".join(word if word == "!" else shlex.quote(word) for word in words)


def rules_command(ruleset: RuleSet, action: str | None = None) -> str:
    """The ``waylay transparent rules`` command for this set, ``--apply`` or ``--remove`` added."""
    setup = ruleset.setup
    words = ["waylay", "transparent", "rules"]
    if isinstance(setup, Gateway):
        words += ["--gateway", setup.interface]
    elif isinstance(setup.exclude, ExcludeUser):
        words += ["--local", "--exclude-user", setup.exclude.user]
    else:
        words += ["--local", "--exclude-mark", setup.exclude.mark]
    if ruleset.proxy_port != DEFAULT_PROXY_PORT:
        words += ["--proxy-port", str(ruleset.proxy_port)]
    if ruleset.ports != DEFAULT_PORTS:
        words += ["--ports", ",".join(ruleset.ports)]
    if ruleset.block_quic:
        words.append("--block-quic")
    return shlex.join([*words, action] if action else words)


def proxy_command(ruleset: RuleSet) -> str:
    """The ``waylay dump`` that these rules feed."""
    setup = ruleset.setup
    words = ["waylay", "dump", "--mode", "transparent", "--listen", f"*:{ruleset.proxy_port}"]
    if isinstance(setup, LocalCapture) and isinstance(setup.exclude, ExcludeMark):
        words += ["--upstream-mark", setup.exclude.mark]
    command = shlex.join(words)
    if isinstance(setup, LocalCapture) and isinstance(setup.exclude, ExcludeUser):
        command = f"sudo -u {shlex.quote(setup.exclude.user)} {command}"
    return command


FORWARDING_SYSCTLS = ("net.ipv4.ip_forward", "net.ipv6.conf.all.forwarding")


def explanation(ruleset: RuleSet) -> list[str]:
    """What the rules do and what else the set-up needs: paragraphs, commands indented."""
    setup, port = ruleset.setup, ruleset.proxy_port
    listed = ",".join(ruleset.ports)
    listen = f"'*:{port}'"
    if isinstance(setup, Gateway):
        iface = setup.interface
        lines = [
            f"waylay transparent mode, gateway: TCP to ports {listed} arriving on {iface} goes "
            f"to waylay on port {port}. A REDIRECT delivers it to {iface}'s primary address, not "
            f"to 127.0.0.1, so waylay must listen on that address: {listen} (every address, IPv4 "
            "and IPv6) does. Run it with:",
            f"  {proxy_command(ruleset)}",
            "The machine must forward the clients' packets (as root):",
            *(f"  sysctl -w {key}=1" for key in FORWARDING_SYSCTLS),
        ]
    else:
        if isinstance(setup.exclude, ExcludeUser):
            user = setup.exclude.user
            whose = f"those of user {user}, so run waylay as {user} (nothing else {user} runs "
            whose += "is captured either)"
        else:
            mark = setup.exclude.mark
            whose = f"those marked {mark}, the mark waylay sets with --upstream-mark {mark}"
        lines = [
            f"waylay transparent mode, local capture: this machine's own TCP connections to "
            f"ports {listed} go to waylay on port {port}, except waylay's own connections to "
            f"servers, which would come straight back to it: here {whose}. Connections to this "
            "machine itself are left alone. IPv4 connections arrive at 127.0.0.1, IPv6 ones at "
            f"::1: {listen} listens on both (127.0.0.1:{port} gets IPv4 only). Run waylay with:",
            f"  {proxy_command(ruleset)}",
        ]
    if ruleset.block_quic:
        lines.append(f"UDP {QUIC_PORT} (QUIC, HTTP/3) is rejected, so browsers fall back to TCP.")
    return lines


def script(ruleset: RuleSet, front_end: FrontEnd | None = None, *, width: int = 96) -> str:
    """The rules as shell commands a user can paste, under a comment that says what else to do."""
    notes = [
        *explanation(ruleset),
        "To apply these rules, and to remove them:",
        f"  {rules_command(ruleset, '--apply')}",
        f"  {rules_command(ruleset, '--remove')}",
    ]
    comment = []
    for note in notes:
        if note.startswith(" "):
            comment.append(f"# {note}")
        else:
            comment += textwrap.wrap(
                note,
                width,
                initial_indent="# ",
                subsequent_indent="# ",
                break_long_words=False,
                break_on_hyphens=False,
            )
    commands = [shell_command(rule, front_end or FrontEnd()) for rule in transparent_rules(ruleset)]
    return "\n".join([*comment, *commands]) + "\n"


# --- applying and removing -----------------------------------------------------------------

Runner = Callable[[Sequence[str]], subprocess.CompletedProcess[str]]


def run_command(command: Sequence[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(command), capture_output=True, text=True, check=False)


class IptablesError(WaylayError):
    """An iptables command failed: the reason names it and quotes what it said."""

    code = "iptables-failed"


@dataclass(frozen=True, slots=True)
class Outcome:
    """How many rules of the set an ``--apply`` or ``--remove`` changed, and how many it left."""

    changed: int
    unchanged: int


def _run(rule: Rule, operation: str, front_end: FrontEnd, run: Runner) -> bool:
    """Run one operation on one rule; for ``-C``, whether the rule is there."""
    command = [front_end.command(rule.family), "-w", str(LOCK_WAIT), *rule.arguments(operation)]
    try:
        result = run(command)
    except FileNotFoundError:
        raise ConfigError(
            f"{command[0]} not found: install iptables, or name the front end to use with "
            "WAYLAY_IPTABLES (iptables-nft, iptables-legacy)"
        ) from None
    # iptables -C: 0 the rule is there, 1 it is not; 2 and above a rule it could not read.
    if operation == "-C" and result.returncode == 1:
        return False
    if result.returncode != 0:
        said = next((line for line in result.stderr.splitlines() if line.strip()), "")
        raise IptablesError(
            f"`{shell_command(rule, front_end, operation)}` exited {result.returncode}: "
            f"{said.strip() or 'no message'}"
        )
    return True


def apply_rules(rules: Iterable[Rule], front_end: FrontEnd, run: Runner = run_command) -> Outcome:
    """Append the rules that are not there yet; on a failure, take back those just added."""
    added: list[Rule] = []
    present = 0
    try:
        for rule in rules:
            if _run(rule, "-C", front_end, run):
                present += 1
            else:
                _run(rule, "-A", front_end, run)
                added.append(rule)
    except (IptablesError, ConfigError):
        for rule in reversed(added):
            _run(rule, "-D", front_end, run)
        raise
    return Outcome(changed=len(added), unchanged=present)


def remove_rules(
    rules: Iterable[Rule], front_end: FrontEnd, run: Runner = run_command, *, limit: int = 100
) -> Outcome:
    """Delete every copy of each rule (a copy added by hand too); others are left alone."""
    removed = absent = 0
    for rule in rules:
        copies = 0
        while copies < limit and _run(rule, "-C", front_end, run):
            _run(rule, "-D", front_end, run)
            copies += 1
        removed += copies
        absent += copies == 0
    return Outcome(changed=removed, unchanged=absent)


def tagged_rules(
    rules: Iterable[Rule], front_end: FrontEnd, run: Runner = run_command
) -> list[str]:
    """The rules tagged ``waylay`` still in the chains of ``rules`` (made with other flags)."""
    found: list[str] = []
    chains = dict.fromkeys((rule.family, rule.table, rule.chain) for rule in rules)
    for family, table, chain in chains:
        command = front_end.command(family)
        result = run([command, "-w", str(LOCK_WAIT), "-t", table, "-S", chain])
        for line in result.stdout.splitlines():
            if re.search(rf"--comment \"?{COMMENT}\"?(\s|$)", line):
                found.append(f"{command} -t {table} {line}")
    return found


def disabled_forwarding(read: Callable[[str], str]) -> list[str]:
    """The forwarding sysctls that are off; ``read`` gets a path under /proc/sys."""
    off = []
    for key in FORWARDING_SYSCTLS:
        try:
            value = read("/proc/sys/" + key.replace(".", "/"))
        except OSError:
            continue
        if value.strip() == "0":
            off.append(key)
    return off
