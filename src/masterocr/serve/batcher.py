"""Dynamic batching: a bounded queue of single images and one worker task that decodes them in batches.

Requests put one item per image on the queue; the worker takes up to `max_batch` items (waiting at most
`max_wait_ms` for more after the first), batches them (the model input's rule: stacked, or lines padded) and
decodes them on a single worker thread, so the event loop stays free.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import torch

from masterocr.errors import UserError
from masterocr.runtime.base import BaseRecognizer, Prediction
from masterocr.serve.limits import RequestError

log = logging.getLogger(__name__)


@dataclass
class _Item:
    """One queued image and the future its request awaits."""

    tensor: torch.Tensor
    future: asyncio.Future
    attention: bool


class Batcher:
    """Bounded queue plus one worker task that decodes items in batches on a single worker thread."""

    def __init__(self, recognizer: BaseRecognizer, max_batch: int, max_wait_ms: float, max_queue: int) -> None:
        if max_batch < 1 or max_queue < 1:
            raise UserError(f"max_batch ({max_batch}) and max_queue ({max_queue}) must be at least 1")
        self.recognizer = recognizer
        self.max_batch = max_batch
        self.max_wait = max(0.0, max_wait_ms) / 1000.0
        self.max_queue = max_queue
        self.executor: ThreadPoolExecutor | None = None
        self.queue: asyncio.Queue[_Item] | None = None
        self.task: asyncio.Task | None = None
        self.loop: asyncio.AbstractEventLoop | None = None

    def start(self) -> None:
        """Start the worker on the running loop (again if the loop changed, e.g. a TestClient without `with`)."""
        loop = asyncio.get_running_loop()
        if self.loop is loop and self.task is not None and not self.task.done():
            return
        self.loop = loop
        if self.executor is None:
            self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="masterocr-decode")
        self.queue = asyncio.Queue(maxsize=self.max_queue)
        self.task = loop.create_task(self._run(), name="masterocr-batcher")

    async def stop(self) -> None:
        """Cancel the worker and shut its thread down."""
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
        self.task = None
        if self.executor is not None:  # its thread would outlive the app (and every later fork would copy it)
            self.executor.shutdown(wait=False, cancel_futures=True)
            self.executor = None

    def submit(self, tensors: list[torch.Tensor], attention: bool) -> list[asyncio.Future]:
        """Queue all tensors of one request, or none: 503 when the queue cannot take them all."""
        self.start()
        assert self.queue is not None and self.loop is not None
        if self.queue.qsize() + len(tensors) > self.max_queue:
            raise RequestError(
                503,
                f"server busy: {self.queue.qsize()} images queued (limit {self.max_queue}); retry shortly",
                headers={"Retry-After": "1"},
            )
        futures = []
        for t in tensors:  # no await in between: the size check above still holds
            fut = self.loop.create_future()
            self.queue.put_nowait(_Item(t, fut, attention))
            futures.append(fut)
        return futures

    async def _collect(self) -> list[_Item]:
        assert self.queue is not None and self.loop is not None
        items = [await self.queue.get()]
        deadline = self.loop.time() + self.max_wait
        while len(items) < self.max_batch:
            remaining = deadline - self.loop.time()
            try:
                if remaining <= 0:
                    items.append(self.queue.get_nowait())
                else:
                    items.append(await asyncio.wait_for(self.queue.get(), remaining))
            except (asyncio.QueueEmpty, asyncio.TimeoutError):
                break
        return [it for it in items if not it.future.done()]  # timed-out requests cancel their futures

    def _predict(self, tensors: list[torch.Tensor], attention: bool) -> list[Prediction]:
        batch, widths = self.recognizer.model_input.batch(tensors)  # lines: padded, the padding masked
        return self.recognizer.predict_tensors(batch, return_attention=attention, widths=widths)

    async def _run(self) -> None:
        assert self.loop is not None
        while True:
            items = await self._collect()
            if not items:
                continue
            attention = any(it.attention for it in items)
            try:
                tensors = [it.tensor for it in items]
                preds = await self.loop.run_in_executor(self.executor, self._predict, tensors, attention)
            except asyncio.CancelledError:
                for it in items:
                    if not it.future.done():
                        it.future.cancel()
                raise
            except Exception as exc:  # a model failure fails this batch's requests, not the worker
                log.exception("batch of %d failed", len(items))
                for it in items:
                    if not it.future.done():
                        it.future.set_exception(exc)
                continue
            for it, pred in zip(items, preds):
                if not it.future.done():
                    it.future.set_result(pred)
