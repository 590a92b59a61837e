"""Load: `qa serve` under 20 concurrent chat sessions through the API, on loopback only.

Bounded in count and time: QA_LOAD_SECONDS (default 60; CI sets a shorter run) and at most
QA_LOAD_MAX_REQUESTS requests. Reports p95 latency and peak memory into artifacts/load.json.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from helpers.data import ROOT, SEEDS_DIR
from helpers.net import free_port

SESSIONS = 20
QUESTIONS = [
    "Who stayed in Washington despite the cancellation?",
    "How did Hamas react to the resolution?",
    "What did the U.S. representative do during the vote?",
    "How many Security Council resolutions had the United States vetoed before this one?",
    "Who had requested the meetings?",
]


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


@pytest.mark.slow
def test_twenty_concurrent_sessions(tmp_path: Path) -> None:
    from gradio_client import Client

    duration = float(os.environ.get("QA_LOAD_SECONDS", "60"))
    max_requests = int(os.environ.get("QA_LOAD_MAX_REQUESTS", "20000"))
    port = free_port()
    env = {**os.environ, "QA_INDEX_DIR": str(tmp_path / "index"), "QA_SEEDS_DIR": str(SEEDS_DIR)}
    server = subprocess.Popen(
        [sys.executable, "-m", "qa", "serve", "--port", str(port), "--llm", "extractive"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 240
        client = None
        while time.monotonic() < deadline:
            if server.poll() is not None:
                pytest.fail(f"qa serve exited: {server.stderr.read() if server.stderr else ''}")
            try:
                client = Client(url, verbose=False)
                break
            except Exception:
                time.sleep(1)
        assert client is not None, "qa serve did not come up"
        client.predict(QUESTIONS[0], api_name="/ask")  # warm-up

        latencies: list[float] = []
        errors: list[str] = []
        uncited: list[str] = []
        memory: list[tuple[float, float]] = []
        lock = threading.Lock()
        start = time.monotonic()
        stop_at = start + duration

        def session(i: int) -> None:
            c = Client(url, verbose=False)
            k = i
            while time.monotonic() < stop_at:
                with lock:
                    if len(latencies) + len(errors) >= max_requests:
                        return
                q = QUESTIONS[k % len(QUESTIONS)]
                k += 1
                t0 = time.perf_counter()
                try:
                    out = c.predict(q, api_name="/ask")
                    result = json.loads(out) if isinstance(out, str) else out
                except Exception as exc:
                    with lock:
                        errors.append(repr(exc))
                    continue
                dt = time.perf_counter() - t0
                with lock:
                    latencies.append(dt)
                    if result.get("abstained") or not result.get("citations"):
                        uncited.append(q)

        def sample_memory() -> None:
            while time.monotonic() < stop_at:
                memory.append((time.monotonic() - start, _rss_mb(server.pid)))
                time.sleep(0.5)

        threads = [threading.Thread(target=session, args=(i,)) for i in range(SESSIONS)]
        sampler = threading.Thread(target=sample_memory)
        for t in [*threads, sampler]:
            t.start()
        for t in [*threads, sampler]:
            t.join(timeout=duration + 120)
        assert server.poll() is None, "the server died under load"

        latencies.sort()
        p95 = latencies[int(0.95 * (len(latencies) - 1))] if latencies else float("nan")
        rss = [m for _, m in memory]
        quarter = max(1, len(rss) // 4)
        report = {
            "sessions": SESSIONS,
            "seconds": duration,
            "requests": len(latencies),
            "errors": len(errors),
            "uncited": len(uncited),
            "p50_ms": round(statistics.median(latencies) * 1000, 1) if latencies else None,
            "p95_ms": round(p95 * 1000, 1),
            "rss_first_quarter_mb": round(statistics.mean(rss[:quarter]), 1) if rss else None,
            "rss_last_quarter_mb": round(statistics.mean(rss[-quarter:]), 1) if rss else None,
            "rss_peak_mb": round(max(rss), 1) if rss else None,
        }
        out_dir = ROOT / "artifacts"
        out_dir.mkdir(exist_ok=True)
        (out_dir / "load.json").write_text(json.dumps(report, indent=2))
        print("\nload test:", json.dumps(report))

        assert not errors, errors[:5]
        assert not uncited, uncited[:5]
        assert len(latencies) >= SESSIONS
        assert rss, "no memory samples"
        # memory flat: the last quarter of the run holds no more than the first quarter plus a margin
        assert statistics.mean(rss[-quarter:]) <= statistics.mean(rss[:quarter]) * 1.15 + 50
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
