"""Who a logged-in user can find by name (`GET /api/users/?q=`).

`USER_DISCOVERY = "prefix"` (the default): active users whose name starts with `q`
(any letter case), once `q` has at least `USER_SEARCH_MIN` (3) characters, so one
letter does not list the accounts. `"exact"`: only the active user of exactly that name
(any letter case). Either way at most `USER_SEARCH_LIMIT` (default 20) users, by name.
"""

from django.conf import settings

from .models import User

USER_SEARCH_MIN = 3


def find_users(q: str) -> list[User]:
    """The active users `q` finds under the discovery setting (empty if too short)."""
    q = q.strip()[:150]
    users = User.objects.filter(is_active=True)
    if settings.USER_DISCOVERY == "exact":
        users = users.filter(username__iexact=q) if q else users.none()
    elif len(q) < USER_SEARCH_MIN:
        return []
    else:
        users = users.filter(username__istartswith=q)
    return list(users.order_by("username")[: settings.USER_SEARCH_LIMIT])
