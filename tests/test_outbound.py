"""Where a request goes and what is sent for it, after the addons: tables over the pure module."""

from __future__ import annotations

import pytest

from waylay.flow import Request
from waylay.headers import Headers
from waylay.http1.body import Framing
from waylay.http1.head import RequestHead, Target, parse_request_head
from waylay.outbound import InnerServer, Route, route_for, sent_request

HEAD = parse_request_head(
    b"POST http://api.example.test/v1?x=1 HTTP/1.1\r\nHost: api.example.test\r\n"
    b"Content-Length: 3\r\nExpect: 100-continue\r\n\r\n"
)
TARGET = Target("absolute", "http", "api.example.test", 80, b"/v1?x=1")
LENGTH = Framing("length", 3)


def _request(head: RequestHead = HEAD, *, copy: bool = True) -> Request:
    """The flow's request as the connection makes it: a copy of the fields for addons."""
    return Request(
        head.method.decode(), TARGET.scheme, TARGET.host, TARGET.port, TARGET.path.decode(),
        head.version.decode(), Headers.wrap(list(head.headers) if copy else head.headers),
    )  # fmt: skip


def test_without_addons_the_head_goes_as_it_was_parsed() -> None:
    sent = sent_request(_request(copy=False), HEAD, TARGET, LENGTH, None)
    assert sent.head.headers is HEAD.headers
    assert (sent.head.method, sent.head.target, sent.framing, sent.streamed) == (
        b"POST",
        b"/v1?x=1",
        LENGTH,
        True,
    )


def test_a_body_read_whole_goes_with_its_own_length_and_no_expect() -> None:
    request = _request()
    sent = sent_request(request, HEAD, TARGET, Framing("chunked"), b"changed")
    assert sent.framing == Framing("length", 7) and not sent.streamed
    assert sent.head.headers == [(b"Host", b"api.example.test"), (b"Content-Length", b"7")]


def test_a_body_an_addon_gave_a_bodiless_request_gets_a_length() -> None:
    sent = sent_request(_request(), HEAD, TARGET, Framing("none"), b"new")
    assert sent.framing == Framing("length", 3)
    sent = sent_request(_request(), HEAD, TARGET, Framing("none"), b"")
    assert sent.framing == Framing("none")


def test_a_stream_function_makes_the_body_chunked() -> None:
    request = _request()
    request.stream = bytes.upper
    sent = sent_request(request, HEAD, TARGET, LENGTH, None)
    assert (b"Transfer-Encoding", b"chunked") in sent.head.headers
    assert not any(name.lower() == b"content-length" for name, _ in sent.head.headers)
    assert sent.framing == LENGTH  # what the client sends is still read as it was framed


@pytest.mark.parametrize(
    ("method", "path", "wrong"),
    [
        ("GE T", "/", "is not a method"),
        ("", "/", "is not a method"),
        ("GET", "/caf\u00e9", "not ASCII"),
        ("GET", "relative", "not an origin-form target"),
        ("GET", "/a b", "not an origin-form target"),
        ("GET", "/a#frag", "not an origin-form target"),
        ("GET", "/a\r\nX: 1", "not an origin-form target"),
    ],
)
def test_what_an_addon_cannot_send_is_a_value_error(method: str, path: str, wrong: str) -> None:
    request = _request()
    request.method, request.path = method, path
    with pytest.raises(ValueError, match=wrong):
        sent_request(request, HEAD, TARGET, LENGTH, None)


INNER = InnerServer(
    "https", "www.example.test", 443, "198.18.2.2", "www.example.test", ("http/1.1",)
)


def test_a_request_in_a_tunnel_goes_to_the_tunnels_server() -> None:
    request = _request()
    request.scheme, request.host, request.port = "https", "www.example.test", 443
    target = Target("origin", "https", "www.example.test", 443, b"/")
    route = route_for(request, target, INNER, alpn=("http/1.1",))
    assert route == Route(
        key=("198.18.2.2", 443), host="198.18.2.2", port=443, tls_name="www.example.test",
        server_hostname="www.example.test", alpn=("http/1.1",),
        host_header=b"www.example.test", keep_host=True,
    )  # fmt: skip


def test_a_request_an_addon_sent_elsewhere_leaves_the_tunnel() -> None:
    request = _request()
    request.url = "https://other.example.test:8443/x"
    target = Target("origin", "https", "www.example.test", 443, b"/")
    route = route_for(request, target, INNER, alpn=("http/1.1",))
    assert route.key == ("https://other.example.test", 8443) and not route.keep_host
    assert (route.tls_name, route.host_header) == ("other.example.test", b"other.example.test:8443")


def test_plain_and_tls_connections_to_one_host_port_never_share_a_key() -> None:
    plain = route_for(_request(), TARGET, None, alpn=())
    request = _request()
    request.scheme = "https"
    tls = route_for(request, TARGET, None, alpn=("http/1.1",))
    assert plain.key != tls.key and plain.tls_name is None and tls.tls_name == "api.example.test"
