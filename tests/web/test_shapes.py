"""SUMMARY and DETAIL (docs/web.md): every key the contract names, and what each holds."""

from __future__ import annotations

from waylay.flow import Error, Flow, Request, Response, Timestamps, TlsDetails
from waylay.headers import Headers
from waylay.store.schema import REQUEST_BODY, RESPONSE_BODY, RESPONSE_TRUNCATED
from waylay.web.shapes import detail, summary

SUMMARY_KEYS = {
    "id", "kind", "started", "duration", "method", "url", "scheme", "host", "port", "path",
    "status", "reason", "content_type", "request_size", "response_size", "error",
}  # fmt: skip
DETAIL_KEYS = SUMMARY_KEYS | {
    "client", "server", "http_version", "timestamps", "tls", "request", "response",
}  # fmt: skip


def _flow() -> Flow:
    request = Request(
        "POST", "https", "api.example.test", 8443, "/v1/items?q=1", "HTTP/1.1",
        Headers([(b"Host", b"api.example.test:8443"), (b"X-Cafe", b"cr\xe8me")]),
    )  # fmt: skip
    flow = Flow(
        ("127.0.0.1", 51000),
        request,
        server_address=("127.0.0.1", 8443),
        timestamps=Timestamps(start=100.0, end=100.25),
        request_body_size=12,
        response_body_size=3000,
        store_id=42,
    )
    flow.response = Response(
        201, "Created", "HTTP/1.1",
        Headers([(b"Content-Type", b"application/json"), (b"Content-Encoding", b"gzip")]),
        trailers=Headers([(b"X-Checksum", b"abc")]),
    )  # fmt: skip
    return flow


def test_a_summary_has_the_contract_keys() -> None:
    shown = summary(_flow())
    assert set(shown) == SUMMARY_KEYS
    assert shown == {
        "id": 42,
        "kind": "http",
        "started": 100.0,
        "duration": 0.25,
        "method": "POST",
        "url": "https://api.example.test:8443/v1/items?q=1",
        "scheme": "https",
        "host": "api.example.test",
        "port": 8443,
        "path": "/v1/items?q=1",
        "status": 201,
        "reason": "Created",
        "content_type": "application/json",
        "request_size": 12,
        "response_size": 3000,
        "error": None,
    }


def test_a_detail_has_the_fields_in_order_as_latin_1_and_unknown_times_as_null() -> None:
    flow = _flow()
    flow.capture_flags = RESPONSE_TRUNCATED
    shown = detail(flow, stored={REQUEST_BODY: 12, RESPONSE_BODY: 1024})
    assert set(shown) == DETAIL_KEYS
    assert shown["client"] == ["127.0.0.1", 51000]
    assert shown["server"] == ["127.0.0.1", 8443]
    assert shown["http_version"] == "HTTP/1.1"
    assert shown["timestamps"] == {
        "start": 100.0,
        "request_sent": None,
        "first_response_byte": None,
        "end": 100.25,
    }
    assert shown["tls"] == {"client": None, "server": None}
    assert shown["request"] == {
        "headers": [["Host", "api.example.test:8443"], ["X-Cafe", "crème"]],
        "trailers": None,
        "size": 12,
        "truncated": False,
    }
    assert shown["response"] == {
        "headers": [["Content-Type", "application/json"], ["Content-Encoding", "gzip"]],
        "trailers": [["X-Checksum", "abc"]],
        "size": 3000,
        "truncated": True,
        "status": 201,
        "reason": "Created",
        "http_version": "HTTP/1.1",
    }


def test_a_body_that_went_by_with_nothing_stored_is_truncated() -> None:
    shown = detail(_flow(), stored={})  # --body-limit 0
    assert shown["request"]["truncated"] and shown["response"]["truncated"]


def test_a_failed_flow_and_a_live_one() -> None:
    flow = _flow()
    flow.response = None
    flow.server_address = None
    flow.error = Error("connection refused by api.example.test:8443", "connection-refused")
    shown = detail(flow, live=True)
    assert shown["id"] is None
    assert shown["response"] is None and shown["server"] is None
    assert shown["status"] is None and shown["content_type"] is None
    assert shown["error"] == {
        "reason": "connection refused by api.example.test:8443",
        "code": "connection-refused",
    }


def test_a_detail_has_the_middle_moments_and_each_sides_tls() -> None:
    flow = _flow()
    flow.timestamps = Timestamps(
        start=100.0, request_sent=100.05, first_response_byte=100.2, end=100.25
    )
    flow.client_tls = TlsDetails("TLSv1.3", "http/1.1", "api.example.test", ("api.example.test",))
    flow.server_tls = TlsDetails(
        "TLSv1.3",
        None,
        sni="api.example.test",
        cert_names=("api.example.test", "*.example.test"),
        issuer="CN=Example CA,O=Example",
        not_before=1700000000.0,
        not_after=1800000000.0,
    )
    shown = detail(flow)
    assert shown["timestamps"] == {
        "start": 100.0,
        "request_sent": 100.05,
        "first_response_byte": 100.2,
        "end": 100.25,
    }
    assert shown["tls"] == {
        "client": {
            "version": "TLSv1.3",
            "alpn": "http/1.1",
            "sni": "api.example.test",
            "cert_names": ["api.example.test"],
            "issuer": None,
            "not_before": None,
            "not_after": None,
        },
        "server": {
            "version": "TLSv1.3",
            "alpn": None,
            "sni": "api.example.test",
            "cert_names": ["api.example.test", "*.example.test"],
            "issuer": "CN=Example CA,O=Example",
            "not_before": 1700000000.0,
            "not_after": 1800000000.0,
        },
    }
