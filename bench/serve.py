"""Serving: ``ember serve`` on loopback against an in-process ``predict`` loop, per domain.

For each domain — vision (Fashion-MNIST, the default compact CNN), text (Rotten Tomatoes, the
default AWD-LSTM classifier) and tabular (diamonds, log(price), the default entity-embedding
MLP) — a model is trained briefly on the plugin's bundled sample and exported with
``learn.export``. Then, in one run:

1. ``ember serve MODEL --host 127.0.0.1 --port <free port>`` starts in a subprocess (same
   torch thread count as the in-process loop).
2. ``--requests`` POST /predict requests, one real item each (PNG images as base64, review
   snippets, diamond rows as objects; from the full sets under ``--data`` when present), are sent
   by ``--concurrency`` asynchronous clients on keep-alive connections, interleaved over
   ``--repeats`` with an in-process loop calling ``ember.load(MODEL).predict(item)`` on the same
   items one at a time, like a client. Every response must be a 200 whose prediction equals the
   in-process one. Reported: errors, p50/p99 latency, requests/s served and in process
   (medians over repeats), and their ratio (target ≥ 0.7: micro-batching must pay for HTTP).
3. ``--malformed`` malformed requests (bad JSON, wrong fields and types, empty or oversized
   lists, corrupt base64 images, a body over the cap…): every one must get a 4xx; the server must
   still answer /health and predict afterwards, and its resident memory (VmRSS) must not grow
   by more than ``--rss-margin`` MiB.

Usage::

    flock /tmp/ember-bench.lock .venv/bin/python bench/serve.py     # 2,000 requests a repeat
    .venv/bin/python bench/serve.py --smoke                         # seconds, bundled samples

Ends with ``RESULT <name> <value> <unit> baseline=<value>`` lines.
"""

from __future__ import annotations

import asyncio
import base64
import io
import math
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

import ember

from _common import data_dir, parser, read_idx, table

#: Served throughput / in-process throughput the server must reach at concurrency 16.
TARGET_RATIO = 0.7


@dataclass
class Domain:
    """One exported model and the items a client sends it."""

    name: str
    model: Path
    items: list[Any]  # raw items for the in-process predictor
    payloads: list[Any]  # the same items as JSON values
    malformed: list[tuple[str, dict[str, Any]]] = field(default_factory=list)


# ----------------------------------------------------------------------------- domains
def png(image: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


def vision(folder: Path, data: Path | None, n: int, smoke: bool) -> Domain:
    from ember_vision import FASHION_MNIST_CLASSES, ImageData
    from ember_vision.datasets import fashion_mnist

    (images, labels), (test_images, _) = fashion_mnist(sample=True)
    train = 200 if smoke else 1000
    learn = ember.learner(ImageData.from_arrays(images[:train], labels[:train],
                                                classes=FASHION_MNIST_CLASSES, bs=64),
                          quiet=True, device="cpu")
    learn.fit_one_cycle(1 if smoke else 3)
    if data is not None and not smoke:
        test_images = read_idx(data / "fashion-mnist" / "t10k-images-idx3-ubyte.gz")
    encoded = [png(image) for image in test_images[:n]]
    text = [base64.b64encode(item).decode() for item in encoded]
    malformed = [
        ("corrupt base64", {"json": {"inputs": ["%%% not base64 %%%"]}}),
        ("base64 of no image", {"json": {"inputs": [base64.b64encode(b"GIF89a?" * 40).decode()]}}),
        ("truncated image", {"json": {"inputs": [base64.b64encode(encoded[0][:60]).decode()]}}),
        ("number as image", {"json": {"inputs": [12345]}}),
        ("object as image", {"json": {"inputs": [{"pixels": [1, 2, 3]}]}}),
    ]
    return Domain("vision", learn.export(folder / "vision.ember"), encoded, text, malformed)


def text(folder: Path, data: Path | None, n: int, smoke: bool) -> Domain:
    from ember_text import TextData
    from ember_text.datasets import load_rotten_tomatoes

    texts, labels, _ = load_rotten_tomatoes()
    train = 600 if smoke else len(texts)
    learn = ember.learner(TextData.from_texts(texts[:train], labels[:train], bs=64),
                          quiet=True, device="cpu")
    learn.fit_one_cycle(1 if smoke else 2, 3e-3)
    full = data / "rotten-tomatoes" / "reviews.csv.gz" if data is not None else None
    if full is not None and full.is_file() and not smoke:
        texts, _, _ = load_rotten_tomatoes(full)
        texts = texts[-n:]  # the end of the full file: not in the bundled sample's first rows
    items = [texts[i % len(texts)] for i in range(n)]
    malformed = [
        ("number as text", {"json": {"inputs": [3.5]}}),
        ("object as text", {"json": {"inputs": [{"text": "a film"}]}}),
        ("null as text", {"json": {"inputs": [None]}}),
        ("list as text", {"json": {"inputs": [["a", "film"]]}}),
    ]
    return Domain("text", learn.export(folder / "text.ember"), items, list(items), malformed)


def tabular(folder: Path, data: Path | None, n: int, smoke: bool) -> Domain:
    import pandas as pd

    from ember_tabular import TabularData
    from ember_tabular.datasets import load_sample, order_diamonds

    frame = load_sample("diamonds")
    train = frame.iloc[:1000] if smoke else frame
    learn = ember.learner(TabularData.from_df(train, "price", log_target=True, verbose=False),
                          quiet=True, device="cpu")
    learn.fit_one_cycle(1 if smoke else 5)
    full = data / "diamonds.csv.gz" if data is not None else None
    if full is not None and full.is_file() and not smoke:
        frame = order_diamonds(pd.read_csv(full)).iloc[-n:]
    rows = frame.drop(columns="price").iloc[:n]
    items = [{key: (value.item() if hasattr(value, "item") else value)
              for key, value in row.items()} for _, row in rows.iterrows()]
    items = [items[i % len(items)] for i in range(n)]
    good = items[0]
    malformed = [
        ("text as row", {"json": {"inputs": ["carat=0.3, cut=Ideal"]}}),
        ("number as row", {"json": {"inputs": [0.3]}}),
        ("text in a number column", {"json": {"inputs": [{**good, "carat": "heavy"}]}}),
        ("list as row", {"json": {"inputs": [list(good.values())]}}),
    ]
    return Domain("tabular", learn.export(folder / "tabular.ember"), items, items, malformed)


DOMAINS: dict[str, Callable[[Path, Path | None, int, bool], Domain]] = {
    "vision": vision, "text": text, "tabular": tabular}


def common_malformed(domain: Domain, max_body: int) -> list[tuple[str, dict[str, Any]]]:
    """Malformed requests every domain must refuse with a 4xx."""
    json_header = {"content-type": "application/json"}
    one = domain.payloads[0]
    return [
        ("bad JSON", {"content": b'{"inputs": [', "headers": json_header}),
        ("not UTF-8", {"content": b'\xff\xfe{"inputs"', "headers": json_header}),
        ("JSON list, not object", {"json": [one]}),
        ("wrong field", {"json": {"input": [one]}}),
        ("inputs not a list", {"json": {"inputs": 7}}),
        ("empty inputs", {"json": {"inputs": []}}),
        ("too many items", {"json": {"inputs": [one] * 1025}}),
        ("form body", {"content": b"inputs=1", "headers": {
            "content-type": "application/x-www-form-urlencoded"}}),
        ("huge body", {"content": b'{"inputs": ["' + b"a" * (max_body + 1024) + b'"]}',
                       "headers": json_header}),
        *domain.malformed,
    ]


# ----------------------------------------------------------------------------- server
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rss_mib(pid: int) -> float:
    """Resident memory of a process (VmRSS in /proc/<pid>/status), MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class Server:
    """``ember serve`` in a subprocess on a free loopback port."""

    def __init__(self, model: Path, threads: int, max_body: int) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
        self.log = model.with_suffix(".log").open("w+b")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "ember.cli", "serve", str(model), "--host", "127.0.0.1",
             "--port", str(self.port), "--max-body-bytes", str(max_body)],
            stdout=self.log, stderr=subprocess.STDOUT, env=env)

    def wait_ready(self, timeout: float = 120.0) -> None:
        import httpx

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.log.seek(0)
                raise RuntimeError(f"ember serve exited: {self.log.read().decode()[-2000:]}")
            try:
                if httpx.get(self.url + "/health", timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"ember serve did not answer /health within {timeout:.0f} s")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


# ----------------------------------------------------------------------------- clients
class Connection:
    """A minimal HTTP/1.1 keep-alive client on asyncio streams for the timed requests: it costs
    a fraction of a millisecond a request, so on a shared machine the client does not eat the
    CPU the server needs (the in-process loop has no client at all). Malformed requests go
    through httpx."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post_json(self, path: str, body: bytes) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        self.writer.write(f"POST {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
                          f"Content-Type: application/json\r\nContent-Length: {len(body)}"
                          f"\r\n\r\n".encode() + body)
        await self.writer.drain()
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = dict(line.lower().split(": ", 1) for line in lines[1:] if ": " in line)
        content = await self.reader.readexactly(int(headers.get("content-length", "0")))
        if headers.get("connection") == "close":
            await self.close()
        return status, content

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.reader = self.writer = None


async def send_all(url: str, payloads: list[Any], concurrency: int
                   ) -> tuple[float, list[float], list[Any], int]:
    """POST each payload alone, ``concurrency`` at a time on keep-alive connections: wall
    seconds, latencies (s), predictions (None where it failed) and the number of errors."""
    import json
    from urllib.parse import urlsplit

    address = urlsplit(url)
    bodies = [json.dumps({"inputs": [payload]}).encode() for payload in payloads]
    latencies: list[float] = []
    predictions: list[Any] = [None] * len(payloads)
    errors = 0
    cursor = iter(range(len(payloads)))

    async def worker() -> None:
        nonlocal errors
        connection = Connection(address.hostname or "127.0.0.1", address.port or 80)
        for index in cursor:
            start = time.perf_counter()
            try:
                status, content = await connection.post_json("/predict", bodies[index])
            except (OSError, asyncio.IncompleteReadError, ValueError):
                errors += 1
                await connection.close()
                continue
            latencies.append(time.perf_counter() - start)
            if status != 200:
                errors += 1
                continue
            predictions[index] = json.loads(content)["predictions"][0]
        await connection.close()

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - start, latencies, predictions, errors


async def send_malformed(url: str, requests: list[tuple[str, dict[str, Any]]], n: int
                         ) -> Counter[tuple[str, int]]:
    """Send ``n`` malformed requests cycling through ``requests``; count (kind, status)."""
    import httpx

    statuses: Counter[tuple[str, int]] = Counter()
    async with httpx.AsyncClient(base_url=url, timeout=60.0) as client:
        for index in range(n):
            name, options = requests[index % len(requests)]
            try:
                response = await client.post("/predict", **options)
                statuses[(name, response.status_code)] += 1
            except httpx.HTTPError as error:  # the server hung up instead of answering
                statuses[(name, -1)] += 1
                print(f"  {name}: {type(error).__name__}", file=sys.stderr)
    return statuses


def same(served: Any, local: Any) -> bool:
    """Served and in-process predictions agree (floats to 1e-5 relative: batch composition
    may change the last bits)."""
    if isinstance(local, float) and isinstance(served, (int, float)):
        return math.isclose(served, local, rel_tol=1e-5, abs_tol=1e-6)
    if isinstance(local, (list, tuple)) and isinstance(served, list):
        return len(local) == len(served) and all(map(same, served, local))
    return bool(served == local)


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q)) if values else float("nan")


# ----------------------------------------------------------------------------- main
def run_domain(domain: Domain, args: Any) -> dict[str, Any]:
    import httpx

    predictor = ember.load(domain.model)
    expected = [predictor.predict(item) for item in domain.items[:50]]  # warm-up too
    server = Server(domain.model, args.threads, args.max_body)
    try:
        server.wait_ready()
        asyncio.run(send_all(server.url, domain.payloads[:100], args.concurrency))  # warm-up
        served_rates, local_rates, latencies = [], [], []
        errors = mismatches = 0
        for repeat in range(args.repeats):
            for contender in (["served", "local"] if repeat % 2 == 0 else ["local", "served"]):
                if contender == "local":
                    start = time.perf_counter()
                    local = [predictor.predict(item) for item in domain.items]
                    local_rates.append(len(domain.items) / (time.perf_counter() - start))
                else:
                    wall, times, predictions, failed = asyncio.run(
                        send_all(server.url, domain.payloads, args.concurrency))
                    served_rates.append(len(domain.payloads) / wall)
                    latencies += times
                    errors += failed
            mismatches += sum(p is not None and not same(p, e)
                              for p, e in zip(predictions, local))
        expected_ok = all(same(p, e) for p, e in zip(predictions, expected))
        pid = server.process.pid
        rss_before = rss_mib(pid)
        requests = common_malformed(domain, args.max_body)
        statuses = asyncio.run(send_malformed(server.url, requests, args.malformed))
        health = httpx.get(server.url + "/health", timeout=10).status_code
        after = httpx.post(server.url + "/predict", json={"inputs": domain.payloads[:4]},
                           timeout=30)
        still_predicts = after.status_code == 200 and len(after.json()["predictions"]) == 4
        rss_after = rss_mib(pid)
    finally:
        server.stop()
    served = statistics.median(served_rates)
    in_process = statistics.median(local_rates)
    not_4xx = {key: count for key, count in statuses.items() if not 400 <= key[1] < 500}
    return {
        "domain": domain.name, "requests": len(domain.payloads) * args.repeats,
        "errors": errors, "mismatches": mismatches + (0 if expected_ok else 1),
        "p50": percentile(latencies, 50) * 1000, "p99": percentile(latencies, 99) * 1000,
        "local_ms": 1000 / in_process, "served": served, "in_process": in_process,
        "ratio": served / in_process, "malformed": sum(statuses.values()),
        "malformed_4xx": sum(statuses.values()) - sum(not_4xx.values()), "not_4xx": not_4xx,
        "statuses": sorted(Counter(status for _, status in statuses.elements()).items()),
        "health": health, "still_predicts": still_predicts,
        "rss_before": rss_before, "rss_after": rss_after,
    }


def main() -> None:
    options = parser(__doc__.splitlines()[0])
    options.add_argument("--domains", nargs="*", default=list(DOMAINS), choices=list(DOMAINS))
    options.add_argument("--requests", type=int, default=2000, help="requests per repeat")
    options.add_argument("--concurrency", type=int, default=16)
    options.add_argument("--malformed", type=int, default=200)
    options.add_argument("--rss-margin", type=float, default=16.0,
                         help="MiB the server may grow while refusing malformed requests")
    options.add_argument("--max-body", type=int, default=16 * 1024 * 1024,
                         help="the server's body cap (ember serve --max-body-bytes; "
                              "default 16 MiB, the command's own)")
    options.add_argument("--threads", type=int, default=1, help="torch threads, both sides")
    options.set_defaults(repeats=3)
    args = options.parse_args()
    if args.smoke:
        args.requests, args.malformed, args.repeats = 48, 30, 1
    torch.set_num_threads(args.threads)
    ember.seed(0)
    data = data_dir(args.data)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.domains:
            start = time.perf_counter()
            domain = DOMAINS[name](Path(tmp), data, args.requests, args.smoke)
            result = run_domain(domain, args)
            result["seconds"] = time.perf_counter() - start
            rows.append(result)
            print(f"{name}: {result}", file=sys.stderr, flush=True)

    print(f"\nember serve on loopback, {args.requests} requests x {args.repeats} repeats at "
          f"concurrency {args.concurrency}, one item per request, {args.threads} torch "
          f"thread(s) on each side; then {args.malformed} malformed requests\n")
    print(table(
        ["domain", "requests", "errors", "p50 ms", "p99 ms", "served req/s",
         "in-process req/s", "ratio", "malformed → 4xx", "statuses", "/health after",
         "RSS before → after MiB"],
        [[r["domain"], str(r["requests"]), str(r["errors"] + r["mismatches"]),
          f"{r['p50']:.1f}", f"{r['p99']:.1f}", f"{r['served']:.0f}", f"{r['in_process']:.0f}",
          f"{r['ratio']:.2f}", f"{r['malformed_4xx']}/{r['malformed']}",
          " ".join(f"{status}: {count}" for status, count in r["statuses"]),
          str(r["health"]), f"{r['rss_before']:.0f} → {r['rss_after']:.0f}"] for r in rows]))
    print()
    failures = []
    for r in rows:
        name = r["domain"]
        growth = r["rss_after"] - r["rss_before"]
        print(f"RESULT serve_{name}_errors {r['errors'] + r['mismatches']} requests baseline=0")
        print(f"RESULT serve_{name}_p50 {r['p50']:.2f} ms baseline={r['local_ms']:.2f}")
        print(f"RESULT serve_{name}_p99 {r['p99']:.2f} ms baseline={r['local_ms']:.2f}")
        print(f"RESULT serve_{name}_throughput {r['served']:.1f} req/s "
              f"baseline={r['in_process']:.1f}")
        print(f"RESULT serve_{name}_ratio {r['ratio']:.3f} x baseline={TARGET_RATIO}")
        print(f"RESULT serve_{name}_malformed_4xx {r['malformed_4xx']} requests "
              f"baseline={r['malformed']}")
        print(f"RESULT serve_{name}_rss_growth {growth:.1f} MiB baseline={args.rss_margin}")
        if r["errors"] or r["mismatches"]:
            failures.append(f"{name}: {r['errors']} errors, {r['mismatches']} mismatches")
        if r["not_4xx"]:
            failures.append(f"{name}: malformed requests not refused with a 4xx: {r['not_4xx']}")
        if r["health"] != 200 or not r["still_predicts"]:
            failures.append(f"{name}: the server stopped serving after malformed requests")
        if growth > args.rss_margin:
            failures.append(f"{name}: RSS grew {growth:.1f} MiB (margin {args.rss_margin})")
        if r["ratio"] < TARGET_RATIO and not args.smoke:
            print(f"note: {name} served throughput is {r['ratio']:.2f}x in-process, under the "
                  f"{TARGET_RATIO}x target", file=sys.stderr)
    if failures:
        print("\n".join(failures), file=sys.stderr)
        raise SystemExit(1)


if __name__ == "__main__":
    main()
