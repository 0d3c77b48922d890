from django.conf import settings
from django.db import migrations, models

# The seed's UNIQUE (aggregate_id, version) and event_id primary key cannot exist on a table partitioned by
# occurred_at (a unique constraint there must contain the partition key). Per-stream uniqueness lives in
# fintech_stream instead: appends advance its version with a compare-and-set. transaction_id lets readers
# see only events below the oldest running transaction, so late commits are never skipped.
CREATE_SQL = """
CREATE TABLE fintech_stream (
    stream_id uuid PRIMARY KEY,
    aggregate_type varchar(64) NOT NULL,
    version integer NOT NULL CHECK (version >= 0),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE fintech_event (
    position bigint GENERATED ALWAYS AS IDENTITY,
    transaction_id xid8 NOT NULL DEFAULT pg_current_xact_id(),
    event_id uuid NOT NULL,
    aggregate_id uuid NOT NULL,
    aggregate_type varchar(64) NOT NULL,
    event_type varchar(128) NOT NULL,
    event_version smallint NOT NULL DEFAULT 1 CHECK (event_version >= 1),
    event_data jsonb NOT NULL,
    metadata jsonb NOT NULL DEFAULT '{}'::jsonb,
    version integer NOT NULL CHECK (version >= 1),
    occurred_at timestamptz NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (event_id, occurred_at)
) PARTITION BY RANGE (occurred_at);

CREATE INDEX fintech_event_stream_idx ON fintech_event (aggregate_id, version);
CREATE INDEX fintech_event_log_idx ON fintech_event (transaction_id, position);
CREATE INDEX fintech_event_type_idx ON fintech_event (event_type, occurred_at);
CREATE TABLE fintech_event_default PARTITION OF fintech_event DEFAULT;

CREATE FUNCTION fintech_event_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'fintech_event is append-only: % rejected', TG_OP
        USING ERRCODE = 'insufficient_privilege', HINT = 'events are immutable; append a new event instead';
END
$$;

CREATE TRIGGER fintech_event_no_update_delete BEFORE UPDATE OR DELETE ON fintech_event
    FOR EACH ROW EXECUTE FUNCTION fintech_event_append_only();
-- Statement triggers are not inherited by partitions: ensure_partitions adds this one to each of them.
CREATE TRIGGER fintech_event_no_truncate BEFORE TRUNCATE ON fintech_event
    FOR EACH STATEMENT EXECUTE FUNCTION fintech_event_append_only();
CREATE TRIGGER fintech_event_no_truncate BEFORE TRUNCATE ON fintech_event_default
    FOR EACH STATEMENT EXECUTE FUNCTION fintech_event_append_only();

CREATE FUNCTION fintech_stream_forward_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'UPDATE' THEN
        RAISE EXCEPTION 'fintech_stream rows are never removed: % rejected', TG_OP
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF NEW.stream_id <> OLD.stream_id OR NEW.aggregate_type <> OLD.aggregate_type
       OR NEW.version < OLD.version THEN
        RAISE EXCEPTION 'a stream only moves forward' USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER fintech_stream_forward_only BEFORE UPDATE OR DELETE ON fintech_stream
    FOR EACH ROW EXECUTE FUNCTION fintech_stream_forward_only();
CREATE TRIGGER fintech_stream_no_truncate BEFORE TRUNCATE ON fintech_stream
    FOR EACH STATEMENT EXECUTE FUNCTION fintech_stream_forward_only();
"""


class Migration(migrations.Migration):
    initial = True
    dependencies = [migrations.swappable_dependency(settings.AUTH_USER_MODEL)]

    operations = [
        migrations.RunSQL(CREATE_SQL),
        migrations.CreateModel(
            name="Stream",
            fields=[
                ("stream_id", models.UUIDField(primary_key=True, serialize=False)),
                ("aggregate_type", models.CharField(max_length=64)),
                ("version", models.PositiveIntegerField()),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                ("updated_at", models.DateTimeField(auto_now=True)),
            ],
            options={"db_table": "fintech_stream", "managed": False},
        ),
        migrations.CreateModel(
            name="Event",
            fields=[
                ("event_id", models.UUIDField(primary_key=True, serialize=False)),
                ("position", models.BigIntegerField(editable=False)),
                ("aggregate_id", models.UUIDField()),
                ("aggregate_type", models.CharField(max_length=64)),
                ("event_type", models.CharField(max_length=128)),
                ("event_version", models.PositiveSmallIntegerField()),
                ("event_data", models.JSONField()),
                ("metadata", models.JSONField()),
                ("version", models.PositiveIntegerField()),
                ("occurred_at", models.DateTimeField()),
                ("created_at", models.DateTimeField()),
            ],
            options={"db_table": "fintech_event", "managed": False, "ordering": ["aggregate_id", "version"]},
        ),
        migrations.CreateModel(
            name="IdempotencyRecord",
            fields=[
                (
                    "id",
                    models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID"),
                ),
                ("key", models.CharField(max_length=255)),
                ("fingerprint", models.CharField(max_length=64)),
                ("response_status", models.PositiveSmallIntegerField()),
                ("response_body", models.JSONField(null=True)),
                ("response_headers", models.JSONField(default=dict)),
                ("created_at", models.DateTimeField(auto_now_add=True, db_index=True)),
                (
                    "owner",
                    models.ForeignKey(on_delete=models.deletion.CASCADE, related_name="+", to=settings.AUTH_USER_MODEL),
                ),
            ],
            options={"db_table": "fintech_idempotency"},
        ),
        migrations.AddConstraint(
            model_name="idempotencyrecord",
            constraint=models.UniqueConstraint(fields=("owner", "key"), name="idempotency_owner_key_unique"),
        ),
    ]
