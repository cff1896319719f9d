"""Every write to messaging, one module per concern; REST views and the WebSocket consumer
both call these. Each validates, writes in one transaction, and fans the resulting frames
out after commit. Refusals raise `accounts.errors.ActionError` and change nothing.

* `conversations`: direct conversations, `conversation` frames;
* `rosters`: groups from record 0, and every later roster record (§8);
* `sending`: v2 envelopes checked and stored, group commit, fan-out (§2);
* `read_marks`: read marks (§5);
* `blobs`: encrypted attachments stored, named by sends, deleted (§10.2);
* `takeback`: a sender takes her message back for everyone (§10.1);
* `requests`: message requests (accept, decline) and blocks (§6).
"""

from .conversations import active_users, create_direct, publish_conversation
from .read_marks import amark_read, mark_read
from .requests import accept, block, decline, unblock
from .rosters import create_group, post_record
from .sending import (
    SendOutcome,
    asend_message,
    send_message,
    signing_key,
    store_message,
    store_messages,
)
from .takeback import take_back

__all__ = [
    "SendOutcome",
    "accept",
    "active_users",
    "amark_read",
    "asend_message",
    "block",
    "create_direct",
    "create_group",
    "decline",
    "mark_read",
    "post_record",
    "publish_conversation",
    "send_message",
    "signing_key",
    "store_message",
    "store_messages",
    "take_back",
    "unblock",
]
