from django.db import migrations

# Each stream remembers the earliest and latest occurred_at of its events, kept by the same trigger that
# advances its version: eventstore.load reads only the partitions between them (it probed every monthly
# partition), and an archived stream's months are known without opening the archive.
BOUNDS_SQL = """
ALTER TABLE fintech_stream ADD COLUMN first_occurred_at timestamptz, ADD COLUMN last_occurred_at timestamptz;

ALTER TABLE fintech_stream DISABLE TRIGGER fintech_stream_forward_only;
UPDATE fintech_stream s SET first_occurred_at = b.first, last_occurred_at = b.last
FROM (SELECT aggregate_id, min(occurred_at) AS first, max(occurred_at) AS last FROM fintech_event GROUP BY 1) b
WHERE b.aggregate_id = s.stream_id;
ALTER TABLE fintech_stream ENABLE TRIGGER fintech_stream_forward_only;

CREATE OR REPLACE FUNCTION fintech_event_advance_stream() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.version = 1 THEN
        INSERT INTO fintech_stream (stream_id, aggregate_type, version, first_occurred_at, last_occurred_at)
        VALUES (NEW.aggregate_id, NEW.aggregate_type, 1, NEW.occurred_at, NEW.occurred_at)
        ON CONFLICT (stream_id) DO NOTHING;
    ELSE
        UPDATE fintech_stream SET version = NEW.version, updated_at = now(),
            first_occurred_at = least(first_occurred_at, NEW.occurred_at),
            last_occurred_at = greatest(last_occurred_at, NEW.occurred_at)
        WHERE stream_id = NEW.aggregate_id AND version = NEW.version - 1
          AND aggregate_type = NEW.aggregate_type;
    END IF;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'stream % is not at version %', NEW.aggregate_id, NEW.version - 1
            USING ERRCODE = 'FE409';
    END IF;
    RETURN NEW;
END
$$;
"""

UNDO_SQL = """
CREATE OR REPLACE FUNCTION fintech_event_advance_stream() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.version = 1 THEN
        INSERT INTO fintech_stream (stream_id, aggregate_type, version)
        VALUES (NEW.aggregate_id, NEW.aggregate_type, 1)
        ON CONFLICT (stream_id) DO NOTHING;
    ELSE
        UPDATE fintech_stream SET version = NEW.version, updated_at = now()
        WHERE stream_id = NEW.aggregate_id AND version = NEW.version - 1
          AND aggregate_type = NEW.aggregate_type;
    END IF;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'stream % is not at version %', NEW.aggregate_id, NEW.version - 1
            USING ERRCODE = 'FE409';
    END IF;
    RETURN NEW;
END
$$;
ALTER TABLE fintech_stream DROP COLUMN first_occurred_at, DROP COLUMN last_occurred_at;
"""


class Migration(migrations.Migration):
    dependencies = [("fintech", "0004_staff_audit")]
    operations = [migrations.RunSQL(BOUNDS_SQL, UNDO_SQL)]
