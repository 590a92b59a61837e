"""Slow model answers cannot hold every answer slot: a model streaming a word every 0.4 s (about 12 s an
answer) fills the model's slots, and other questions are still answered at once. The model is a fake Ollama
server on loopback; the app is launched with four answer slots (two for the model, two kept free)."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from gradio_client import Client
from helpers.data import GALLANT_Q, SEED_ID
from helpers.fake_ollama import FakeOllama
from helpers.net import free_port
from qa.ui.app import build_app
from qa.ui.server import launch
from qa.ui.slots import busy_notice

from qa import config
from qa.pipeline import Pipeline

SLOW = ("Despite the cancellation, Yoav Gallant remained in Washington [1]. " * 5).strip()


def test_slow_model_answers_leave_slots_for_everyone_else(
    embedder: Any, seed_text: str, fake_ollama: Callable[..., FakeOllama]
) -> None:
    fake = fake_ollama(SLOW, delay=0.4)
    settings = config.resolve(ollama_host=fake.host, ollama_timeout=10)
    pipeline = Pipeline.from_texts({SEED_ID: seed_text}, embedder=embedder, settings=settings)
    demo = build_app(pipeline, llm="auto", concurrency_limit=4)
    url = launch(demo, host="127.0.0.1", port=free_port())
    try:
        def ask(question: str) -> tuple[float, dict[str, Any]]:
            t0 = time.monotonic()
            result = Client(url, verbose=False).predict(question, api_name="/ask")
            return time.monotonic() - t0, result

        with ThreadPoolExecutor(max_workers=8) as pool:
            slow = [pool.submit(ask, GALLANT_Q) for _ in range(2)]
            while len(fake.chat_requests) < 2:  # both model slots are streaming
                time.sleep(0.05)
            quick = [pool.submit(ask, q) for q in [GALLANT_Q, GALLANT_Q, "What is the boiling point of mercury?"]]
            quick_results = [f.result(timeout=60) for f in quick]
            for seconds, _ in quick_results:
                assert seconds < 8, f"a question waited {seconds:.1f} s behind slow model answers"
            assert not any(f.done() for f in slow), "the slow answers should still be streaming"
            slow_results = [f.result(timeout=120) for f in slow]
        answered = [r for _, r in quick_results if not r["abstained"]]
        assert answered and all(r["backend"] == "extractive" and r["notice"] == busy_notice(2) for r in answered)
        assert all(r["backend"] == "ollama:llama3.2" and s > 8 for s, r in slow_results)
        assert len(fake.chat_requests) == 2, "only two answers went to the model at once"
    finally:
        fake.release.set()
        demo.close()
