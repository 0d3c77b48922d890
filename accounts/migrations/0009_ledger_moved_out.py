from django.db import migrations

# The ledger's models now live in the ledger app (ledger 0001), on the same tables: they leave this app's state
# only, and the database keeps every row. Dependents go first, so that no model left in the state points at a
# deleted one.
MOVED = [
    "bookingalert",
    "settledpayment",
    "settlementline",
    "hold",
    "transfer",
    "posting",
    "settlementbatch",
    "journalentry",
    "account",
]


def _content_types_move(apps, from_label: str, to_label: str) -> None:
    """Relabel the moved models' content types, so that their permissions, every grant of them (the finance
    group's view permissions, 0005 and 0008) and the admin's log follow the models."""
    ContentType = apps.get_model("contenttypes", "ContentType")
    Permission = apps.get_model("auth", "Permission")
    LogEntry = apps.get_model("admin", "LogEntry")
    for model in MOVED:
        moving = ContentType.objects.filter(app_label=from_label, model=model).first()
        if moving is None:
            continue
        already = ContentType.objects.filter(app_label=to_label, model=model).first()
        if already is None:
            moving.app_label = to_label
            moving.save(update_fields=["app_label"])
            continue
        # Created under the new label in the meantime (post_migrate after a partial migrate, a flushed test
        # database): the moving type's permissions, their grants and its log entries join that one.
        for permission in Permission.objects.filter(content_type=moving):
            twin, _ = Permission.objects.get_or_create(
                content_type=already, codename=permission.codename, defaults={"name": permission.name}
            )
            twin.group_set.add(*permission.group_set.all())
            twin.user_set.add(*permission.user_set.all())
        LogEntry.objects.filter(content_type=moving).update(content_type=already)
        moving.delete()


def content_types_to_ledger(apps, schema_editor):
    _content_types_move(apps, "accounts", "ledger")


def content_types_to_accounts(apps, schema_editor):
    _content_types_move(apps, "ledger", "accounts")


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0008_booking_alert"),
        ("ledger", "0001_initial"),
        ("admin", "0003_logentry_add_action_flag_choices"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name=name) for name in MOVED],
            database_operations=[],
        ),
        migrations.RunPython(content_types_to_ledger, content_types_to_accounts),
    ]
