from django.db import migrations

ROLES = {"support": [], "finance": [], "cde": ["detokenize"]}

AUDIT_GUARD_SQL = """
CREATE FUNCTION vault_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'vault_detokenizationaudit is append-only: % rejected', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER vault_audit_no_update_delete BEFORE UPDATE OR DELETE ON vault_detokenizationaudit
    FOR EACH ROW EXECUTE FUNCTION vault_audit_append_only();
CREATE TRIGGER vault_audit_no_truncate BEFORE TRUNCATE ON vault_detokenizationaudit
    FOR EACH STATEMENT EXECUTE FUNCTION vault_audit_append_only();
"""

AUDIT_UNGUARD_SQL = """
DROP TRIGGER vault_audit_no_truncate ON vault_detokenizationaudit;
DROP TRIGGER vault_audit_no_update_delete ON vault_detokenizationaudit;
DROP FUNCTION vault_audit_append_only();
"""


def create_roles(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    ContentType = apps.get_model("contenttypes", "ContentType")
    card_type, _ = ContentType.objects.get_or_create(app_label="vault", model="card")
    # Permissions are normally created after migrate; the CDE role needs this one now.
    detokenize, _ = Permission.objects.get_or_create(
        content_type=card_type, codename="detokenize", defaults={"name": "Can see card numbers (the CDE role)"}
    )
    for name, codenames in ROLES.items():
        group, _ = Group.objects.get_or_create(name=name)
        if "detokenize" in codenames:
            group.permissions.add(detokenize)


class Migration(migrations.Migration):
    dependencies = [
        ("vault", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [
        migrations.RunPython(create_roles, migrations.RunPython.noop),
        migrations.RunSQL(AUDIT_GUARD_SQL, AUDIT_UNGUARD_SQL),
    ]
