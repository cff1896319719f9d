"""Benchmarks of the chat server (see docs/performance.md)."""
