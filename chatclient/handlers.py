"""The handler layer beside the ``async for`` loop: ``@client.on_message``,
``@client.command("standup")``, ``@client.on(Typing)``, then ``await client.run()``.

Handlers run one at a time, in the order events arrive (messages in seq order). A
handler that raises is logged (``logging``, logger ``chatclient.handlers``) and the bot
goes on with the next event: one bad message does not end it. A message counts as
handled (its conversation's cursor moves past it, in the state file) once its handlers
returned, so a crash in between hands it over again on the next start.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from .objects import Message

if TYPE_CHECKING:
    from .client import ChatClient

logger = logging.getLogger(__name__)

MessageHandler = Callable[[Message], Awaitable[Any]]
CommandHandler = Callable[[Message, str], Awaitable[Any]]
EventHandler = Callable[[Any], Awaitable[Any]]
M = TypeVar("M", bound=MessageHandler)
C = TypeVar("C", bound=CommandHandler)
E = TypeVar("E", bound=EventHandler)


def parse_command(text: str | None, prefix: str = "/") -> tuple[str, str] | None:
    """``("standup", "rest of the line")`` for ``"/standup rest of the line"`` (the name
    lowercased, ``/standup@bot`` too), None for a text that is no command."""
    if not text or not text.startswith(prefix):
        return None
    head, _, args = text[len(prefix) :].partition(" ")
    name = head.split("@", 1)[0].strip().lower()
    if not name or not name.isidentifier():
        return None
    return name, args.strip()


class Handlers:
    """The handlers registered on one client."""

    def __init__(self) -> None:
        self.on_message: list[MessageHandler] = []
        self.commands: dict[tuple[str, str], CommandHandler] = {}
        self.on_event: list[tuple[type, EventHandler]] = []
        self.on_unknown_command: CommandHandler | None = None

    async def dispatch(self, event: object, *, include_own: bool = False) -> None:
        """Run the handlers that match ``event``; errors are logged, never raised."""
        if isinstance(event, Message):
            if event.own and not include_own:
                return
            await self._message(event)
            return
        for kind, handler in self.on_event:
            if isinstance(event, kind):
                await _guarded(handler, event)

    async def _message(self, message: Message) -> None:
        for (prefix, name), handler in self.commands.items():
            parsed = parse_command(message.text, prefix)
            if parsed is not None and parsed[0] == name:
                await _guarded(handler, message, parsed[1])
                return
        for handler in self.on_message:
            await _guarded(handler, message)


async def _guarded(handler: Callable[..., Awaitable[Any]], *args: Any) -> None:
    try:
        await handler(*args)
    except Exception:  # a handler's bug must not end the bot
        logger.exception("handler %s failed", getattr(handler, "__name__", handler))


async def run(client: ChatClient, *, since: str = "cursor", include_own: bool = False) -> None:
    """Listen and dispatch until cancelled (Ctrl-C) or a fatal error (a revoked device,
    a session that cannot be renewed): ``ChatClient.run``."""
    async for event in client.events(since=since):
        await client.handlers.dispatch(event, include_own=include_own)
