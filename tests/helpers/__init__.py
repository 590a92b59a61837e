"""Helpers shared by the test suite: fakes at the protocol boundaries, test data, a fake Ollama server.

Importable as ``helpers`` from any test (``pyproject.toml`` puts ``tests/`` on the path).
"""
