"""HTTP API of the reports: ``GET /reports/queues|agents|abandoned``.

Query parameters: ``from`` (required), ``to``, ``interval`` (15, 30, 60, day), ``tz``,
``queue``, ``agent``, ``sl_threshold``, ``sl_variant``, ``short_abandon`` (see
``crm_bridge.reports``). JSON by default; CSV with ``Accept: text/csv`` or ``format=csv``. A bad
parameter is answered 422 with a stable error id (``bad_parameter``) and the key at fault
(raised as ``InvalidQuery``, answered by the one error middleware, ``agent_console.http``).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from crm_bridge.reports import build, parse_params, rows_to_csv, rows_to_dicts
from cti.errors import ConfigError, InvalidQuery

__all__ = ["add_routes"]

_PARAMS = ("interval", "tz", "queue", "agent", "sl_threshold", "sl_variant", "short_abandon")


def add_routes(
    app: web.Application, engine: AsyncEngine, *, clock: Callable[[], float] = time.time
) -> None:
    """Register the three report endpoints on ``app``, reading from ``engine``; ``clock``
    says where agents' open states end (now)."""

    def handler(kind: str) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def handle(request: web.Request) -> web.StreamResponse:
            query = request.query
            try:
                params = parse_params(
                    query.get("from"),
                    query.get("to"),
                    **{name: query.get(name) for name in _PARAMS},
                )
            except ConfigError as exc:
                raise InvalidQuery(str(exc), exc.key) from exc
            rows = await build(engine, kind, params, now=clock())
            wants_csv = query.get("format") == "csv" or "text/csv" in request.headers.get(
                "Accept", ""
            )
            if wants_csv:
                return web.Response(text=rows_to_csv(rows), content_type="text/csv")
            return web.json_response({"report": kind, "rows": rows_to_dicts(rows)})

        return handle

    for kind in ("queues", "agents", "abandoned"):
        app.router.add_get(f"/reports/{kind}", handler(kind))
