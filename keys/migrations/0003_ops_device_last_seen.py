"""Device.last_seen for staff (lane ops). Expand only: a nullable column, which workers
of the release before ignore until their restart."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("keys", "0002_identity_links")]

    operations = [
        migrations.AddField(
            model_name="device",
            name="last_seen",
            field=models.DateTimeField(blank=True, null=True),
        ),
    ]
