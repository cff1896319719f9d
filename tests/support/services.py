"""Moved to ``scripts.devstack`` (issue 18): this module only re-exports its names for
one session, so that work begun against the old path still imports. New code imports
``scripts.devstack``; this file goes once every caller has moved."""

from scripts.devstack import *  # noqa: F403
from scripts.devstack import __all__  # noqa: F401
