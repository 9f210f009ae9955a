"""``fraudshop notifications``: the rule hits the job announces, as they come."""

from __future__ import annotations

import argparse

from fraudshop.cli.registry import Commands, add_command
from fraudshop.config import Config

#: What a line of the listing shows of a notification.
SHOWN_FIELDS: tuple[str, ...] = (
    "detected_at",
    "action",
    "kind",
    "customer_id",
    "merchant_id",
    "account_no",
    "tranid",
    "reason",
)


def notifications(config: Config, args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.markup import escape

    from fraudshop.io.kafka.notification_reader import notification_messages

    console = Console()
    shown = 0
    messages = notification_messages(config.kafka, follow=args.follow, from_beginning=not args.new_only)
    try:
        for message in messages:
            shown += 1
            line = "  ".join(
                f"[bold]{escape(str(message.get(name) or '-'))}[/bold]"
                if name == "action"
                else escape(str(message.get(name) or "-"))
                for name in SHOWN_FIELDS
            )
            console.print(line, soft_wrap=True)
            console.print(f"    id {escape(str(message.get('id')))}", style="dim")
    except KeyboardInterrupt:
        pass
    console.print(f"{shown} notification(s)", style="dim")
    return 0


def register(commands: Commands) -> None:
    parser = add_command(
        commands,
        "notifications",
        notifications,
        "print the rule hits announced on the notifications topic, each once (repeats of an id are dropped)",
    )
    parser.add_argument("--follow", action="store_true", help="keep printing new ones until Ctrl-C")
    parser.add_argument(
        "--new-only", action="store_true", help="only those announced from now on, not the topic's history"
    )
