"""Signals `accounts` sends so higher layers can react (it never imports them)."""

from django.dispatch import Signal

#: Sent with ``user`` when an active account is deactivated; live sockets must close.
user_deactivated = Signal()
#: Sent with ``session_key`` after a session ended: logout, a flush (another user logged
#: in from that browser), deletion or expiry cleanup. Its live sockets must close.
session_ended = Signal()
#: Sent with ``user`` after her password (hash) changed: by herself, a staff reset in the
#: admin, `manage.py changepassword`. Every session of hers that was logged in before no
#: longer verifies (Django's session auth hash), so her live sockets must close.
password_changed = Signal()
