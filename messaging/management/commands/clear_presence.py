"""`manage.py clear_presence [--all]`: delete presence rows of sockets that are gone.

Without `--all`: the rows not refreshed for STALE_SECONDS (a crashed worker's), safe while
the workers run. With `--all`: every row, for a cold start or after restoring a backup
(docs/deploy.md section 12), while no worker runs.
"""

from django.core.management.base import BaseCommand

from messaging import presence


class Command(BaseCommand):
    help = "Delete presence (Connection) rows of sockets that are gone."

    def add_arguments(self, parser):
        parser.add_argument(
            "--all",
            action="store_true",
            help="delete every row (only while no worker runs: cold start, restore)",
        )

    def handle(self, *args, **options):
        removed = presence.clear_stale(everything=options["all"])
        which = "all" if options["all"] else f"not seen for {presence.STALE_SECONDS} s"
        self.stdout.write(f"cleared {removed} presence rows ({which})")
