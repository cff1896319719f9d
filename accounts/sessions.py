"""Tell higher layers when a session ends or a password changes (`accounts.signals`).

Connected in `AccountsConfig.ready`. A session ends at logout (Django's
`user_logged_out`, whatever the session engine) and whenever its row is deleted with
the database engines (the default): a flush when another user logs in from the same
browser, the cycle after a password change, an admin deleting it, `clearsessions`.
Both are sent after the transaction commits.
"""

from django.contrib.auth.signals import user_logged_out
from django.contrib.sessions.models import Session
from django.db import transaction
from django.db.models.signals import post_delete
from django.dispatch import receiver

from .signals import session_ended


def _ended(session_key: str | None) -> None:
    if session_key:
        transaction.on_commit(lambda: session_ended.send(sender=Session, session_key=session_key))


@receiver(user_logged_out)
def on_logged_out(sender, request, user, **kwargs):
    session = getattr(request, "session", None)
    _ended(session.session_key if session is not None else None)


@receiver(post_delete, sender=Session)
def on_session_deleted(sender, instance, **kwargs):
    _ended(instance.session_key)
