"""The one check of a device a user names (--device, --gpu, -d, device=): what it is and whether it is here.

`parse_device` turns `cpu`, `cuda`, `cuda:N`, the original's GPU ids `0,1` or a torch.device into a
torch.device this process can use; a malformed or unavailable one is one line saying what is available.
"""

from __future__ import annotations

import re

import torch

from masterocr.errors import UserError

_CUDA = re.compile(r"cuda(?::(\d+))?")
_IDS = re.compile(r"\d+(?:,\d+)*,?")


def available() -> str:
    """What this process can run on, for messages: "cpu" or "cpu, cuda:0..cuda:3"."""
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if not count:
        return "cpu (no CUDA GPU is visible" + (")" if torch.version.cuda else "; this torch is a CPU build)")
    return "cpu, " + ("cuda:0" if count == 1 else f"cuda:0..cuda:{count - 1}")


def parse_device(spec: str | torch.device | None, local_rank: int = 0, flag: str = "--device") -> torch.device:
    """The device `spec` names: None/""/"auto" the local rank's GPU when there is one, else the CPU; `cpu`;
    `cuda` (the local rank's GPU); `cuda:N`; GPU ids `0,1` (the local rank picks one). UserError (one line, with
    what is available) when it is malformed or not here."""
    if isinstance(spec, torch.device):
        spec = str(spec)
    if spec is not None and not isinstance(spec, str):
        raise UserError(f"{flag} {spec!r} is not a device; use cpu, cuda, cuda:N or GPU ids like 0,1")
    text = (spec or "").strip().lower()
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if text in ("", "auto"):
        return torch.device("cuda", local_rank % count) if count else torch.device("cpu")
    if text == "cpu":
        return torch.device("cpu")
    cuda, ids = _CUDA.fullmatch(text), _IDS.fullmatch(text)
    if not cuda and not ids:
        raise UserError(f"{flag} {spec!r} is not a device; use cpu, cuda, cuda:N or GPU ids like 0,1 "
                        f"(available: {available()})")
    if not count:
        raise UserError(f"{flag} {spec!r} asks for a GPU; available: {available()}; use {flag} cpu")
    if cuda:
        index = local_rank if cuda.group(1) is None else int(cuda.group(1))
    else:
        picks = [int(x) for x in text.split(",") if x]
        index = picks[local_rank % len(picks)]
    if index >= count:
        raise UserError(f"{flag} {spec!r} names GPU {index}; available: {available()}")
    return torch.device("cuda", index)
