"""A bounded load on `vaegen serve` over loopback: concurrent clients sending a mix of every endpoint; errors,
latency percentiles and the server's memory (resident size after each quarter of the requests, and its peak).

    python bench/serve_load.py [--checkpoint FILE] [--corpus FILE] [--clients 16] [--requests 2000]

The server is a child process (`vaegen serve`, its own map cache in a temporary folder); the clients are
threads of this one. Memory is read from /proc (Linux).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from common import machine, table

CI = "一曲新词酒一杯。去年天气旧亭台。夕阳西下几时回。无可奈何花落去，似曾相识燕归来。小园香径独徘徊。"
LINES = ["明月几时有，把酒问青天。", "杨柳岸、晓风残月。", "寻寻觅觅，冷冷清清，凄凄惨惨戚戚。"]


def mix(tunes: bool) -> list[tuple[str, dict | None]]:
    """(path, body or None for a GET) of each kind of request, drawn with equal weight."""
    tune = {"tune": "浣溪沙"} if tunes else {}
    a, b = (CI, CI[::-1]) if tunes else (LINES[0], LINES[1])
    return [("/api/health", None), ("/api/map", None), ("/api/tunes", None),
            ("/api/sample", {"n": 2, **tune}), ("/api/encode", {"texts": [a], **tune}),
            ("/api/decode", {"points": [[0.3, -0.2]], **tune}), ("/api/reconstruct", {"texts": [a], **tune}),
            ("/api/interpolate", {"a": a, "b": b, "steps": 3, **tune}), ("/api/near", {"text": a, "n": 2, **tune}),
            ("/api/complete", {"prefix": a[:2], "n": 1, **tune})]


def call(base: str, path: str, body: dict | None) -> int:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(base + path, data=data, headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            response.read()
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def memory(pid: int) -> tuple[float, float]:
    """(resident MiB, peak resident MiB) of a process."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def start_server(args: argparse.Namespace, cache: str) -> tuple[subprocess.Popen[str], str]:
    command = [sys.executable, "-m", "vaegen", "serve", "--port", str(args.port), "--points", str(args.points)]
    command += ["--checkpoint", str(args.checkpoint)] if args.checkpoint else []
    command += ["--corpus", str(args.corpus)] if args.corpus else []
    server = subprocess.Popen(command, env={**os.environ, "VAEGEN_CACHE_DIR": cache}, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{args.port}"
    assert server.stderr is not None
    for line in server.stderr:
        print(line.rstrip(), file=sys.stderr)
        if line.startswith("http://"):
            break
    threading.Thread(target=server.stderr.read, daemon=True).start()  # keep draining what it writes
    for _ in range(300):  # the address is printed just before the server binds it
        try:
            urllib.request.urlopen(base + "/api/health", timeout=5).read()
            return server, base
        except OSError:
            time.sleep(0.1)
    server.terminate()
    raise SystemExit("the server did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path)
    parser.add_argument("--corpus", type=Path)
    parser.add_argument("--points", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--port", type=int, default=8766)
    args = parser.parse_args()
    print(machine())
    with tempfile.TemporaryDirectory() as cache:
        server, base = start_server(args, cache)
        try:
            tunes = json.loads(urllib.request.urlopen(base + "/api/health").read())["tunes"]
            kinds = mix(tunes)
            plan = [random.Random(i).choice(kinds) for i in range(args.requests)]
            latencies: list[float] = [0.0] * len(plan)
            statuses: list[int] = [0] * len(plan)
            rss: dict[int, float] = {}
            lock, cursor = threading.Lock(), iter(range(len(plan)))

            def client() -> None:
                while True:
                    with lock:
                        i = next(cursor, None)
                    if i is None:
                        return
                    started = time.perf_counter()
                    statuses[i] = call(base, *plan[i])
                    latencies[i] = time.perf_counter() - started
                    if (i + 1) % (len(plan) // 4) == 0:
                        rss[i + 1] = memory(server.pid)[0]

            started = time.perf_counter()
            threads = [threading.Thread(target=client) for _ in range(args.clients)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            wall = time.perf_counter() - started
            peak = memory(server.pid)[1]
        finally:
            server.terminate()
            server.wait(timeout=30)
    errors = sum(status != 200 for status in statuses)
    ms = sorted(1000 * t for t in latencies)
    quantile = statistics.quantiles(ms, n=100)
    print(f"{args.requests} requests from {args.clients} clients in {wall:.1f} s ({args.requests / wall:.1f} a second)")
    print(table(["requests", "errors", "p50 ms", "p99 ms", "max ms", *[f"RSS MiB after {n}" for n in sorted(rss)],
                 "peak RSS MiB"],
                [[args.requests, errors, f"{quantile[49]:.0f}", f"{quantile[98]:.0f}", f"{ms[-1]:.0f}",
                  *[f"{rss[n]:.0f}" for n in sorted(rss)], f"{peak:.0f}"]]))
    if errors:
        raise SystemExit(f"{errors} requests failed")


if __name__ == "__main__":
    main()
