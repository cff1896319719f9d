"""Echo bot: answers every text message with a reply that repeats it.

Texts too long to repeat in one message (a text is at most 16,000 characters) are
repeated in parts. An error answering one message is logged and the bot goes on. It
reconnects by itself, logs in again when its session ends, keeps its state (what it
handled, its counters) in a file beside its key file, so a message sent while it was
down is answered once when it is back, and ends cleanly on Ctrl-C or SIGTERM.

    CHAT_SERVER=https://chat.example.org BOT_USERNAME=echobot BOT_PASSWORD=... \\
    BOT_KEY_FILE=echobot/keystore.json BOT_PASSPHRASE=... python examples/echo_bot.py
"""

from __future__ import annotations

import logging
import os
import sys

from chatclient import ChatError, Message, Status, connect, run

MAX_TEXT = 16_000  # characters in one text message (PROTOCOL §6)
PREFIX = "echo: "

log = logging.getLogger("echo_bot")


def parts(text: str) -> list[str]:
    """The replies that repeat ``text``: one if it fits, else numbered parts."""
    if len(PREFIX) + len(text) <= MAX_TEXT:
        return [PREFIX + text]
    size = MAX_TEXT - len("echo (99/99): ")
    pieces = [text[i : i + size] for i in range(0, len(text), size)]
    return [f"echo ({n}/{len(pieces)}): {piece}" for n, piece in enumerate(pieces, 1)]


async def main() -> None:
    async with connect(
        os.environ["CHAT_SERVER"],
        username=os.environ["BOT_USERNAME"],
        password=os.environ["BOT_PASSWORD"],
        key_file=os.environ["BOT_KEY_FILE"],
        passphrase=os.environ["BOT_PASSPHRASE"],
    ) as client:

        @client.on_message
        async def echo(message: Message) -> None:
            if message.kind != "text" or message.text is None:
                return  # unverified, replayed, a file, a reaction ...: nothing to repeat
            try:
                for reply in parts(message.text):
                    await message.reply(reply)
                await client.mark_read(message.conversation, message.seq)
            except ChatError as error:  # paused by an identity change, rate limited ...
                log.warning("could not answer message %s: %s", message.id, error)

        @client.on(Status)
        async def status(event: Status) -> None:
            log.info("%s %s", event.state, event.detail)

        await client.run()


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # not a line per request
    sys.exit(run(main()))
