"""Command bot: ``/help``, ``/roll 2d6``, ``/time`` and ``/whoami``, in any conversation
it is in (direct or group). Unknown commands get a hint; other texts are ignored.

    CHAT_SERVER=... BOT_USERNAME=... BOT_PASSWORD=... BOT_KEY_FILE=... BOT_PASSPHRASE=... \\
    python examples/command_bot.py
"""

from __future__ import annotations

import logging
import os
import random
import re
import sys
from datetime import UTC, datetime

from chatclient import ChatError, Message, Status, connect, run
from chatclient.handlers import parse_command

log = logging.getLogger("command_bot")
HELP = "commands: /help, /roll NdM (e.g. /roll 2d6), /time, /whoami"
DICE = re.compile(r"^(\d{1,2})d(\d{1,3})$")


def roll(spec: str, rng: random.Random) -> str:
    """``"2d6"`` -> ``"2d6: 3 + 5 = 8"``; a bad spec gets how to write it."""
    match = DICE.match(spec.strip() or "1d6")
    if match is None or not 1 <= int(match[1]) <= 20 or not 2 <= int(match[2]) <= 100:
        return "roll NdM: N dice (1-20) of M sides (2-100), e.g. /roll 2d6"
    dice = [rng.randint(1, int(match[2])) for _ in range(int(match[1]))]
    return f"{match[0]}: {' + '.join(map(str, dice))} = {sum(dice)}"


async def answer(message: Message, text: str) -> None:
    try:
        await message.reply(text)
    except ChatError as error:
        log.warning("could not answer message %s: %s", message.id, error)


async def main() -> None:
    rng = random.Random()
    async with connect(
        os.environ["CHAT_SERVER"],
        username=os.environ["BOT_USERNAME"],
        password=os.environ["BOT_PASSWORD"],
        key_file=os.environ["BOT_KEY_FILE"],
        passphrase=os.environ["BOT_PASSPHRASE"],
    ) as client:

        @client.command("help")
        async def help_(message: Message, args: str) -> None:
            await answer(message, HELP)

        @client.command("roll")
        async def roll_(message: Message, args: str) -> None:
            await answer(message, roll(args, rng))

        @client.command("time")
        async def time_(message: Message, args: str) -> None:
            await answer(message, datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC"))

        @client.command("whoami")
        async def whoami(message: Message, args: str) -> None:
            await answer(message, f"you are {message.sender} (user {message.sender_id})")

        @client.on_message
        async def other(message: Message) -> None:
            if parse_command(message.text) is not None:  # a command no handler took
                await answer(message, f"unknown command; {HELP}")

        @client.on(Status)
        async def status(event: Status) -> None:
            log.info("%s %s", event.state, event.detail)

        await client.run()


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # not a line per request
    sys.exit(run(main()))
