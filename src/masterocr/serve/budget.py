"""A budget of decoded pixels shared by all requests, and when to hand freed decode memory back to the system.

Each request reserves the pixel count its image headers claim before any pixel is decoded and releases it once
its images are model-sized tensors, so the memory spent on decoding at once is bounded whatever the number of
concurrent requests. A request that cannot be served within the wait gets 503 + Retry-After; one larger than the
whole budget gets 413 straight away.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from masterocr.serve.limits import RequestError

# a request whose decoded images reach this many pixels is followed by a trim: freed decode buffers would
# otherwise stay in the allocator's arenas and the process would keep its peak RSS
TRIM_PIXELS = 4_000_000


class PixelBudget:
    """At most `total` decoded pixels in flight; a reservation waits up to `wait_s` for room."""

    def __init__(self, total: int, wait_s: float) -> None:
        if total < 1:
            raise ValueError(f"max_pixels_in_flight must be at least 1, got {total}")
        self.total = total
        self.wait_s = max(0.0, wait_s)
        self.used = 0
        self._cond: asyncio.Condition | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _condition(self) -> asyncio.Condition:
        # a Condition belongs to one loop; a TestClient without `with` runs each request on its own loop
        loop = asyncio.get_running_loop()
        if self._cond is None or self._loop is not loop:
            self._cond, self._loop = asyncio.Condition(), loop
        return self._cond

    @contextlib.asynccontextmanager
    async def reserve(self, pixels: int) -> AsyncIterator[None]:
        """Hold `pixels` of the budget for the duration of the block (413 above the budget, 503 after the wait)."""
        if pixels > self.total:
            raise RequestError(413, f"the images have {pixels} pixels in all, more than the server decodes at "
                                    f"once ({self.total}); send fewer or smaller images per request")
        cond = self._condition()
        async with cond:
            try:
                if self.used + pixels > self.total:  # wait_for(..., 0) would time out even with room
                    await asyncio.wait_for(cond.wait_for(lambda: self.used + pixels <= self.total), self.wait_s)
            except asyncio.TimeoutError:
                raise RequestError(503, f"server busy: {self.used} pixels being decoded (limit {self.total}); "
                                        "retry shortly", headers={"Retry-After": "1"}) from None
            self.used += pixels
        try:
            yield
        finally:
            async with cond:
                self.used -= pixels
                cond.notify_all()
