"""The iptables rules of transparent mode: what is made for each set-up, and how it is applied.

Tables of (what the user asked for, the rules or the error); applying and removing run
against ``FakeIptables``, a chain store that answers ``-C``, ``-A``, ``-D`` and ``-S`` as
iptables does, so idempotence and exact removal are checked without touching any firewall.
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence

import pytest

from waylay.errors import ConfigError
from waylay.platform.iptables import (
    ExcludeMark,
    ExcludeUser,
    FrontEnd,
    Gateway,
    IptablesError,
    LocalCapture,
    Outcome,
    Rule,
    RuleSet,
    apply_rules,
    check_interface,
    check_user,
    disabled_forwarding,
    explanation,
    parse_mark,
    parse_port,
    parse_ports,
    proxy_command,
    remove_rules,
    rules_command,
    script,
    shell_command,
    tagged_rules,
    transparent_rules,
)

GATEWAY = Gateway("eth0")
BY_USER = LocalCapture(ExcludeUser("waylay"))
BY_MARK = LocalCapture(ExcludeMark("0x1"))

TAG = "-m comment --comment waylay"
REDIRECT_TCP = "-p tcp -m multiport --dports 80,443"

# (rule set, the rules as "FAMILY TABLE CHAIN SPEC"): IPv4's rules, then IPv6's.
RULES = [
    pytest.param(
        RuleSet(GATEWAY),
        [
            f"4 nat PREROUTING -i eth0 {REDIRECT_TCP} {TAG} -j REDIRECT --to-ports 8080",
            f"6 nat PREROUTING -i eth0 {REDIRECT_TCP} {TAG} -j REDIRECT --to-ports 8080",
        ],
        id="gateway",
    ),
    pytest.param(
        RuleSet(Gateway("br-lan"), proxy_port=3128, ports=("80", "8000:8100"), block_quic=True),
        [
            "4 nat PREROUTING -i br-lan -p tcp -m multiport --dports 80,8000:8100 "
            f"{TAG} -j REDIRECT --to-ports 3128",
            f"4 filter FORWARD -i br-lan -p udp --dport 443 {TAG} -j REJECT",
            "6 nat PREROUTING -i br-lan -p tcp -m multiport --dports 80,8000:8100 "
            f"{TAG} -j REDIRECT --to-ports 3128",
            f"6 filter FORWARD -i br-lan -p udp --dport 443 {TAG} -j REJECT",
        ],
        id="gateway-ports-quic",
    ),
    pytest.param(
        RuleSet(BY_USER),
        [
            f"4 nat OUTPUT ! -o lo {REDIRECT_TCP} -m owner ! --uid-owner waylay {TAG} "
            "-j REDIRECT --to-ports 8080",
            f"6 nat OUTPUT ! -o lo {REDIRECT_TCP} -m owner ! --uid-owner waylay {TAG} "
            "-j REDIRECT --to-ports 8080",
        ],
        id="local-user",
    ),
    pytest.param(
        RuleSet(BY_MARK, block_quic=True),
        [
            f"4 nat OUTPUT ! -o lo {REDIRECT_TCP} -m mark ! --mark 0x1 {TAG} "
            "-j REDIRECT --to-ports 8080",
            f"4 filter OUTPUT -p udp --dport 443 {TAG} -j REJECT",
            f"6 nat OUTPUT ! -o lo {REDIRECT_TCP} -m mark ! --mark 0x1 {TAG} "
            "-j REDIRECT --to-ports 8080",
            f"6 filter OUTPUT -p udp --dport 443 {TAG} -j REJECT",
        ],
        id="local-mark-quic",
    ),
]


@pytest.mark.parametrize(("ruleset", "expected"), RULES)
def test_rules_of_each_setup(ruleset: RuleSet, expected: list[str]) -> None:
    made = [
        f"{rule.family} {rule.table} {rule.chain} {' '.join(rule.spec)}"
        for rule in transparent_rules(ruleset)
    ]
    assert made == expected


@pytest.mark.parametrize(("ruleset", "expected"), RULES)
def test_every_rule_is_tagged_and_printed(ruleset: RuleSet, expected: list[str]) -> None:
    rules = transparent_rules(ruleset)
    assert all(" ".join(rule.spec).count(TAG) == 1 for rule in rules)
    text = script(ruleset)
    commands = [line for line in text.splitlines() if not line.startswith("#")]
    assert commands == [shell_command(rule, FrontEnd()) for rule in rules]
    assert len(commands) == len(expected)


def test_shell_command_quotes_what_a_shell_would_mangle() -> None:
    rule = Rule(4, "nat", "OUTPUT", ("!", "-o", "lo", "-m", "owner", "!", "--uid-owner", "a$"))
    assert shell_command(rule, FrontEnd()) == (
        "iptables -t nat -A OUTPUT ! -o lo -m owner ! --uid-owner 'a$'"
    )
    assert shell_command(rule, FrontEnd.named("iptables-legacy"), "-D").startswith(
        "iptables-legacy -t nat -D OUTPUT"
    )


# --- what the printed text tells the user ------------------------------------------------


@pytest.mark.parametrize(
    ("ruleset", "command"),
    [
        (RuleSet(GATEWAY), "waylay dump --mode transparent --listen '*:8080'"),
        (RuleSet(GATEWAY, proxy_port=3128), "waylay dump --mode transparent --listen '*:3128'"),
        (
            RuleSet(BY_MARK),
            "waylay dump --mode transparent --listen '*:8080' --upstream-mark 0x1",
        ),
        (RuleSet(BY_USER), "sudo -u waylay waylay dump --mode transparent --listen '*:8080'"),
    ],
)
def test_the_proxy_command_matches_the_rules(ruleset: RuleSet, command: str) -> None:
    assert proxy_command(ruleset) == command
    assert f"#   {command}" in script(ruleset).splitlines()


@pytest.mark.parametrize(
    ("ruleset", "command"),
    [
        (RuleSet(GATEWAY), "waylay transparent rules --gateway eth0"),
        (RuleSet(BY_USER), "waylay transparent rules --local --exclude-user waylay"),
        (
            RuleSet(BY_MARK, proxy_port=9000, ports=("443",), block_quic=True),
            "waylay transparent rules --local --exclude-mark 0x1 --proxy-port 9000 --ports 443 "
            "--block-quic",
        ),
    ],
)
def test_rules_command_repeats_only_what_differs_from_the_defaults(
    ruleset: RuleSet, command: str
) -> None:
    assert rules_command(ruleset) == command
    lines = script(ruleset).splitlines()
    assert f"#   {command} --apply" in lines
    assert f"#   {command} --remove" in lines


def test_gateway_text_names_the_listen_address_and_the_sysctls() -> None:
    text = " ".join(explanation(RuleSet(GATEWAY)))
    assert "not to 127.0.0.1" in text
    assert "'*:8080'" in text
    lines = script(RuleSet(GATEWAY)).splitlines()
    assert "#   sysctl -w net.ipv4.ip_forward=1" in lines
    assert "#   sysctl -w net.ipv6.conf.all.forwarding=1" in lines


@pytest.mark.parametrize("setup", [BY_USER, BY_MARK])
def test_local_text_says_why_waylay_is_excluded_and_where_ipv6_arrives(
    setup: LocalCapture,
) -> None:
    text = " ".join(explanation(RuleSet(setup)))
    assert "would come straight back to it" in text
    assert "::1" in text and "127.0.0.1:8080 gets IPv4 only" in text
    assert "sysctl" not in script(RuleSet(setup))


def test_quic_blocking_is_announced() -> None:
    assert "QUIC" not in script(RuleSet(GATEWAY))
    assert "UDP 443 (QUIC, HTTP/3) is rejected" in script(RuleSet(GATEWAY, block_quic=True))


@pytest.mark.parametrize("ruleset", [param.values[0] for param in RULES])
def test_comment_lines_fit_a_terminal(ruleset: RuleSet) -> None:
    for line in script(ruleset).splitlines():
        if line.startswith("#") and not line.startswith("#   "):
            assert len(line) <= 98, line


# --- what the user typed -------------------------------------------------------------------

PORTS = [
    ("80,443", ("80", "443")),
    ("443", ("443",)),
    (" 80 , 443 ", ("80", "443")),
    ("8000:8100,443", ("8000:8100", "443")),
    ("8080:8080", ("8080",)),
    ("1,65535", ("1", "65535")),
    (",".join(str(p) for p in range(1, 16)), tuple(str(p) for p in range(1, 16))),
]
BAD_PORTS = [
    ("", "expected ports"),
    ("80,", "expected ports"),
    ("http", "expected ports"),
    ("0", "expected ports"),
    ("65536", "expected ports"),
    ("-1", "expected ports"),
    ("80;443", "expected ports"),
    ("8100:8000", "ends before it starts"),
    ("80,80", "listed twice"),
    ("\uff11", "expected ports"),  # a fullwidth digit one
    (",".join(str(p) for p in range(1, 17)), "at most 15 ports"),
    ("1:2,3:4,5:6,7:8,9:10,11:12,13:14,15:16", "at most 15 ports"),
]


@pytest.mark.parametrize(("text", "ports"), PORTS)
def test_ports(text: str, ports: tuple[str, ...]) -> None:
    assert parse_ports(text) == ports


@pytest.mark.parametrize(("text", "reason"), BAD_PORTS)
def test_bad_ports(text: str, reason: str) -> None:
    with pytest.raises(ConfigError, match=reason) as caught:
        parse_ports(text)
    assert caught.value.reason.startswith(f"--ports {text!r}")


@pytest.mark.parametrize(("text", "port"), [("8080", 8080), ("1", 1), ("65535", 65535)])
def test_proxy_port(text: str, port: int) -> None:
    assert parse_port("--proxy-port", text) == port


@pytest.mark.parametrize("text", ["0", "65536", "", "x", "80.0", "-8080", "٨٠"])
def test_bad_proxy_port(text: str) -> None:
    with pytest.raises(ConfigError, match=r"--proxy-port .*expected a port from 1 to 65535"):
        parse_port("--proxy-port", text)


@pytest.mark.parametrize(
    ("text", "mark"),
    [("1", "1"), ("010", "10"), ("4294967295", "4294967295"), ("0x10", "0x10"), ("0XfF", "0xff")],
)
def test_marks_keep_the_users_base(text: str, mark: str) -> None:
    assert parse_mark(text) == mark


@pytest.mark.parametrize(
    "text", ["0", "0x0", "-1", "4294967296", "0x100000000", "0x", "", "mark", "1.5", " 1", "+1"]
)
def test_bad_marks(text: str) -> None:
    with pytest.raises(ConfigError, match=r"--exclude-mark .*1 to 0xffffffff"):
        parse_mark(text)


@pytest.mark.parametrize("name", ["eth0", "br-lan", "wlp3s0", "eth0.100", "veth+", "a" * 15])
def test_interfaces(name: str) -> None:
    assert check_interface(name) == name


@pytest.mark.parametrize("name", ["", "a" * 16, "eth 0", "a/b", "eth0:1", ".", "..", "-i", "!x"])
def test_bad_interfaces(name: str) -> None:
    with pytest.raises(ConfigError, match=r"--gateway .*network interface name"):
        check_interface(name)


@pytest.mark.parametrize("name", ["waylay", "nobody", "_apt", "user.name", "machine$", "1000"])
def test_users(name: str) -> None:
    assert check_user(name) == name


@pytest.mark.parametrize("name", ["", "-u", "a b", "!root", "a:b", "x" * 40, "root;"])
def test_bad_users(name: str) -> None:
    with pytest.raises(ConfigError, match=r"--exclude-user .*user name or a numeric uid"):
        check_user(name)


@pytest.mark.parametrize(
    ("command", "ipv4", "ipv6"),
    [
        ("iptables", "iptables", "ip6tables"),
        ("iptables-legacy", "iptables-legacy", "ip6tables-legacy"),
        ("iptables-nft", "iptables-nft", "ip6tables-nft"),
        ("/usr/sbin/iptables-legacy", "/usr/sbin/iptables-legacy", "/usr/sbin/ip6tables-legacy"),
        ("/opt/iptables/bin/iptables", "/opt/iptables/bin/iptables", "/opt/iptables/bin/ip6tables"),
    ],
)
def test_front_end_names_its_ipv6_twin(command: str, ipv4: str, ipv6: str) -> None:
    assert FrontEnd.named(command) == FrontEnd(ipv4, ipv6)
    assert FrontEnd.from_environment({"WAYLAY_IPTABLES": command}) == FrontEnd(ipv4, ipv6)


@pytest.mark.parametrize("command", ["nft", "ip6tables", "ip6tables-legacy", "/usr/sbin/"])
def test_front_end_must_be_an_iptables(command: str) -> None:
    with pytest.raises(ConfigError, match="WAYLAY_IPTABLES"):
        FrontEnd.named(command)


def test_front_end_default() -> None:
    assert FrontEnd.from_environment({}) == FrontEnd("iptables", "ip6tables")
    assert FrontEnd.from_environment({"WAYLAY_IPTABLES": ""}) == FrontEnd()


# --- applying and removing, against a fake iptables ------------------------------------------


class FakeIptables:
    """Chains of rules per command, answering like iptables; ``fail`` makes one command fail."""

    def __init__(self) -> None:
        self.chains: dict[tuple[str, str, str], list[tuple[str, ...]]] = {}
        self.calls: list[list[str]] = []
        self.fail: tuple[str, ...] | None = None

    def add(self, command: str, table: str, chain: str, *spec: str) -> None:
        self.chains.setdefault((command, table, chain), []).append(spec)

    def __call__(self, argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
        argv = list(argv)
        self.calls.append(argv)
        command, wait, seconds, t, table, operation, chain, *spec = argv
        assert (wait, seconds, t) == ("-w", "10", "-t"), argv
        if self.fail is not None and tuple(argv[:6]) == self.fail[:6]:
            return subprocess.CompletedProcess(argv, 2, "", "iptables: Bad argument.\nTry it\n")
        rules = self.chains.setdefault((command, table, chain), [])
        if operation == "-C":
            return subprocess.CompletedProcess(argv, 0 if tuple(spec) in rules else 1, "", "")
        if operation == "-A":
            rules.append(tuple(spec))
        elif operation == "-D":
            if tuple(spec) not in rules:
                return subprocess.CompletedProcess(argv, 1, "", "iptables: Bad rule.")
            rules.remove(tuple(spec))
        elif operation == "-S":
            listing = "".join(f"-A {chain} {' '.join(rule)}\n" for rule in rules)
            return subprocess.CompletedProcess(argv, 0, f"-P {chain} ACCEPT\n{listing}", "")
        return subprocess.CompletedProcess(argv, 0, "", "")

    def tagged(self) -> int:
        return sum(TAG in " ".join(rule) for rules in self.chains.values() for rule in rules)


UNRELATED = ("-p", "tcp", "--dport", "22", "-j", "ACCEPT")


@pytest.mark.parametrize("ruleset", [param.values[0] for param in RULES])
def test_apply_is_idempotent_and_remove_takes_exactly_its_rules(ruleset: RuleSet) -> None:
    fake = FakeIptables()
    rules = transparent_rules(ruleset)
    for rule in rules:
        fake.add(FrontEnd().command(rule.family), rule.table, rule.chain, *UNRELATED)
    assert apply_rules(rules, FrontEnd(), fake) == Outcome(changed=len(rules), unchanged=0)
    before = {key: list(value) for key, value in fake.chains.items()}
    assert apply_rules(rules, FrontEnd(), fake) == Outcome(changed=0, unchanged=len(rules))
    assert fake.chains == before
    # A copy added by hand goes too; the unrelated rules stay, in place.
    fake.add("iptables", rules[0].table, rules[0].chain, *rules[0].spec)
    assert remove_rules(rules, FrontEnd(), fake) == Outcome(changed=len(rules) + 1, unchanged=0)
    assert fake.tagged() == 0
    assert all(value == [UNRELATED] for value in fake.chains.values() if value)
    assert remove_rules(rules, FrontEnd(), fake) == Outcome(changed=0, unchanged=len(rules))


def test_apply_uses_the_front_end_for_each_family() -> None:
    fake = FakeIptables()
    apply_rules(transparent_rules(RuleSet(GATEWAY)), FrontEnd.named("iptables-legacy"), fake)
    assert {call[0] for call in fake.calls} == {"iptables-legacy", "ip6tables-legacy"}
    assert ("iptables-legacy", "nat", "PREROUTING") in fake.chains
    assert ("ip6tables-legacy", "nat", "PREROUTING") in fake.chains


def test_a_failed_apply_takes_back_what_it_added() -> None:
    fake = FakeIptables()
    rules = transparent_rules(RuleSet(GATEWAY, block_quic=True))
    already = rules[0]
    fake.add("iptables", already.table, already.chain, *already.spec)
    # The third rule (IPv6's nat rule) cannot be added: the IPv4 filter rule added just before
    # is taken back; the rule that was there before is left.
    fake.fail = ("ip6tables", "-w", "10", "-t", "nat", "-A")
    with pytest.raises(IptablesError) as caught:
        apply_rules(rules, FrontEnd(), fake)
    assert caught.value.reason == (
        f"`{shell_command(rules[2], FrontEnd())}` exited 2: iptables: Bad argument."
    )
    assert fake.chains[("iptables", "nat", "PREROUTING")] == [already.spec]
    assert fake.chains[("iptables", "filter", "FORWARD")] == []


def test_a_check_that_cannot_read_the_rule_is_an_error_not_an_absence() -> None:
    fake = FakeIptables()
    fake.fail = ("iptables", "-w", "10", "-t", "nat", "-C")
    with pytest.raises(IptablesError, match="exited 2"):
        remove_rules(transparent_rules(RuleSet(GATEWAY)), FrontEnd(), fake)


def test_a_missing_command_is_a_config_error() -> None:
    def missing(argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
        raise FileNotFoundError(argv[0])

    with pytest.raises(ConfigError, match=r"iptables-legacy not found.*WAYLAY_IPTABLES"):
        apply_rules(transparent_rules(RuleSet(GATEWAY)), FrontEnd.named("iptables-legacy"), missing)


def test_tagged_rules_made_with_other_flags_are_reported() -> None:
    fake = FakeIptables()
    other = transparent_rules(RuleSet(GATEWAY, ports=("8443",)))
    apply_rules(other, FrontEnd(), fake)
    fake.add("iptables", "nat", "PREROUTING", *UNRELATED)
    fake.add("iptables", "nat", "PREROUTING", "-m", "comment", "--comment", "waylay-other")
    ours = transparent_rules(RuleSet(GATEWAY))
    assert remove_rules(ours, FrontEnd(), fake) == Outcome(changed=0, unchanged=2)
    found = tagged_rules(ours, FrontEnd(), fake)
    assert found == [
        f"iptables -t nat -A PREROUTING {' '.join(other[0].spec)}",
        f"ip6tables -t nat -A PREROUTING {' '.join(other[1].spec)}",
    ]


@pytest.mark.parametrize(
    ("values", "off"),
    [
        ({"ipv4/ip_forward": "1\n", "ipv6/conf/all/forwarding": "1\n"}, []),
        ({"ipv4/ip_forward": "0\n", "ipv6/conf/all/forwarding": "1\n"}, ["net.ipv4.ip_forward"]),
        ({"ipv4/ip_forward": "1\n"}, []),
        (
            {"ipv4/ip_forward": "0\n", "ipv6/conf/all/forwarding": "0\n"},
            ["net.ipv4.ip_forward", "net.ipv6.conf.all.forwarding"],
        ),
    ],
)
def test_disabled_forwarding(values: dict[str, str], off: list[str]) -> None:
    def read(path: str) -> str:
        try:
            return values[path.removeprefix("/proc/sys/net/")]
        except KeyError:
            raise FileNotFoundError(path) from None

    assert disabled_forwarding(read) == off
