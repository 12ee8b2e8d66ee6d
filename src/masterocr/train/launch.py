"""`masterocr train ... --nproc N`: torchrun's launcher, in this process, starting N local training workers."""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence

log = logging.getLogger(__name__)


def strip_nproc(argv: Sequence[str]) -> list[str]:
    """argv without `--nproc N` / `--nproc=N` (the workers must not launch again)."""
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
            continue
        if a == "--nproc":
            skip = True
            continue
        if a.startswith("--nproc="):
            continue
        out.append(a)
    return out


def torchrun_args(nproc: int, argv: Sequence[str], extra: Sequence[str] = ()) -> list[str]:
    """The torchrun command line (without the program name) that runs `masterocr train` in N processes."""
    cmd = strip_nproc(argv)
    if "train" not in cmd:
        cmd = ["train", *cmd]
    return ["--standalone", "--nproc_per_node", str(nproc), *extra, "-m", "masterocr", *cmd]


def launch_local(nproc: int, argv: Sequence[str], extra: Sequence[str] = ()) -> int:
    """Run torchrun's launcher in-process with `--nproc_per_node nproc --standalone -m masterocr train ...`.

    `argv` is the masterocr command line (with or without `train`, with or without `--nproc N`); `extra` is
    passed to torchrun before `-m` (e.g. `["--max-restarts", "1"]`). Returns 0 when every worker succeeded,
    1 when one failed (torchrun prints which, with its exit code and traceback file).
    """
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import main as torchrun_main

    args = torchrun_args(nproc, argv, extra)
    log.info("torchrun %s", " ".join(args))
    try:
        torchrun_main(args)
    except ChildFailedError as exc:
        print(f"masterocr train: a worker failed:\n{exc}", file=sys.stderr)
        return 1
    except SystemExit as exc:  # argparse errors inside torchrun
        return exc.code if isinstance(exc.code, int) else 1
    return 0
