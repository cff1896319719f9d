"""Group standup bot: asks a group for its standup, collects each member's answer and
posts the summary, then ends (run it from cron or a systemd timer).

    CHAT_SERVER=... BOT_USERNAME=... BOT_PASSWORD=... BOT_KEY_FILE=... BOT_PASSPHRASE=... \\
    python examples/standup_bot.py GROUP_ID [--wait MINUTES]

An answer is a reply to the bot's question, or a text starting with ``/standup``. The
summary goes out when every member answered or when the wait is over.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys

from chatclient import ChatError, Message, Status, connect, run
from chatclient.handlers import parse_command

log = logging.getLogger("standup_bot")
QUESTION = "Standup! Reply to this message (or write /standup ...): done, next, blockers."


def summary(answers: dict[str, str], members: list[str]) -> str:
    lines = [f"Standup summary ({len(answers)} of {len(members)} answered):"]
    for name in members:
        lines.append(f"- {name}: {answers.get(name, '(no answer)')}")
    return "\n".join(lines)


async def standup(group: int, wait: float) -> None:
    async with connect(
        os.environ["CHAT_SERVER"],
        username=os.environ["BOT_USERNAME"],
        password=os.environ["BOT_PASSWORD"],
        key_file=os.environ["BOT_KEY_FILE"],
        passphrase=os.environ["BOT_PASSPHRASE"],
    ) as client:
        conversation = await client.get_conversation(group)
        members = sorted(m for m in conversation.members if m != client.username)
        answers: dict[str, str] = {}
        question: dict[str, object] | None = None
        try:
            async with asyncio.timeout(wait):
                async for event in client.events():
                    if isinstance(event, Status) and event.state == "connected":
                        if question is None:  # ask once we listen: no answer is missed
                            stored = await client.send_text(group, QUESTION)
                            question = {
                                "sender_id": client.user_id,
                                "client_msg_id": stored["client_msg_id"],
                            }
                            log.info("asked conversation %s", group)
                    elif isinstance(event, Message) and event.conversation == group:
                        text = answer_of(event, question)
                        if text is not None and event.sender in members:
                            answers[event.sender] = text
                            await event.react("👍")
                            if len(answers) == len(members):
                                break
        except TimeoutError:
            log.info("the wait is over: %s of %s answered", len(answers), len(members))
        try:
            await client.send_text(group, summary(answers, members))
        except ChatError as error:
            log.error("could not post the summary: %s", error)
            raise


def answer_of(message: Message, question: dict[str, object] | None) -> str | None:
    """The standup answer a message gives, or None."""
    if message.own or message.text is None or question is None:
        return None
    command = parse_command(message.text)
    if command is not None and command[0] == "standup":
        return command[1] or "(empty)"
    return message.text if message.reply_to == question else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("group", type=int, help="the group's conversation id")
    parser.add_argument("--wait", type=float, default=60.0, help="minutes to wait (60)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # not a line per request
    return run(standup(args.group, args.wait * 60))


if __name__ == "__main__":
    sys.exit(main())
