from django.db import migrations

# The database itself keeps each stream's versions unique and gap-free, whoever inserts: every event row
# advances its stream's row by compare-and-set (version - 1 -> version), or creates it at version 1, inside
# the inserting transaction. A concurrent writer of the same stream waits on that row and then fails with
# SQLSTATE FE409 (the event store's ConcurrencyConflict); nothing it inserted survives. The stream row itself
# can no longer be written directly (only from this trigger), so nobody can make the next version skip.
GUARD_SQL = """
CREATE FUNCTION fintech_event_advance_stream() RETURNS trigger LANGUAGE plpgsql AS $$
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
CREATE TRIGGER fintech_event_advance_stream BEFORE INSERT ON fintech_event
    FOR EACH ROW EXECUTE FUNCTION fintech_event_advance_stream();

-- A stream row moves only as events are inserted: written directly, it could skip versions.
CREATE OR REPLACE FUNCTION fintech_stream_forward_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('DELETE', 'TRUNCATE') THEN
        RAISE EXCEPTION 'fintech_stream rows are never removed: % rejected', TG_OP
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF pg_trigger_depth() < 2 THEN
        RAISE EXCEPTION 'fintech_stream moves only by appending events: % rejected', TG_OP
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF TG_OP = 'UPDATE' AND (NEW.stream_id <> OLD.stream_id OR NEW.aggregate_type <> OLD.aggregate_type
                             OR NEW.version <> OLD.version + 1) THEN
        RAISE EXCEPTION 'a stream only moves forward, one version at a time' USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER fintech_stream_insert_guard BEFORE INSERT ON fintech_stream
    FOR EACH ROW EXECUTE FUNCTION fintech_stream_forward_only();
"""

UNDO_SQL = """
DROP TRIGGER fintech_stream_insert_guard ON fintech_stream;
DROP TRIGGER fintech_event_advance_stream ON fintech_event;
DROP FUNCTION fintech_event_advance_stream();
"""


class Migration(migrations.Migration):
    dependencies = [("fintech", "0001_event_store")]

    operations = [migrations.RunSQL(GUARD_SQL, UNDO_SQL)]
