"""A server in its own process for the tests that watch it from outside (its memory, its sockets)."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"


@contextlib.contextmanager
def server_process(script: str, timeout_s: float = 60) -> Iterator[tuple[subprocess.Popen, int, str]]:
    """(process, port, base URL) of `python -c script PORT` on a free localhost port, with src/ importable,
    once its /healthz answers; terminated on exit. Fails with the server's stderr when it exits first."""
    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "PYTHONPATH": str(SRC) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    log = tempfile.TemporaryFile()  # not a pipe: a chatty server would block once a pipe's buffer is full
    proc = subprocess.Popen([sys.executable, "-c", script, str(port)], env=env, stderr=log)
    base = f"http://127.0.0.1:{port}"
    try:
        end = time.monotonic() + timeout_s
        while True:
            if proc.poll() is not None:
                log.seek(0)
                raise AssertionError(f"the server exited: {log.read().decode(errors='replace')}")
            try:
                if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < end, "server did not start"
            time.sleep(0.2)
        yield proc, port, base
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()


def rss(pid: int, field: str = "VmRSS") -> int:
    """A process's resident memory in bytes (`field`: VmRSS, or VmHWM for its peak), from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no {field} for {pid}")
