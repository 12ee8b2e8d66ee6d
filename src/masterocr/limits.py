"""The bounds of every count a user can set outside the model's own sizes, defined once.

The training config's schema, the command line, model loading and the server all take their bounds from here
(the model's sizes are bounded in masterocr.model.config, the charset's in masterocr.charset), so a value one
of them accepts is a value the others accept too: what trains, loads and serves.

The caps are far above any real use and low enough that no value can make a loader, a batch or a thread pool
that fills the machine: a value past one is one line naming the field, the value and the range, before any
work starts.
"""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path

from masterocr.errors import UserError

log = logging.getLogger("masterocr")

MAX_BATCH = 4096  # images per batch: training, validation, predict, eval, the server's batcher
MAX_WORKERS = 64  # data loader worker processes (each holds a copy of the dataset's state)
MAX_STEPS = 1_000_000_000  # epochs, steps, step intervals and patience counts of a run
MAX_SAMPLES = 1_000_000_000  # samples per epoch of a generated set, validation samples
MAX_IMAGES_PER_REQUEST = 1024  # images in one HTTP request
MAX_ATTENTION_IMAGES = 4  # images of one request with attention maps (max_len x memory values each)
MAX_CONNECTIONS = 4096  # requests in flight, and open sockets, of the server
MAX_PIXELS_IN_FLIGHT = 2_000_000_000  # decoded pixels of the server's requests at once
MAX_TIMEOUT_S = 3600.0  # the server's body and per-chunk timeouts
MAX_WAIT_MS = 10_000.0  # the server's batching wait
PORTS = (0, 65535)  # 0: any free port

# name -> (lowest, highest): the ranges every reader of these counts checks against
COUNTS: dict[str, tuple[int, int]] = {
    "batch_size": (1, MAX_BATCH),
    "num_workers": (0, MAX_WORKERS),
    "steps": (1, MAX_STEPS),
    "samples": (1, MAX_SAMPLES),
    "images_per_request": (1, MAX_IMAGES_PER_REQUEST),
    "connections": (1, MAX_CONNECTIONS),
    "port": PORTS,
}


def available_cpus() -> int:
    """CPUs this process may use, at least 1: its affinity mask where the system has one, lowered to a cgroup
    (v2) CPU quota when one is set (a container's share of a larger machine)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            cpus = min(cpus, math.ceil(int(quota) / int(period)))
    except (OSError, ValueError):
        pass
    return max(1, cpus)


def check_count(name: str, value: object, lo: int, hi: int, fix: str = "") -> int:
    """`value` when it is an integer (not a boolean) in [lo, hi]; else UserError naming `name`, the value and
    the range (`fix`, when given, is appended: how to set it)."""
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise UserError(f"{name} = {value!r}: must be an integer from {lo} to {hi}" + (f"; {fix}" if fix else ""))
    return value


def check_number(name: str, value: object, lo: float, hi: float, fix: str = "") -> float:
    """`value` when it is a finite number (not a boolean) with lo < value <= hi; else UserError as check_count."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and lo < value <= hi
    if not ok:
        raise UserError(f"{name} = {value!r}: must be a number above {lo:g} and at most {hi:g}"
                        + (f"; {fix}" if fix else ""))
    return float(value)


def threads(requested: int | None, name: str = "threads") -> int:
    """CPU threads to use: the CPUs available by default, a request above them lowered to them (said in one
    line: more threads than CPUs only wait on each other, and a huge count exhausts the process), a request
    below 1 refused."""
    cpus = available_cpus()
    if requested is None:
        return cpus
    check_count(name, requested, 1, 2**31 - 1)
    if requested > cpus:
        log.warning("%s %d lowered to %d: the CPUs this process may use", name, requested, cpus)
        return cpus
    return requested
