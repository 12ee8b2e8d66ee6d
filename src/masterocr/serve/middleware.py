"""ASGI middleware bounding how long a client may take to send its request body.

A client that drip-feeds its body would otherwise hold a connection and its buffers for as long as it likes.
Each body chunk must arrive within `chunk_timeout_s` and the whole body within `body_timeout_s`; past either,
the endpoint's read raises BodyTimeout, which the app answers with 408 and `Connection: close`, so the server
lets the connection go.
"""

from __future__ import annotations

import asyncio
from typing import Any

from masterocr.serve.limits import RequestError

Scope = dict[str, Any]
Message = dict[str, Any]


class BodyTimeout(RequestError):
    """The client did not send its body in time (408)."""

    def __init__(self, message: str) -> None:
        super().__init__(408, message, headers={"Connection": "close"})


class BodyTimeoutMiddleware:
    """Wraps `receive` of every HTTP request with a per-chunk and a total deadline until the body is complete."""

    def __init__(self, app: Any, body_timeout_s: float, chunk_timeout_s: float) -> None:
        self.app = app
        self.body_timeout_s = body_timeout_s
        self.chunk_timeout_s = min(chunk_timeout_s, body_timeout_s)

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.body_timeout_s
        body_done = False

        async def timed_receive() -> Message:
            nonlocal body_done
            if body_done:  # after the body only http.disconnect comes, whenever the client goes
                return await receive()
            remaining = deadline - loop.time()
            wait = max(0.0, min(self.chunk_timeout_s, remaining))
            try:
                message = await asyncio.wait_for(receive(), wait)
            except asyncio.TimeoutError:
                which = "the request body" if wait == remaining or remaining <= 0 else "a body chunk"
                limit = self.body_timeout_s if which == "the request body" else self.chunk_timeout_s
                raise BodyTimeout(f"{which} took longer than {limit:g} s to arrive; send it faster") from None
            if message["type"] != "http.request" or not message.get("more_body", False):
                body_done = True
            return message

        await self.app(scope, timed_receive, send)
