"""A bounded load on `vaegen serve` over loopback: concurrent clients sending a mix of every endpoint; errors,
latency percentiles and the server's memory (resident size after each quarter of the requests, and its peak).

    python bench/serve_load.py [--checkpoint FILE] [--corpus FILE] [--clients 16] [--requests 2000]
                               [--hostile off|on|both] [--hostile-clients 4]

With --hostile on, hostile clients run beside the ordinary ones for as long as they do: the costliest requests
the bounds admit (fifty ci in the longest form the model writes or after the longest prefix, the widest beam,
every point and text), requests past a bound (a form longer than the model writes, a prefix with no room left,
NaN, a body past the server's limit), and slow clients on raw sockets that send their headers or body a few
bytes at a time, or read the answer a few bytes at a time. The ordinary requests' latency and errors are reported
apart from the hostile ones'. --hostile both runs the same ordinary load without, then with, the hostile clients
on one server, and reports the ratio of the ordinary requests' p99 (the target: at most 2, and no ordinary
request answered 5xx).

The server is a child process (`vaegen serve` on 127.0.0.1, its own map cache in a temporary folder); the
clients are threads of this one, and every loop is bounded in count and in time. Memory is read from /proc (Linux).
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from common import machine, table

HOST = "127.0.0.1"  # the only address this load is ever sent to
CI = "一曲新词酒一杯。去年天气旧亭台。夕阳西下几时回。无可奈何花落去，似曾相识燕归来。小园香径独徘徊。"
LINES = ["明月几时有，把酒问青天。", "杨柳岸、晓风残月。", "寻寻觅觅，冷冷清清，凄凄惨惨戚戚。"]
PIECE, PAUSE = 4, 0.05  # a slow client's bytes at a time, and its pause between them
SLOW_READ_SECONDS = 5.0  # a slow reader hangs up after this long


def mix(tunes: bool) -> list[tuple[str, dict | None]]:
    """(path, body or None for a GET) of each kind of request, drawn with equal weight."""
    tune = {"tune": "浣溪沙"} if tunes else {}
    a, b = (CI, CI[::-1]) if tunes else (LINES[0], LINES[1])
    return [("/api/health", None), ("/api/map", None), ("/api/tunes", None),
            ("/api/sample", {"n": 2, **tune}), ("/api/encode", {"texts": [a], **tune}),
            ("/api/decode", {"points": [[0.3, -0.2]], **tune}), ("/api/reconstruct", {"texts": [a], **tune}),
            ("/api/interpolate", {"a": a, "b": b, "steps": 3, **tune}), ("/api/near", {"text": a, "n": 2, **tune}),
            ("/api/complete", {"prefix": a[:2], "n": 1, **tune})]


class Hostile(NamedTuple):
    name: str
    path: str
    body: bytes | None  # None for a GET
    pace: str = ""  # "headers", "body" or "read": the part of the exchange the client drags out


def hostile_mix(tunes: bool, max_length: int) -> list[Hostile]:
    """Each kind of hostile request, for a model of tunes or not that writes up to max_length tokens."""
    tune = {"tune": "浣溪沙"} if tunes else {}
    longest = {**tune, "form": "9。" * (max_length // 10)} if tunes else {}  # as many steps as the model writes
    marked = "一二三四五六七八九。" * (max_length // 10)  # a text whose own form is that long
    costly = {
        "fifty in the longest form": ("/api/sample", {"n": 50, **longest}),
        "the widest beam": ("/api/sample", {"n": 4, "strategy": {"kind": "beam", "beam": 16}, **longest}),
        "the longest path by beam": ("/api/interpolate", {"a": marked, "b": marked[::-1], "steps": 16,
                                                          "strategy": {"kind": "beam", "beam": 4}, **longest}),
        "every point": ("/api/decode", {"points": [[i / 20, -i / 20] for i in range(64)], **longest}),
        "every text": ("/api/reconstruct", {"texts": [marked] * 16, **tune}),
        "fifty near a long text": ("/api/near", {"text": marked, "n": 50, "radius": 3.0, **tune}),
        "fifty after the longest prefix": ("/api/complete", {"prefix": marked[:-10], "n": 50, **longest}),
    }
    one = json.dumps({"n": 1, **tune}).encode()
    others = [Hostile("a form past the limit", "/api/sample", json.dumps({"n": 50, **tune, "form": "999。" * 10}).encode()),
              Hostile("slow headers", "/api/sample", one, "headers"),
              Hostile("NaN", "/api/decode", json.dumps({"points": [[float("nan"), 0.0]]}).encode()),
              Hostile("slow body", "/api/sample", one + b" " * 200, "body"),
              Hostile("a prefix with no room", "/api/complete", json.dumps({"prefix": "字" * 400, "n": 50, **tune}).encode()),
              Hostile("slow reader", "/api/map", None, "read"),
              Hostile("a body past 64 KB", "/api/encode", b"{" + b" " * 70_000 + b"}")]
    kinds = [Hostile(name, path, json.dumps(body).encode()) for name, (path, body) in costly.items()]
    return [kind for pair in zip(kinds, others, strict=True) for kind in pair]  # a costly one, then a cheap or slow one


def call(base: str, path: str, body: dict | None) -> int:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(base + path, data=data, headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            response.read()
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def send(sock: socket.socket, data: bytes, slow: bool) -> None:
    """All of data, or PIECE bytes at a time with a PAUSE between (a slow client: bounded by len(data))."""
    if not slow:
        sock.sendall(data)
        return
    for start in range(0, len(data), PIECE):
        sock.sendall(data[start:start + PIECE])
        time.sleep(PAUSE)


def exchange(port: int, hostile: Hostile, timeout: float) -> int:
    """One hostile request over a raw socket: its status, or 0 for none (the server hung up, or the time ran
    out). Every wait is bounded by `timeout`, a slow read by SLOW_READ_SECONDS."""
    method = "GET" if hostile.body is None else "POST"
    body = hostile.body or b""
    head = (f"{method} {hostile.path} HTTP/1.1\r\nHost: {HOST}:{port}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode()
    try:
        with socket.create_connection((HOST, port), timeout=timeout) as sock:
            send(sock, head, hostile.pace == "headers")
            send(sock, body, hostile.pace == "body")
            answer, ends = b"", time.monotonic() + SLOW_READ_SECONDS
            while chunk := sock.recv(64 if hostile.pace == "read" else 65_536):
                answer += chunk[:64] if len(answer) < 64 else b""  # the status line is all that is kept
                if hostile.pace == "read":
                    if time.monotonic() > ends:
                        break
                    time.sleep(PAUSE)
    except OSError:
        return 0
    status = answer.split(b" ", 2)[1] if answer.startswith(b"HTTP/") else b""
    return int(status) if status.isdigit() else 0


def memory(pid: int) -> tuple[float, float]:
    """(resident MiB, peak resident MiB) of a process."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def start_server(args: argparse.Namespace, cache: str) -> tuple[subprocess.Popen[str], str]:
    command = [sys.executable, "-m", "vaegen", "serve", "--host", HOST, "--port", str(args.port),
               "--points", str(args.points)]
    command += ["--checkpoint", str(args.checkpoint)] if args.checkpoint else []
    command += ["--corpus", str(args.corpus)] if args.corpus else []
    server = subprocess.Popen(command, env={**os.environ, "VAEGEN_CACHE_DIR": cache}, stderr=subprocess.PIPE, text=True)
    base = f"http://{HOST}:{args.port}"
    assert server.stderr is not None
    for line in server.stderr:
        print(line.rstrip(), file=sys.stderr)
        if line.startswith("http://"):
            break
    threading.Thread(target=server.stderr.read, daemon=True).start()  # keep draining what it writes
    for _ in range(300):  # the address is printed just before the server binds it
        try:
            urllib.request.urlopen(base + "/api/health", timeout=5).read()
            while json.loads(urllib.request.urlopen(base + "/api/map", timeout=5).read())["status"] == "building":
                time.sleep(1)  # a map not built before is built in the background: load the server once it is there
            return server, base
        except OSError:
            time.sleep(0.1)
    server.terminate()
    raise SystemExit("the server did not start")


class Outcome(NamedTuple):
    kind: str
    status: int  # 0: no answer
    seconds: float


@dataclass
class Phase:
    name: str
    ordinary: list[Outcome]
    hostile: list[Outcome]
    wall: float
    rss: dict[int, float] = field(default_factory=dict)  # resident MiB after so many ordinary requests
    peak: float = 0.0


def ordinary_clients(base: str, plan: list[tuple[str, dict | None]], clients: int, pid: int,
                     rss: dict[int, float]) -> list[Outcome]:
    """Run the plan from `clients` threads, each taking the next request as soon as it has its answer."""
    outcomes: list[Outcome | None] = [None] * len(plan)
    lock, cursor = threading.Lock(), iter(range(len(plan)))

    def client() -> None:
        while True:
            with lock:
                i = next(cursor, None)
            if i is None:
                return
            started = time.perf_counter()
            status = call(base, *plan[i])
            outcomes[i] = Outcome(plan[i][0], status, time.perf_counter() - started)
            if (i + 1) % max(1, len(plan) // 4) == 0:
                rss[i + 1] = memory(pid)[0]

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return [outcome for outcome in outcomes if outcome is not None]


def hostile_clients(port: int, kinds: list[Hostile], clients: int, limit: int, timeout: float,
                    stop: threading.Event) -> tuple[list[threading.Thread], list[Outcome]]:
    """Started threads that send the hostile kinds in turn until `stop` is set, each at most `limit` times."""
    outcomes: list[Outcome] = []

    def client(offset: int) -> None:
        for i in range(limit):
            if stop.is_set():
                return
            kind = kinds[(offset + i) % len(kinds)]
            started = time.perf_counter()
            status = exchange(port, kind, timeout)
            outcomes.append(Outcome(kind.name, status, time.perf_counter() - started))

    threads = [threading.Thread(target=client, args=(k * len(kinds) // clients,)) for k in range(clients)]
    for thread in threads:
        thread.start()
    return threads, outcomes


def run_phase(name: str, args: argparse.Namespace, base: str, pid: int, plan: list[tuple[str, dict | None]],
              kinds: list[Hostile] | None) -> Phase:
    stop = threading.Event()
    threads, hostile = (hostile_clients(args.port, kinds, args.hostile_clients, args.requests, args.hostile_timeout,
                                        stop) if kinds else ([], []))
    rss: dict[int, float] = {}
    started = time.perf_counter()
    ordinary = ordinary_clients(base, plan, args.clients, pid, rss)
    wall = time.perf_counter() - started
    stop.set()
    for thread in threads:  # each ends within one exchange: bounded by --hostile-timeout and the slow read
        thread.join()
    return Phase(name, ordinary, list(hostile), wall, rss, memory(pid)[1])


def percentiles(outcomes: list[Outcome]) -> tuple[float, float, float]:
    """(p50, p99, max) latency in milliseconds."""
    ms = sorted(1000 * o.seconds for o in outcomes) or [0.0]
    quantile = statistics.quantiles(ms, n=100, method="inclusive") if len(ms) > 1 else ms * 99
    return quantile[49], quantile[98], ms[-1]


def report(phases: list[Phase], args: argparse.Namespace) -> int:
    """Print the tables; the number of ordinary requests not answered 200 (plus one for a p99 past the target)."""
    rows, failures = [], 0
    for phase in phases:
        p50, p99, top = percentiles(phase.ordinary)
        errors = sum(o.status != 200 for o in phase.ordinary)
        server = sum(o.status >= 500 for o in phase.ordinary)
        failures += errors
        rows.append([phase.name, len(phase.ordinary), errors, server, f"{p50:.0f}", f"{p99:.0f}", f"{top:.0f}",
                     f"{len(phase.ordinary) / phase.wall:.1f}", *[f"{phase.rss[n]:.0f}" for n in sorted(phase.rss)],
                     f"{phase.peak:.0f}"])
    quarters = sorted(phases[0].rss)
    print(table(["load", "ordinary requests", "errors", "5xx", "p50 ms", "p99 ms", "max ms", "a second",
                 *[f"RSS MiB after {n}" for n in quarters], "peak RSS MiB"], rows))
    for phase in (p for p in phases if p.hostile):
        by_kind: dict[str, list[Outcome]] = {}
        for outcome in phase.hostile:
            by_kind.setdefault(outcome.kind, []).append(outcome)
        print(f"\nhostile requests beside the {phase.name} load (status 0: no answer)")
        print(table(["kind", "requests", "statuses", "p50 ms", "p99 ms"],
                    [[kind, len(found), ", ".join(f"{s}: {n}" for s, n in sorted(Counter(o.status for o in found).items())),
                      *(f"{v:.0f}" for v in percentiles(found)[:2])] for kind, found in by_kind.items()]))
    if len(phases) == 2:
        ratio = percentiles(phases[1].ordinary)[1] / max(percentiles(phases[0].ordinary)[1], 1e-9)
        print(f"\nordinary p99 with hostile clients / without: {ratio:.2f} (target: at most {args.target:g})")
        failures += ratio > args.target
    return failures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path)
    parser.add_argument("--corpus", type=Path)
    parser.add_argument("--points", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--port", type=int, default=8766)
    parser.add_argument("--hostile", choices=["off", "on", "both"], default="off")
    parser.add_argument("--hostile-clients", type=int, default=4)
    parser.add_argument("--hostile-timeout", type=float, default=30.0, help="seconds a hostile client waits at most")
    parser.add_argument("--target", type=float, default=2.0, help="the most the ordinary p99 may grow (--hostile both)")
    args = parser.parse_args()
    assert ipaddress.ip_address(HOST).is_loopback
    print(machine())
    with tempfile.TemporaryDirectory() as cache:
        server, base = start_server(args, cache)
        try:
            health = json.loads(urllib.request.urlopen(base + "/api/health").read())
            kinds = mix(health["tunes"])
            for path, body in kinds:  # warm up: the first call of each kind is not what is measured
                call(base, path, body)
            plan = [random.Random(i).choice(kinds) for i in range(args.requests)]
            hostile = hostile_mix(health["tunes"], health["max_length"])
            loads: list[tuple[str, list[Hostile] | None]] = [("ordinary", None), ("with hostile", hostile)]
            loads = loads[:1] if args.hostile == "off" else loads[1:] if args.hostile == "on" else loads
            phases = [run_phase(name, args, base, server.pid, plan, mixed) for name, mixed in loads]
        finally:
            server.terminate()
            server.wait(timeout=30)
    print(f"{args.requests} ordinary requests from {args.clients} clients"
          + (f", {args.hostile_clients} hostile clients beside them" if args.hostile != "off" else ""))
    if failures := report(phases, args):
        raise SystemExit(f"{failures} failures: ordinary requests not answered 200, or a p99 past the target")


if __name__ == "__main__":
    main()
