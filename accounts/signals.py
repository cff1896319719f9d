"""Signals `accounts` sends so higher layers can react (it never imports them)."""

from django.dispatch import Signal

#: Sent with ``user`` when an active account is deactivated; live sockets must close.
user_deactivated = Signal()
