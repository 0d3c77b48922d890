from django.db import migrations


def auditor_role_create(apps, schema_editor):
    """The auditor group (fintech.policy: reads every page of data and every audit trail, changes nothing). It
    holds no permission: the policy grants its pages by role, and it must never get vault.detokenize."""
    apps.get_model("auth", "Group").objects.get_or_create(name="auditor")


class Migration(migrations.Migration):
    dependencies = [("vault", "0003_audit_unmanaged"), ("auth", "0012_alter_user_first_name_max_length")]

    operations = [migrations.RunPython(auditor_role_create, migrations.RunPython.noop)]
