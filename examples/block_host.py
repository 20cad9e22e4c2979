"""Block the hosts an option lists: a `403` from waylay, or the connection dropped.

    waylay dump -s examples/block_host.py --set blocked_hosts=ads.example.com,tracker.example.com
    waylay dump -s examples/block_host.py --set blocked_hosts=ads.example.com --set block_kill=true

A host blocks its subdomains too (`example.com` blocks `ads.example.com`). Requests are
answered when their head arrives, so a blocked upload is never read; an HTTPS tunnel
(CONNECT) to a blocked host is refused before waylay connects anywhere. waylay's own
`--block '~d ads.example.com'` does the same with a filter expression.
"""

from waylay import Flow, Loader, Response


class BlockHost:
    def load(self, loader: Loader) -> None:
        loader.add_option(
            "blocked_hosts", str, "", "hosts to block, separated by commas (and their subdomains)"
        )
        loader.add_option(
            "block_kill", bool, False, "drop blocked flows (reset the connection) instead of a 403"
        )
        self.options = loader.options

    def is_blocked(self, host: str) -> bool:
        host = host.lower().rstrip(".")
        for blocked in self.options.blocked_hosts.split(","):
            blocked = blocked.strip().lower()
            if blocked and (host == blocked or host.endswith("." + blocked)):
                return True
        return False

    def block(self, flow: Flow) -> None:
        if self.options.block_kill:
            flow.kill()
        else:
            flow.response = Response.make(
                403, f"blocked: {flow.request.pretty_host}\n", {"Content-Type": "text/plain"}
            )

    def http_connect(self, flow: Flow) -> None:
        # The tunnel's host; a non-2xx response refuses the tunnel.
        if self.is_blocked(flow.request.host):
            self.block(flow)

    def requestheaders(self, flow: Flow) -> None:
        # pretty_host: the Host header, which is what the client asked for.
        if self.is_blocked(flow.request.pretty_host):
            self.block(flow)


addons = [BlockHost()]
