from django.db import migrations, models

# The staff audit trail: append-only, as the event store and the detokenisation audit. The app role gets SELECT
# and INSERT only (fintech.db_roles.APPEND_ONLY); the trigger refuses UPDATE, DELETE and TRUNCATE to any role.
TABLE_SQL = """
CREATE TABLE fintech_staffaudit (
    id bigserial PRIMARY KEY,
    occurred_at timestamptz NOT NULL DEFAULT now(),
    user_id integer NULL,
    username varchar(150) NOT NULL,
    action varchar(16) NOT NULL CHECK (action IN
        ('login', 'login_failed', 'view', 'detokenize', 'money_form', 'export', 'command')),
    object varchar(300) NOT NULL,
    detail varchar(500) NOT NULL,
    ip varchar(45) NOT NULL,
    user_agent varchar(200) NOT NULL
);
CREATE INDEX fintech_staffaudit_occurred_at ON fintech_staffaudit (occurred_at);
CREATE INDEX fintech_staffaudit_username ON fintech_staffaudit (username, occurred_at);
CREATE FUNCTION fintech_staffaudit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'fintech_staffaudit is append-only: % rejected', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER fintech_staffaudit_no_update_delete BEFORE UPDATE OR DELETE ON fintech_staffaudit
    FOR EACH ROW EXECUTE FUNCTION fintech_staffaudit_append_only();
CREATE TRIGGER fintech_staffaudit_no_truncate BEFORE TRUNCATE ON fintech_staffaudit
    FOR EACH STATEMENT EXECUTE FUNCTION fintech_staffaudit_append_only();
"""

DROP_SQL = """
DROP TABLE fintech_staffaudit;
DROP FUNCTION fintech_staffaudit_append_only();
"""


class Migration(migrations.Migration):
    dependencies = [("fintech", "0003_log_horizon")]

    operations = [
        migrations.RunSQL(
            TABLE_SQL,
            DROP_SQL,
            state_operations=[
                migrations.CreateModel(
                    name="StaffAuditRecord",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                            ),
                        ),
                        ("occurred_at", models.DateTimeField(db_index=True)),
                        ("user_id", models.IntegerField(null=True)),
                        ("username", models.CharField(db_index=True, max_length=150)),
                        (
                            "action",
                            models.CharField(
                                choices=[
                                    ("login", "login"),
                                    ("login_failed", "login_failed"),
                                    ("view", "view"),
                                    ("detokenize", "detokenize"),
                                    ("money_form", "money_form"),
                                    ("export", "export"),
                                    ("command", "command"),
                                ],
                                max_length=16,
                            ),
                        ),
                        (
                            "object",
                            models.CharField(help_text="model label and primary key, or the path", max_length=300),
                        ),
                        ("detail", models.CharField(max_length=500)),
                        ("ip", models.CharField(max_length=45, verbose_name="from (IP)")),
                        ("user_agent", models.CharField(max_length=200)),
                    ],
                    options={
                        "verbose_name": "staff audit record",
                        "db_table": "fintech_staffaudit",
                        "ordering": ["-occurred_at"],
                        "managed": False,
                    },
                ),
            ],
        ),
    ]
