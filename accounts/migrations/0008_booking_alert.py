import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models

# Booking alerts are a record of the ledger's: append-only and never flushed, as the ledger tables (0004).
APPEND_ONLY_SQL = """
CREATE TRIGGER accounts_bookingalert_no_update_delete BEFORE UPDATE OR DELETE ON accounts_bookingalert
    FOR EACH ROW EXECUTE FUNCTION accounts_ledger_append_only();
CREATE TRIGGER accounts_bookingalert_no_truncate BEFORE TRUNCATE ON accounts_bookingalert
    FOR EACH STATEMENT EXECUTE FUNCTION accounts_ledger_append_only();
"""

WRITABLE_SQL = """
DROP TRIGGER accounts_bookingalert_no_truncate ON accounts_bookingalert;
DROP TRIGGER accounts_bookingalert_no_update_delete ON accounts_bookingalert;
"""


def finance_views_alerts(apps, schema_editor):
    """The finance group, who resolve what lands in suspense, views the alerts in the admin."""
    Permission = apps.get_model("auth", "Permission")
    ContentType = apps.get_model("contenttypes", "ContentType")
    Group = apps.get_model("auth", "Group")
    content_type, _ = ContentType.objects.get_or_create(app_label="accounts", model="bookingalert")
    # Permissions are normally created after migrate; the role needs this one now. Same name as Django's.
    permission, _ = Permission.objects.get_or_create(
        content_type=content_type, codename="view_bookingalert", defaults={"name": "Can view booking alert"}
    )
    Group.objects.get_or_create(name="finance")[0].permissions.add(permission)


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0007_api_tokens"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [
        migrations.CreateModel(
            name="BookingAlert",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                (
                    "event_id",
                    models.UUIDField(help_text="the payment event that could not be booked", unique=True),
                ),
                ("event_type", models.CharField(max_length=64)),
                ("payment_id", models.UUIDField(db_index=True)),
                ("amount", models.BigIntegerField()),
                ("currency", models.CharField(max_length=3)),
                ("reason", models.TextField()),
                (
                    "suspense_entry",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to="accounts.journalentry",
                    ),
                ),
                ("created_at", models.DateTimeField(db_index=True, default=django.utils.timezone.now)),
            ],
            options={"db_table": "accounts_bookingalert"},
        ),
        migrations.RunSQL(APPEND_ONLY_SQL, WRITABLE_SQL),
        migrations.AlterModelOptions(name="bookingalert", options={"managed": False}),
        migrations.RunPython(finance_views_alerts, migrations.RunPython.noop),
    ]
