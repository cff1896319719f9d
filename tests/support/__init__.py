"""Test helpers that run real processes (redis-server, PostgreSQL, daphne) on loopback.

The process classes are `scripts.devstack`; `fixtures` is a pytest plugin exposing them.
"""
