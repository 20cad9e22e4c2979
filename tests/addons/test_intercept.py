"""--intercept on flows built here: paused at the request, at the response, or both."""

from __future__ import annotations

import pytest

from waylay.addons.intercept import Intercept
from waylay.filters import parse_filter
from waylay.hooks import HookTable

from .sample_flows import request_flow, respond

# (filter, paused at the request, paused at the response)
CASES = [
    ("~d origin.example.test", True, True),
    ("~q", True, False),
    ("~s", False, True),
    ("~c 200", False, True),
    ("~c 404", False, False),
    ("~m POST", False, False),
    ("~bq hello", True, True),  # the request's body is still there at the response
    ("~bs hello", False, False),
]


@pytest.mark.parametrize(("expression", "at_request", "at_response"), CASES)
def test_pauses(expression: str, at_request: bool, at_response: bool) -> None:
    addon = Intercept(parse_filter(expression))
    flow = request_flow("http://origin.example.test/", body=b"hello")
    addon.request(flow)
    assert flow.intercepted is at_request
    flow.resume()
    respond(flow, 200, body=b"bye")
    addon.response(flow)
    assert flow.intercepted is at_response


def test_resume_wakes_the_waiter() -> None:
    flow = request_flow()
    Intercept(parse_filter("~q")).request(flow)
    woken: list[bool] = []
    flow._on_resume = lambda: woken.append(True)
    flow.resume()
    assert woken == [True] and not flow.intercepted


def test_replayed_and_killed_flows_are_not_paused() -> None:
    addon = Intercept(parse_filter("~all"))
    replayed = request_flow()
    replayed.replay_of = 7
    addon.request(replayed)
    assert not replayed.intercepted
    killed = request_flow()
    killed.kill()
    addon.request(killed)
    assert not killed.intercepted


def test_hooks() -> None:
    table = HookTable([Intercept(parse_filter("~q"))])
    assert len(table.request) == len(table.response) == 1
    assert table.requestheaders == table.responseheaders == table.http_connect == ()
