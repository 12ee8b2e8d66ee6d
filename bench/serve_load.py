"""Bounded load test of the HTTP service on loopback: dynamic batching on (max_batch 32) vs off (max_batch 1).

Starts the app with uvicorn on 127.0.0.1 (a free port, in a thread), runs `--concurrency` async clients that
send `--requests` single-image requests in total, then stops. Prints one table row per mode: throughput,
p50/p95/p99 latency and errors. Default model: the tiny preset, untrained (it always decodes to max_len, the
worst case); `--checkpoint` loads real weights, `--shipped` the shipped ones.

    python bench/serve_load.py --requests 64 --concurrency 16
"""

from __future__ import annotations

import argparse
import asyncio
import io
import socket
import statistics
import threading
import time

import httpx
import torch
import uvicorn
from PIL import Image, ImageDraw, ImageFont

from masterocr.charset import Charset
from masterocr.model import build_model
from masterocr.runtime.torch import Recognizer
from masterocr.serve.app import create_app

WORDS = ["cat", "Dog", "tree", "HOUSE", "42", "sun", "Moon", "road", "a1b2", "x-ray", "Bird", "milk"]


def word_png(text: str, height: int = 32) -> bytes:
    font = ImageFont.load_default(size=height - 8)
    left, top, right, bottom = font.getbbox(text)
    img = Image.new("RGB", (right - left + 8, height), "white")
    ImageDraw.Draw(img).text((4 - left, (height - (bottom - top)) // 2 - top), text, fill="black", font=font)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """uvicorn on 127.0.0.1 in a daemon thread; a context manager that waits for startup and shuts down."""

    def __init__(self, app) -> None:
        self.port = free_port()
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        end = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > end or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.05)
        return f"http://127.0.0.1:{self.port}"

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(30)


async def load(url: str, requests: int, concurrency: int, images: list[bytes], timeout: float) -> dict:
    latencies: list[float] = []
    errors = 0
    counter = iter(range(requests))
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=timeout, limits=limits) as client:
        # warm-up (not measured)
        await client.post("/v1/recognize", files=[("file", ("w.png", images[0], "image/png"))])

        async def worker() -> None:
            nonlocal errors
            for i in counter:
                blob = images[i % len(images)]
                t0 = time.perf_counter()
                try:
                    r = await client.post("/v1/recognize", files=[("file", (f"{i}.png", blob, "image/png"))])
                    ok = r.status_code == 200 and r.json()["results"][0]["error"] is None
                except httpx.HTTPError:
                    ok = False
                if ok:
                    latencies.append(time.perf_counter() - t0)
                else:
                    errors += 1

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        wall = time.perf_counter() - t0
    lat = sorted(latencies) or [float("nan")]

    def pct(p: float) -> float:
        return 1000 * lat[min(len(lat) - 1, int(round(p / 100 * (len(lat) - 1))))]

    return {"req_s": len(latencies) / wall, "p50": pct(50), "p95": pct(95), "p99": pct(99), "errors": errors,
            "mean": 1000 * statistics.fmean(lat), "wall": wall}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=64, help="requests per mode (default 64)")
    ap.add_argument("--concurrency", type=int, default=16, help="concurrent clients (default 16)")
    ap.add_argument("--max-wait-ms", type=float, default=5.0, help="batching window (default 5)")
    ap.add_argument("--preset", default="tiny", help="untrained model preset when no weights are given")
    ap.add_argument("--checkpoint", help="load this checkpoint/weights instead")
    ap.add_argument("--shipped", action="store_true", help="load the shipped weights instead")
    ap.add_argument("--timeout", type=float, default=120.0, help="client timeout per request, s")
    args = ap.parse_args()

    if args.checkpoint or args.shipped:
        rec = Recognizer.from_checkpoint(args.checkpoint)
        model_name = str(rec.weights_path)
    else:
        torch.manual_seed(0)
        rec = Recognizer(build_model(args.preset, Charset.default()), Charset.default())
        model_name = f"{args.preset} (untrained, decodes max_len={rec.cfg.max_len})"
    images = [word_png(w) for w in WORDS]
    print(f"model: {model_name}; {args.requests} requests, {args.concurrency} concurrent clients, "
          f"torch threads {torch.get_num_threads()}, loopback only")
    rows = []
    for mode, max_batch in (("batching on", 32), ("batching off", 1)):
        app = create_app(rec, max_batch=max_batch, max_wait_ms=args.max_wait_ms,
                         max_queue=max(256, 2 * args.concurrency), request_timeout_s=args.timeout)
        with Server(app) as url:
            res = asyncio.run(load(url, args.requests, args.concurrency, images, args.timeout))
        rows.append((f"{mode} (max_batch {max_batch})", res))
        print(f"  {mode}: done in {res['wall']:.1f} s", flush=True)
    print()
    print("| mode | req/s | p50 ms | p95 ms | p99 ms | errors |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, r in rows:
        print(f"| {name} | {r['req_s']:.2f} | {r['p50']:.0f} | {r['p95']:.0f} | {r['p99']:.0f} | {r['errors']} |")


if __name__ == "__main__":
    main()
