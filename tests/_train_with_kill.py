"""`python tests/_train_with_kill.py --kill-at K [--kill-rank R] [--kill-signal KILL|TERM] [--kill-marker FILE]
-- MASTEROCR ARGS`

Runs the `masterocr` command line (also as torchrun's training script) with one step callback installed: rank R
(default 1) sends itself the signal (default KILL) after step K, once: the marker file is created first and,
while it exists, the callback does nothing (a worker restarted by torchrun trains on). The options share no
prefix with torchrun's own, whose parser would otherwise take an abbreviation such as `--signal` for its
`--signals-to-handle`.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path

from masterocr.cli import main
from masterocr.train import loop


def kill_at_step(at: int, rank: int, signame: str, marker: Path | None) -> loop.StepCallback:
    """The step callback: after step `at`, rank `rank` sends itself SIG`signame` (once, with a marker)."""
    sig = getattr(signal, "SIG" + signame.upper())

    def callback(state: loop.StepState) -> None:
        if state.step != at or state.rank != rank:
            return
        if marker is not None:
            if marker.exists():
                return
            marker.write_text(f"step {state.step} rank {state.rank}\n")
        print(f"test hook: rank {state.rank} sends itself {sig.name} after step {state.step}", file=sys.stderr,
              flush=True)
        os.kill(os.getpid(), sig)

    return callback


def run(argv: list[str]) -> int:
    split = argv.index("--")
    parser = argparse.ArgumentParser()
    parser.add_argument("--kill-at", type=int, required=True)
    parser.add_argument("--kill-rank", type=int, default=1)
    parser.add_argument("--kill-signal", default="KILL")
    parser.add_argument("--kill-marker", type=Path, default=None)
    hook = parser.parse_args(argv[:split])
    callback = kill_at_step(hook.kill_at, hook.kill_rank, hook.kill_signal, hook.kill_marker)
    real_train = loop.train

    def train_with_callback(settings, **kwargs):
        return real_train(settings, callbacks=[callback], **kwargs)

    loop.train = train_with_callback  # what `masterocr train` calls
    return main(argv[split + 1:])


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
