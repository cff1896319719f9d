"""Connection.host/port/pid: which worker process holds each socket (lane ops).

Expand only: nullable columns or a database default, so workers still running the previous release (between
`migrate` and their restart) keep inserting and deleting rows without knowing them.
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("messaging", "0006_requests_blocks")]

    operations = [
        migrations.AddField(
            model_name="connection",
            name="host",
            field=models.CharField(blank=True, db_default="", max_length=255),
        ),
        migrations.AddField(
            model_name="connection",
            name="port",
            field=models.PositiveIntegerField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="connection",
            name="pid",
            field=models.PositiveIntegerField(blank=True, null=True),
        ),
    ]
