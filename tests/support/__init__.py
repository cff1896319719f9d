"""Test helpers that run real processes (redis-server, PostgreSQL, daphne) on loopback.

`services` has the process classes; `fixtures` is a pytest plugin exposing them.
"""
