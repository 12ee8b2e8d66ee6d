"""Stopping on SIGINT/SIGTERM: the run saves a checkpoint after the current step, then stops."""

from __future__ import annotations

import contextlib
import logging
import signal

from masterocr.train.distributed import DistInfo, all_reduce_sum

log = logging.getLogger("masterocr.train")


class StopSignal:
    """Records the stop signal this process received; under DDP every rank learns of one any rank received."""

    def __init__(self) -> None:
        self.signum: int | None = None

    def install(self) -> None:
        """Handle SIGINT and SIGTERM from here on (a no-op outside the main thread)."""
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(ValueError):  # not in the main thread
                signal.signal(sig, self._handle)

    def _handle(self, signum, frame) -> None:  # noqa: ARG002
        self.signum = signum
        log.warning("received signal %d: saving a checkpoint after this step, then stopping", signum)

    def requested(self, dist: DistInfo) -> bool:
        """A signal reached any rank: all ranks stop after the same step and take the same path afterwards
        (a rank stopping or validating alone would hang the others in a collective). A collective under DDP:
        every rank calls it at the same points."""
        if not dist.enabled:
            return self.signum is not None
        got, signum = all_reduce_sum([float(self.signum is not None), float(self.signum or 0)], dist)
        if got and self.signum is None:
            self.signum = round(signum / got)  # the signal another rank received
        return got > 0
