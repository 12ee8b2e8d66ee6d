"""Connections no client can hoard: idle sockets are closed, and only requests in flight take slots.

uvicorn keeps a new connection open for as long as its client sends nothing, and its `limit_concurrency`
counts open connections: 130 sockets that never send a byte made every request a 503 for as long as they
stayed (round three's finding). Here:

- `idle_closing_protocol` is uvicorn's HTTP protocol with one more timer: a connection whose next request's
  headers are not complete within `header_timeout_s` (after it opens, or after its last response) is closed,
  whether it sent nothing or a trickle of header bytes; past `max_open` open sockets a new one is closed at
  once, so file descriptors are bounded too.
- `InFlightLimit` bounds the requests being handled (the slots working clients need), not the sockets: an idle
  socket holds none, and a request beyond the limit gets 503 with Retry-After.
"""

from __future__ import annotations

import json
import logging
import resource
from typing import Any

log = logging.getLogger(__name__)

HEADER_TIMEOUT_S = 5.0  # a real client sends its request line and headers in milliseconds
FD_RESERVE = 64  # file descriptors kept for the model, logs and the listening socket


def max_open_sockets(cap: int) -> int:
    """`cap`, lowered to what the process's file-descriptor limit leaves after FD_RESERVE."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return max(1, min(cap, soft - FD_RESERVE)) if soft != resource.RLIM_INFINITY else cap


def idle_closing_protocol(header_timeout_s: float, max_open: int) -> type:
    """uvicorn's HTTP protocol class (h11 or httptools, as uvicorn picks) with the header deadline and the cap
    on open sockets described in the module docstring."""
    from uvicorn.protocols.http.auto import AutoHTTPProtocol

    class IdleClosingProtocol(AutoHTTPProtocol):  # type: ignore[misc, valid-type]
        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            self._header_timer = None
            if len(self.connections) > max_open:
                log.warning("%d sockets open, over the cap of %d: closing a new one", len(self.connections), max_open)
                transport.close()
                return
            self._arm()

        def _arm(self) -> None:
            """Close the connection unless a new request's headers are complete within header_timeout_s."""
            if self._header_timer is not None:
                self._header_timer.cancel()
            waiting_after = self.cycle
            self._header_timer = self.loop.call_later(header_timeout_s, self._close_if_idle, waiting_after)

        def _close_if_idle(self, waiting_after: Any) -> None:
            idle = self.cycle is waiting_after and (self.cycle is None or self.cycle.response_complete)
            if idle and not self.transport.is_closing():  # no request began, or none is being answered
                self.transport.close()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing():
                self._arm()

        def connection_lost(self, exc: Exception | None) -> None:
            if getattr(self, "_header_timer", None) is not None:
                self._header_timer.cancel()
            super().connection_lost(exc)

    return IdleClosingProtocol


class InFlightLimit:
    """ASGI middleware: at most `limit` HTTP requests handled at once; more get 503 with Retry-After: 1."""

    def __init__(self, app: Any, limit: int) -> None:
        self.app = app
        self.limit = limit
        self.in_flight = 0

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.in_flight >= self.limit:
            body = json.dumps({"error": f"server busy: {self.limit} requests in flight; retry shortly"}).encode()
            await send({"type": "http.response.start", "status": 503,
                        "headers": [(b"content-type", b"application/json"), (b"retry-after", b"1"),
                                    (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})
            return
        self.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1
