"""release_memory hands glibc's free heap pages back to the system (what keeps a line trainer's RSS bounded)."""

from __future__ import annotations

import ctypes
import ctypes.util
from pathlib import Path

import pytest

from masterocr import memory

MB = 1 << 20


def _rss_anon() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no RssAnon")


@pytest.mark.skipif(memory._malloc_trim is None or not Path("/proc/self/status").exists(), reason="glibc on Linux")
def test_freed_heap_blocks_go_back_to_the_system():
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    libc.free(libc.malloc(8 * MB))  # freeing an mmapped block lifts glibc's threshold: 1 MB blocks go to the heap
    blocks = [libc.malloc(MB) for _ in range(256)]
    for b in blocks:
        ctypes.memset(b, 1, MB)  # touched: resident
    for b in blocks[:-1]:  # the last one pins the heap's top, so only a trim (not the heap's shrinking) frees
        libc.free(b)
    held = _rss_anon()
    memory.release_memory(collect=False)
    assert held - _rss_anon() > 128 * MB
    libc.free(blocks[-1])
