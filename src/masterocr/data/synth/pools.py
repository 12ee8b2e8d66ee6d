"""Offline synthetic data: render a pool of labelled words into a clovaai LMDB or an image folder.

Sample i depends only on (seed, i), so the output is the same whatever the number of worker processes.
"""

from __future__ import annotations

import io
import itertools
import json
import multiprocessing
import multiprocessing.context
import random
import time
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from PIL import Image
from tqdm import tqdm

from masterocr.charset import Charset
from masterocr.data.lmdb import write_lmdb
from masterocr.data.synth.families import select_fonts
from masterocr.data.synth.fonts import font_name
from masterocr.data.synth.synthesizer import Synthesizer, as_charset
from masterocr.errors import UserError

__all__ = ["encode_image", "generate"]


def encode_image(img: Image.Image) -> bytes:
    """PNG bytes of a crop, zlib level 1.

    Why PNG and not JPEG: measured on 2,000 crops at height 32, PNG averages 5.9 KiB and JPEG quality 95
    2.7 KiB (3.1 KiB without chroma subsampling), only 2-2.3x smaller, while JPEG would add its artefacts and
    4:2:0 colour blur to every sample (the renderer already JPEG-compresses ~30% of crops on purpose, at
    quality 20-90) and PNG keeps the rendered pixels exactly. Level 1 is ~1.7x faster than the default
    level 6 and no larger on these noisy images.
    """
    buf = io.BytesIO()
    img.save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


_WORKER: dict = {}


def _worker_init(config: dict) -> None:
    _WORKER["synth"] = Synthesizer(
        config["charset"],
        config["fonts"],
        height=config["height"],
        width=config["width"],
        seed=config["seed"],
    )
    _WORKER["seed"] = config["seed"]


def _render_chunk(indices: range) -> list[tuple[bytes, str]]:
    synth, seed = _WORKER["synth"], _WORKER["seed"]
    out = []
    for i in indices:
        img, label = synth.sample(random.Random(f"synth-gen:{seed}:{i}"))
        out.append((encode_image(img), label))
    return out


def _pool_context() -> multiprocessing.context.BaseContext:
    """Start method for the render workers: forkserver (or spawn), never a plain fork.

    Why: a fork copies the parent's memory but only its calling thread, so a lock that another thread held at
    that moment (a server's executor, tqdm's monitor, an HTTP client) stays locked in the child forever; a test
    process or a server holds a dozen such threads. A forkserver forks from a clean single-threaded server; it
    costs about 2 s of start-up per run (each worker imports torch and loads the word lists).
    """
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")


def _samples(config: dict, count: int, workers: int, chunk: int) -> Iterator[tuple[bytes, str]]:
    chunks = [range(s, min(s + chunk, count)) for s in range(0, count, chunk)]
    if workers <= 1:
        _worker_init(config)
        for c in chunks:
            yield from _render_chunk(c)
        return
    # ProcessPoolExecutor, not multiprocessing.Pool: a Pool whose worker dies (or whose initializer raises)
    # replaces the worker and waits forever for the lost chunk; the executor raises BrokenProcessPool instead.
    pool = ProcessPoolExecutor(workers, mp_context=_pool_context(), initializer=_worker_init, initargs=(config,))
    try:
        pending: deque[Future] = deque()
        next_chunk = iter(chunks)
        for c in itertools.islice(next_chunk, 4 * workers):  # a bounded window keeps memory flat
            pending.append(pool.submit(_render_chunk, c))
        while pending:
            part = pending.popleft().result()
            for c in itertools.islice(next_chunk, 1):
                pending.append(pool.submit(_render_chunk, c))
            yield from part
    except BrokenProcessPool as e:
        raise UserError(
            f"a synthetic-data worker process died ({e}); run with --workers 1 to see its error. From a Python "
            "script, start generate(..., workers>1) under `if __name__ == '__main__':`"
        ) from None
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def generate(
    out_dir: str | Path,
    count: int,
    *,
    fonts: Sequence[str | Path] | str | Path | None = None,
    charset: Charset | str | Path | None = None,
    height: int = 32,
    width: int | None = None,
    seed: int = 0,
    workers: int = 1,
    fmt: str = "lmdb",
    font_split: str = "train",
    holdout_fraction: float = 0.15,
    progress: bool = True,
) -> dict:
    """Render `count` labelled word images into `out_dir`; returns stats.

    `fonts`: font folders/files (default: the system fonts); `charset`: a Charset or a keys file (default: the
    95 printable ASCII characters); `width` None keeps each crop's natural width. Sample i depends only on
    (seed, i), so any `workers` count gives identical output. `fmt="lmdb"` writes a clovaai-layout LMDB
    (`num-samples`, `image-%09d` PNG bytes, `label-%09d`, 1-based); `fmt="folder"` writes
    `images/000000001.png`..., `labels.jsonl` ({"ImageFile", "Label"}) and `gt.txt` (`name,label` lines).
    Stats (also saved as synth.json): count, seconds, images_per_s, num_fonts, font_families, and settings.
    `workers > 1` starts processes through a forkserver (spawn where there is none), which re-imports a script's
    main module: call it under `if __name__ == '__main__':` (the `masterocr synth` command does).
    """
    if count < 1:
        raise UserError(f"--count must be >= 1, got {count}")
    if fmt not in ("lmdb", "folder"):
        raise UserError(f"unknown synth output format {fmt!r}; use 'lmdb' or 'folder'")
    if height < 4 or (width is not None and width < 1):
        raise UserError(f"bad image size height={height} width={width}; height must be >= 4")
    workers = max(1, int(workers))
    cs = as_charset(charset)
    font_files = select_fonts(fonts, font_split, holdout_fraction, seed=0, charset_keys=cs.keys)
    config = {"charset": cs, "fonts": font_files, "height": height, "width": width, "seed": seed}
    out = Path(out_dir)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UserError(f"{out} already exists and is not empty; delete it or choose another output folder")
    chunk = max(1, min(256, count // (workers * 8) or 1))
    start = time.perf_counter()
    samples = _samples(config, count, workers, chunk)
    if fmt == "lmdb":
        written = write_lmdb(samples, out, total=count, progress=progress)
    else:
        written = _write_folder(samples, out, count, progress)
    seconds = time.perf_counter() - start
    stats = {
        "count": written,
        "seconds": round(seconds, 3),
        "images_per_s": round(written / max(seconds, 1e-9), 1),
        **_settings(font_files, fmt, font_split, seed, height, width, workers, cs),
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "synth.json").write_text(json.dumps(stats, indent=2) + "\n", encoding="utf-8")
    return stats


def _settings(
    font_files: list[str],
    fmt: str,
    font_split: str,
    seed: int,
    height: int,
    width: int | None,
    workers: int,
    cs: Charset,
) -> dict:
    """What a pool was rendered with, for its synth.json."""
    return {
        "num_fonts": len(font_files),
        "font_families": sorted({font_name(f)[0] for f in font_files}),
        "format": fmt,
        "font_split": font_split,
        "seed": seed,
        "height": height,
        "width": width,
        "workers": workers,
        "charset_size": len(cs.keys),
    }


def _write_folder(samples: Iterator[tuple[bytes, str]], out: Path, count: int, progress: bool) -> int:
    """Write PNGs under out/images with labels.jsonl and gt.txt beside them; returns the number written."""
    images = out / "images"
    images.mkdir(parents=True, exist_ok=True)  # `out` too
    n = 0
    with (
        open(out / "labels.jsonl", "w", encoding="utf-8") as jl,
        open(out / "gt.txt", "w", encoding="utf-8") as gt,
        tqdm(total=count, disable=not progress, unit="img", desc="synth") as bar,
    ):
        for data, label in samples:
            n += 1
            name = f"images/{n:09d}.png"
            (out / name).write_bytes(data)
            jl.write(json.dumps({"ImageFile": name, "Label": label}, ensure_ascii=False) + "\n")
            gt.write(f"{name},{label}\n")
            bar.update(1)
    return n

