from django.db import migrations

FINANCE_GROUP = "finance"
# The ledger models finance staff may view in the admin: (model name, verbose name).
LEDGER_MODELS = [
    ("account", "account"),
    ("journalentry", "journal entry"),
    ("posting", "posting"),
    ("transfer", "transfer"),
    ("hold", "hold"),
    ("settlementbatch", "settlement batch"),
    ("settlementline", "settlement line"),
]


def _view_permissions(apps):
    Permission = apps.get_model("auth", "Permission")
    ContentType = apps.get_model("contenttypes", "ContentType")
    for model, verbose_name in LEDGER_MODELS:
        content_type, _ = ContentType.objects.get_or_create(app_label="accounts", model=model)
        # Permissions are normally created after migrate; the role needs them now. Same name as Django's.
        permission, _ = Permission.objects.get_or_create(
            content_type=content_type, codename=f"view_{model}", defaults={"name": f"Can view {verbose_name}"}
        )
        yield permission


def finance_role_grant(apps, schema_editor):
    """The finance group views the ledger in the admin (its transfer form checks the group itself)."""
    Group = apps.get_model("auth", "Group")
    group, _ = Group.objects.get_or_create(name=FINANCE_GROUP)
    group.permissions.add(*_view_permissions(apps))


def finance_role_revoke(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    group = Group.objects.filter(name=FINANCE_GROUP).first()
    if group is not None:
        group.permissions.remove(*_view_permissions(apps))


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0004_ledger_rules"),
        ("vault", "0002_roles_and_audit_guard"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(finance_role_grant, finance_role_revoke)]
