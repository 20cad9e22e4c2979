"""`waylay flows FILE`: the flows of a flow database, as dump lines or as JSON lines.

The lines are `waylay dump`'s (the same Dumper), so what a user saw live and what they list
later read the same. JSON gives one object per flow and line, for `jq` and scripts.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, TextIO

from waylay.addons.dumper import Dumper
from waylay.filters import Filter, register_functions
from waylay.flow import Flow
from waylay.store.reader import iter_flows, open_readonly


def flow_json(flow: Flow) -> dict[str, Any]:
    request, response, error = flow.request, flow.response, flow.error
    return {
        "id": flow.store_id,
        "kind": flow.kind,
        "started": flow.timestamps.start,
        "duration": round(flow.duration, 6),
        "request_sent": flow.timestamps.request_sent or None,
        "first_response_byte": flow.timestamps.first_response_byte or None,
        "client": list(flow.client_address),
        "server": list(flow.server_address) if flow.server_address else None,
        "method": request.method,
        "url": request.url,
        "http_version": request.http_version,
        "status": response.status_code if response else None,
        "reason": response.reason if response else None,
        "request_size": flow.request_body_size,
        "response_size": flow.response_body_size,
        "error": {"reason": error.reason, "code": error.code} if error else None,
        "flags": flow.capture_flags,
        "replay_of": flow.replay_of,
    }


def list_flows(
    path: Path, out: TextIO, *, as_json: bool = False, only: Filter | None = None
) -> int:
    """Write the flows of ``path`` (those ``only`` matches) to ``out``; the number written."""
    db = open_readonly(path)
    where, params = only.to_sql() if only is not None else ("", [])
    register_functions(db)
    dumper = Dumper(out)
    count = 0
    try:
        # Lines and JSON show no fields: the heads are not read.
        for flow in iter_flows(db, where, params, headers=False):
            count += 1
            if as_json:
                out.write(json.dumps(flow_json(flow), ensure_ascii=False) + "\n")
            elif flow.kind == "tcp" and flow.error is None:
                dumper.tcp_end(flow)
            elif flow.response is not None:
                dumper.response(flow)
            elif flow.error is not None:
                dumper.error(flow)
    finally:
        db.close()
    return count
