"""`manage.py purge_blobs`: delete unnamed blobs older than BLOB_UNNAMED_TTL (24 h) and
storage files with no row older than BLOB_ORPHAN_GRACE (1 h). Run hourly (deploy/systemd)."""

from django.core.management.base import BaseCommand

from messaging.actions.blobs import purge


class Command(BaseCommand):
    help = "Delete unnamed blobs older than BLOB_UNNAMED_TTL and orphaned blob files."

    def handle(self, *args, **options):
        unnamed, orphaned = purge()
        self.stdout.write(f"purged {unnamed} unnamed blobs and {orphaned} orphaned files")
