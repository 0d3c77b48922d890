from django.db import migrations

# The log's read horizon: the oldest transaction id that may still add events to THIS database's log.
#
# pg_snapshot_xmin(pg_current_snapshot()) is cluster-wide: a transaction open in any other database of the
# cluster (another application, a test run beside this one, `make run` beside `make test`) held every
# projection here back for as long as it stayed open. Transaction ids are cluster-wide, but only this
# database's transactions can write its events, so the horizon is the lowest of the snapshot's running
# transactions that belong to this database (pg_stat_activity, prepared transactions), the caller's own, or
# else the snapshot's xmax.
#
# Order matters, and is why this is a function: the snapshot is taken first (its own statement), the running
# transactions of this database are read after it (backend status is cached per transaction, hence the
# clear). One of the snapshot's transactions missing from that list either belongs to another database or
# finished before the list was read; the caller reads events in a LATER statement, whose snapshot sees
# whatever such a transaction committed, so nothing below the horizon can commit late. Under REPEATABLE READ
# the caller's snapshot would not move: the cluster-wide xmin is kept there.
HORIZON_SQL = """
CREATE FUNCTION fintech_log_horizon() RETURNS xid8 LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    snap pg_snapshot;
    horizon xid8;
BEGIN
    PERFORM pg_stat_clear_snapshot();
    snap := pg_current_snapshot();
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RETURN pg_snapshot_xmin(snap);
    END IF;
    SELECT min(running.xid) INTO horizon
    FROM pg_snapshot_xip(snap) AS running(xid)
    WHERE (running.xid::text::bigint % 4294967296) IN (
        SELECT backend_xid::text::bigint FROM pg_stat_activity
        WHERE datname = current_database() AND backend_xid IS NOT NULL
        UNION ALL
        SELECT transaction::text::bigint FROM pg_prepared_xacts WHERE database = current_database()
    );
    -- The caller's own transaction is not in its snapshot's list, but its events are not committed either.
    RETURN least(horizon, pg_snapshot_xmax(snap), pg_current_xact_id_if_assigned());
END
$$;
"""


class Migration(migrations.Migration):
    dependencies = [("fintech", "0002_stream_version_guard")]

    operations = [migrations.RunSQL(HORIZON_SQL, "DROP FUNCTION fintech_log_horizon()")]
