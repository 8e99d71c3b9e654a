"""Adopting a legacy database in place (issues 6 and 10, SPEC §9): CREATE EXTENSION on a database
built exactly as the legacy scripts built it (legacy_fixture.py, from LEGACY_SCHEMA.md: every
table and column type, with rows) keeps every row, takes every legacy column type, brings every
table up to the extension's definition, replaces the old functions and keeps the consumers' access;
all four sources then ingest with nothing quarantined.

The rest of the ingest suite also runs against an adopted database: scripts/test.sh runs
tests/integration a second time with OMS_TEST_BASE=legacy (see conftest.py)."""

import json
import os
import threading
import time

import psycopg2
import pytest

import legacy_fixture
from conftest import EXAMPLES, REPO, correlating_function, dsn, example, run

pytestmark = pytest.mark.fresh_only  # installs the extension itself

# What a database must have to satisfy the extension, one string per requirement.
REQUIREMENTS = """
WITH member_tables AS (
    SELECT c.oid, c.relname FROM pg_depend d JOIN pg_class c ON c.oid = d.objid
    WHERE d.classid = 'pg_class'::regclass AND d.deptype = 'e' AND c.relkind IN ('r', 'p')
      AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'oms_correlation')
), cols AS (
    SELECT t.relname, a.attnum, a.attname, a.attnotnull, format_type(a.atttypid, a.atttypmod) AS type,
           pg_get_expr(ad.adbin, ad.adrelid) AS default_expr, t.oid
    FROM member_tables t JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum > 0 AND NOT a.attisdropped
    LEFT JOIN pg_attrdef ad ON ad.adrelid = t.oid AND ad.adnum = a.attnum
), keyed AS (
    SELECT t.relname, x.indisunique, pg_get_expr(x.indpred, x.indrelid) AS predicate,
           ARRAY(SELECT a.attname::text FROM unnest(x.indkey::int2[]) WITH ORDINALITY u(n, i)
                 JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = u.n ORDER BY u.i) AS columns
    FROM member_tables t JOIN pg_index x ON x.indrelid = t.oid
)
SELECT 'table ' || relname FROM member_tables
UNION SELECT 'column ' || relname || '.' || attname FROM cols
UNION SELECT 'type ' || relname || '.' || attname || ' ' || type FROM cols
UNION SELECT 'not null ' || relname || '.' || attname FROM cols WHERE attnotnull
UNION SELECT 'default ' || relname || '.' || attname || ' ' || replace(default_expr, 'CURRENT_TIMESTAMP', 'now()')
      FROM cols WHERE default_expr IS NOT NULL
UNION SELECT 'unique ' || relname || ' ' || array_to_string(ARRAY(SELECT unnest(columns) ORDER BY 1), ',')
             || coalesce(' where ' || regexp_replace(predicate, '(::[a-z ]+(\\[\\])?|[() ])', '', 'g'), '')
      FROM keyed WHERE indisunique
UNION SELECT 'index ' || relname || ' ' || array_to_string(columns, ',') FROM keyed
UNION SELECT 'foreign key ' || t.relname || ' ' || array_to_string(ARRAY(
                 SELECT a.attname::text FROM unnest(k.conkey) u(n) JOIN pg_attribute a
                 ON a.attrelid = k.conrelid AND a.attnum = u.n), ',') || ' -> ' || k.confrelid::regclass
      FROM member_tables t JOIN pg_constraint k ON k.conrelid = t.oid AND k.contype = 'f'
UNION SELECT 'check ' || t.relname || ' ' || regexp_replace(pg_get_constraintdef(k.oid),
                 '( NOT VALID$|::[a-z ]+(\\[\\])?|[() ])', '', 'g')
      FROM member_tables t JOIN pg_constraint k ON k.conrelid = t.oid AND k.contype = 'c'
UNION SELECT 'trigger ' || g.tgrelid::regclass || ' ' || g.tgname
      FROM member_tables t JOIN pg_trigger g ON g.tgrelid = t.oid AND NOT g.tgisinternal
UNION SELECT 'member ' || pg_describe_object(d.classid, d.objid, 0) FROM pg_depend d
      WHERE d.deptype = 'e' AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'oms_correlation')
UNION SELECT 'function ' || p.oid::regprocedure || ' ' || p.prolang::regproc::text || ' ' || p.prosecdef
      FROM pg_proc p WHERE p.pronamespace = 'public'::regnamespace AND p.proname LIKE ANY (ARRAY['insert_%', 'get_%', 'oms_%'])
UNION SELECT 'event trigger ' || evtname FROM pg_event_trigger
"""

# Where the adopted legacy database may differ from a fresh install, and why. Anything else
# missing fails.
EXPECTED_GAPS = {
    # Partitioned by hash of id, so no unique index can leave id out; a plain index serves the
    # delivery-key lookup (src/db/store/kaifa.rs serializes deliveries of a key instead), until
    # oms_unpartition_legacy_tables() makes the table the extension's own shape.
    "unique kaifa_events delivery_key",
}


def rows(database, sql, params=None, user="postgres"):
    return run(database, sql, params, user)


def ingest(database, function, payload, user="postgres"):
    return rows(database, f"SELECT {function}(%s::jsonb)", (json.dumps(payload),), user)[0][0]


def build_legacy(database):
    conn = psycopg2.connect(dsn(database))
    conn.autocommit = True
    with conn.cursor() as cur:
        legacy_fixture.build(cur)
    conn.close()


def fingerprints(database):
    """Row count and md5 of every legacy table, over the legacy columns."""
    conn = psycopg2.connect(dsn(database), options="-c TimeZone=UTC")
    with conn.cursor() as cur:
        result = legacy_fixture.table_fingerprints(cur)
    conn.close()
    return result


@pytest.fixture
def legacy(new_database):
    """A database as the legacy scripts left it."""
    name = new_database("oms_it_legacy_")
    build_legacy(name)
    return name


@pytest.fixture
def fresh(new_database):
    name = new_database("oms_it_fresh_")
    rows(name, "CREATE EXTENSION oms_correlation")
    return name


def test_adoption_keeps_every_row_and_meets_every_requirement_of_a_fresh_install(legacy, fresh):
    before = fingerprints(legacy)
    assert len(before) == 39 and all(count >= 2 for count, _ in before.values()), before
    details_file = rows(legacy, "SELECT relfilenode FROM pg_class WHERE relname = 'kaifa_event_details'")
    warnings = []
    run(legacy, "SET client_min_messages = notice; CREATE EXTENSION oms_correlation", notices=warnings)

    assert fingerprints(legacy) == before
    # The tables the legacy database lacked were created.
    assert set(rows(fresh, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")) - \
        set(rows(legacy, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")) == set()
    assert {t for (t,) in rows(legacy, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")} - set(before) \
        - {f"{t}_p{n}" for t in ("kaifa_events", "kaifa_event_payloads") for n in range(4)} == {
        "scada_alarm_vocabulary", "oms_rejected_events", "oms_outage_meters", "oms_signal_rate", "oms_storm_mode_log",
        "oms_correlation_queue", "oms_correlation_set_aside", "oms_correlation_inputs", "oms_correlation_state",
        "oms_correlation_pending", "oms_momentary_interruptions", "oms_registry_generation",
        "oms_outage_writers"}

    required = {r[0] for r in rows(fresh, REQUIREMENTS)}
    met = {r[0] for r in rows(legacy, REQUIREMENTS)}
    assert len(required) > 1400
    assert required - met == EXPECTED_GAPS
    # Every legacy column type was taken: the varchar(200) the extension writes any text into was
    # widened in place (no rewrite), and the install said so.
    text = "".join(warnings)
    assert "kaifa_event_details.value (character varying(200) to text)" in text.split("widened in place")[1]
    assert rows(legacy, "SELECT relfilenode FROM pg_class WHERE relname = 'kaifa_event_details'") == details_file
    assert rows(legacy, """SELECT format_type(atttypid, atttypmod) FROM pg_attribute
                           WHERE attrelid = 'oms_meters'::regclass AND attname = 'location_lat'""") == [("numeric",)]
    # ... what it relaxed, and what a pg_dump of it cannot restore before the unpartitioning step.
    assert "kaifa_events (message_type) now take NULL" in text
    assert "callcenter_tickets.intake_id is no longer unique" in text
    assert "kaifa_event_payloads is partitioned" in text
    assert "is the legacy table's own" not in text  # every legacy column is one of ours
    assert "adopted 39 legacy tables" in text

    # No uuid-ossp default is left, and the holding schema is gone.
    assert rows(legacy, """SELECT count(*) FROM pg_attrdef WHERE pg_get_expr(adbin, adrelid) LIKE '%uuid_generate%'""")[0][0] == 0
    assert rows(legacy, "SELECT to_regnamespace('oms_correlation_adoption')")[0][0] is None
    # pg_dump keeps every adopted table and sequence, and no entry points at a dropped table.
    assert rows(legacy, """
        SELECT count(*) FILTER (WHERE c.oid IS NULL),
               count(*) FILTER (WHERE c.oid IS NOT NULL)
        FROM unnest((SELECT extconfig FROM pg_extension WHERE extname = 'oms_correlation')) AS e(oid)
        LEFT JOIN pg_class c ON c.oid = e.oid""")[0] == (0, 55)
    # Partitions stay partitions of the adopted table.
    assert rows(legacy, "SELECT count(*) FROM pg_inherits WHERE inhparent = 'kaifa_events'::regclass")[0][0] == 4


def test_a_fresh_install_leaves_no_trace_of_adoption(fresh):
    assert rows(fresh, "SELECT to_regnamespace('oms_correlation_adoption')")[0][0] is None


def test_adopted_database_correlates_and_the_consumers_role_keeps_working(legacy):
    rows(legacy, "CREATE EXTENSION oms_correlation")
    with open(os.path.join(REPO, "demo", "grid.sql")) as f:
        rows(legacy, f.read())
    consumer = "legacy_consumer"
    outages_before = rows(legacy, "SELECT count(*) FROM oms_outage_events")[0][0]
    # The legacy functions were public and ran with the caller's rights; the consumer wrote the
    # tables. It now holds EXECUTE on the new functions, and nothing else changed for it.
    assert ingest(legacy, "insert_scada_event_with_meter_check", example("scada_breaker_trip.json"),
                  consumer)["offline_meters"] == 45
    onu_id = ingest(legacy, "insert_onu_event_from_json_with_meter_sync", example("onu_last_gasp.json"), consumer)
    assert onu_id > 1  # the legacy serial goes on after the legacy row
    kaifa = ingest(legacy, "insert_kaifa_event_from_json_with_meter_sync", example("kaifa_full.json"), consumer)
    assert ingest(legacy, "insert_kaifa_event_from_json_with_meter_sync", example("kaifa_full.json"), consumer) == kaifa
    ingest(legacy, "insert_callcenter_ticket_from_json_with_meter_link", example("callcenter_ticket.json"), consumer)
    for name in sorted(os.listdir(EXAMPLES)):
        if name.endswith(".json"):
            ingest(legacy, correlating_function(name), example(name), consumer)
    assert rows(legacy, "SELECT count(*) FROM oms_rejected_events")[0][0] == 0
    assert rows(legacy, "SELECT count(*) FROM kaifa_events WHERE delivery_key IS NOT NULL")[0][0] == 3
    # Every Kaifa child the new functions wrote hangs off its message's payload, as legacy readers
    # join it (the legacy NOT NULL payload_id quarantined every full message before, issue 10).
    for child in ("kaifa_event_assets", "kaifa_event_usage_points", "kaifa_event_details", "kaifa_event_names",
                  "kaifa_event_status"):
        assert rows(legacy, f"""SELECT count(*), count(*) FILTER (WHERE p.event_id = c.event_id)
                               FROM {child} c JOIN kaifa_events e ON e.id = c.event_id
                               LEFT JOIN kaifa_event_payloads p ON p.id = c.payload_id
                               WHERE e.delivery_key IS NOT NULL""")[0] in [(n, n) for n in range(1, 20)], child
    # The sample alarm's outage and the ONU building's (its meters' signals, SPEC §5.3) join the
    # legacy ones, which are still there.
    assert rows(legacy, "SELECT count(*) FROM oms_outage_events")[0][0] == outages_before + 2
    # The legacy role still cannot do what it could not do before.
    with pytest.raises(psycopg2.errors.InsufficientPrivilege):
        rows(legacy, "DELETE FROM oms_meters", user=consumer)
    # The users' verification queries run unchanged.
    with open(os.path.join(EXAMPLES, "verification_queries.sql")) as f:
        rows(legacy, f.read())

    # The registry sync links what the legacy sources knew: the ONU-only meter is the one meter the
    # registry lacked (the legacy Kaifa assets and call-center meters are registered ones).
    registered = set(rows(legacy, "SELECT meter_number FROM oms_meters"))
    assert rows(legacy, "SELECT meters_created FROM oms_sync_meter_registry()")[0][0] == 1
    assert set(rows(legacy, "SELECT meter_number FROM oms_meters")) - registered == {("ONU-ONLY-1",)}
    assert rows(legacy, "SELECT count(*) FROM meters WHERE oms_meter_id IS NULL")[0][0] == 0
    assert rows(legacy, """SELECT count(DISTINCT meter_id) FROM kaifa_event_assets WHERE mrid = 'LM6'""")[0][0] == 1
    assert rows(legacy, "SELECT meters_created FROM oms_sync_meter_registry()")[0][0] == 0


def test_kaifa_redeliveries_race_on_the_partitioned_table_and_one_is_stored(legacy):
    rows(legacy, "CREATE EXTENSION oms_correlation")
    payload = example("kaifa_full.json")
    payload["header"]["message_id"] = "race-1"
    barrier = threading.Barrier(6)
    results, errors = [], []

    def deliver():
        try:
            barrier.wait()
            results.append(ingest(legacy, "insert_kaifa_event_from_json_with_meter_sync", payload))
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=deliver) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(set(results)) == 1
    assert rows(legacy, "SELECT count(*) FROM kaifa_events WHERE delivery_key = 'message_id:race-1'")[0][0] == 1
    assert rows(legacy, "SELECT count(*) FROM kaifa_event_payloads WHERE event_id = %s", (results[0],))[0][0] == 1


def deliveries_seen_by_an_older_snapshot(database, message_id):
    """A REPEATABLE READ caller delivers a Kaifa message twice delivered meanwhile by another
    caller: once committed after the caller's snapshot, once in flight and committed while the
    caller waits. Returns what the caller saw each time, after retrying as a client would."""
    kaifa = "insert_kaifa_event_from_json_with_meter_sync"
    outcomes = []
    for case in ("committed", "in_flight"):
        payload = example("kaifa_full.json")
        payload["header"]["message_id"] = f"{message_id}-{case}"
        caller = psycopg2.connect(dsn(database))
        caller.set_session(isolation_level="REPEATABLE READ")
        other = psycopg2.connect(dsn(database))
        with caller.cursor() as cur:
            cur.execute("SELECT 1")  # the snapshot
        with other.cursor() as cur:
            cur.execute(f"SELECT {kaifa}(%s::jsonb)", (json.dumps(payload),))
            original = cur.fetchone()[0]
        seen = []

        def deliver():
            try:
                with caller.cursor() as cur:
                    cur.execute(f"SELECT {kaifa}(%s::jsonb)", (json.dumps(payload),))
                    seen.append(cur.fetchone()[0])
            except psycopg2.Error as e:
                seen.append(e)

        if case == "committed":
            other.commit()
            deliver()
        else:
            waiting = threading.Thread(target=deliver)
            waiting.start()
            # Commit the other delivery only once the caller waits for its outcome (on its lock).
            deadline = time.monotonic() + 30
            while rows(database, "SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s",
                       (caller.get_backend_pid(),)) != [("Lock",)]:
                assert time.monotonic() < deadline, "the second delivery never waited for the first"
                time.sleep(0.005)
            other.commit()
            waiting.join(timeout=60)
            assert not waiting.is_alive()
        caller.rollback()
        with caller.cursor() as cur:  # the client's retry, with a new snapshot
            cur.execute(f"SELECT {kaifa}(%s::jsonb)", (json.dumps(payload),))
            retried = cur.fetchone()[0]
        caller.commit()
        caller.close()
        other.close()
        stored = rows(database, "SELECT count(*) FROM kaifa_events WHERE delivery_key = %s",
                      ("message_id:" + payload["header"]["message_id"],))[0][0]
        outcomes.append((case, type(seen[0]).__name__, retried == original, stored))
    return outcomes


SERIALIZATION_FAILURE_THEN_THE_ORIGINAL = [("committed", "SerializationFailure", True, 1),
                                           ("in_flight", "SerializationFailure", True, 1)]


def test_repeatable_read_redeliveries_fail_to_serialize_and_store_nothing_twice(fresh):
    assert deliveries_seen_by_an_older_snapshot(fresh, "rr-fresh") == SERIALIZATION_FAILURE_THEN_THE_ORIGINAL


def test_repeatable_read_redeliveries_on_the_partitioned_table_too(legacy):
    rows(legacy, "CREATE EXTENSION oms_correlation")
    assert deliveries_seen_by_an_older_snapshot(legacy, "rr-legacy") == SERIALIZATION_FAILURE_THEN_THE_ORIGINAL


def test_a_message_the_old_functions_stored_is_a_redelivery_after_adoption(legacy):
    rows(legacy, "CREATE EXTENSION oms_correlation")
    (legacy_id, message_id, event_id), (other_id, _, other_event_id) = rows(legacy, """
        SELECT e.id::text, h.message_id, p.event_id_value FROM kaifa_events e
        JOIN kaifa_event_headers h ON h.event_id = e.id JOIN kaifa_event_payloads p ON p.event_id = e.id
        ORDER BY e.event_timestamp LIMIT 2""")
    by_message = example("kaifa_full.json")
    by_message["header"]["message_id"] = message_id
    # No message id: the payload's event id is the key.
    by_event = example("kaifa_full.json")
    by_event["header"]["message_id"] = ""
    by_event["payload"]["event_id"] = other_event_id
    count = "SELECT (SELECT count(*) FROM kaifa_events), (SELECT count(*) FROM oms_rejected_events)"
    before = rows(legacy, count)
    assert ingest(legacy, "insert_kaifa_event_from_json_with_meter_sync", by_message) == legacy_id
    assert ingest(legacy, "insert_kaifa_event_from_json_with_meter_sync", by_event) == other_id
    assert rows(legacy, count) == before
    # A message the old functions never saw is new.
    by_message["header"]["message_id"] = "after-adoption-1"
    assert ingest(legacy, "insert_kaifa_event_from_json_with_meter_sync", by_message) not in (legacy_id, other_id)


def test_legacy_rows_that_break_a_key_stop_the_install_and_change_nothing(legacy):
    # Two legacy tickets with one ticket id: the extension's ticket dedup cannot hold.
    rows(legacy, "UPDATE callcenter_tickets SET external_ticket_id = 'LEGACY-T1'")
    before = fingerprints(legacy)
    with pytest.raises(psycopg2.Error) as failure:
        rows(legacy, "CREATE EXTENSION oms_correlation")
    message = str(failure.value)
    assert "cannot adopt callcenter_tickets" in message and "external_ticket_id" in message
    assert "GROUP BY external_ticket_id HAVING count(*) > 1" in message
    # Nothing happened: the old functions still serve, the rows are as they were.
    assert fingerprints(legacy) == before
    assert rows(legacy, "SELECT count(*) FROM pg_extension WHERE extname = 'oms_correlation'")[0][0] == 0
    assert rows(legacy, """SELECT l.lanname FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
                           WHERE p.proname = 'insert_onu_event_from_json'""") == [("plpgsql",)]


def test_legacy_rows_without_a_key_value_stop_the_install_and_say_which(legacy):
    # A legacy link table whose (substation, meter) key was dropped, with a half-filled row.
    rows(legacy, """DO $$ BEGIN
                        EXECUTE (SELECT format('ALTER TABLE network_substation_meters DROP CONSTRAINT %I', conname)
                                 FROM pg_constraint WHERE conrelid = 'network_substation_meters'::regclass
                                 AND contype = 'u');
                    END $$;
                    ALTER TABLE network_substation_meters DROP CONSTRAINT network_substation_meters_pkey;
                    ALTER TABLE network_substation_meters ALTER COLUMN meter_id DROP NOT NULL;
                    INSERT INTO network_substation_meters (substation_id) SELECT id FROM network_substations LIMIT 1""")
    with pytest.raises(psycopg2.Error) as failure:
        rows(legacy, "CREATE EXTENSION oms_correlation")
    message = str(failure.value)
    assert "cannot adopt network_substation_meters: rows without a value in the key" in message
    assert "WHERE substation_id IS NULL OR meter_id IS NULL" in message
    assert rows(legacy, "SELECT count(*) FROM pg_extension WHERE extname = 'oms_correlation'")[0][0] == 0


def test_a_dba_view_on_a_legacy_table_survives_adoption(legacy):
    rows(legacy, "CREATE VIEW dba_offline AS SELECT meter_number, power_status FROM oms_meters WHERE power_status = 'off'")
    offline = rows(legacy, "SELECT count(*) FROM dba_offline")[0][0]
    assert offline > 0
    rows(legacy, "CREATE EXTENSION oms_correlation")
    assert rows(legacy, "SELECT count(*) FROM dba_offline")[0][0] == offline
    # The view kept meter_number at the legacy width (the install warns) and works.
    assert rows(legacy, "SELECT format_type(atttypid, atttypmod) FROM pg_attribute "
                        "WHERE attrelid = 'oms_meters'::regclass AND attname = 'meter_number'") == [
        ("character varying(64)",)]


def test_data_kept_on_drop_is_adopted_by_the_next_create_extension(legacy):
    rows(legacy, "CREATE EXTENSION oms_correlation")
    with open(os.path.join(REPO, "demo", "grid.sql")) as f:
        rows(legacy, f.read())
    ingest(legacy, "insert_scada_event_with_meter_check", example("scada_breaker_trip.json"))
    before = fingerprints(legacy)
    rows(legacy, "SELECT oms_keep_data_on_drop()")
    rows(legacy, "DROP EXTENSION oms_correlation")
    rows(legacy, "CREATE EXTENSION oms_correlation")
    assert fingerprints(legacy) == before
    assert ingest(legacy, "insert_scada_event_with_meter_check", example("scada_breaker_trip.json"))["duplicate"] is True


def test_consumers_calling_during_adoption_wait_and_then_succeed(legacy):
    """The pause is the CREATE EXTENSION itself: calls made meanwhile wait on its locks, then go
    through the old function (before commit) or the new one (after)."""
    stop = threading.Event()
    outcomes = []

    def consumer():
        conn = psycopg2.connect(dsn(legacy))
        conn.autocommit = True
        n = 0
        while not stop.is_set():
            n += 1
            payload = {"eventId": f"during-{n}", "onuId": 4100001, "type": "ONU_LastGaspAlert",
                       "timestamp": f"2025-10-01T10:{n // 60 % 60:02d}:{n % 60:02d}Z"}
            try:
                with conn.cursor() as cur:
                    cur.execute("SELECT insert_onu_event_from_json(%s::jsonb)", (json.dumps(payload),))
                    outcomes.append(cur.fetchone()[0])
            except psycopg2.Error as e:
                outcomes.append(e)
        conn.close()

    thread = threading.Thread(target=consumer)
    thread.start()
    try:
        rows(legacy, "CREATE EXTENSION oms_correlation")
        calls_at_commit = len(outcomes)
        deadline = time.monotonic() + 30
        while len(outcomes) < calls_at_commit + 20 and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        stop.set()
        thread.join()
    failures = [o for o in outcomes if isinstance(o, Exception)]
    assert failures == []
    assert rows(legacy, "SELECT count(*) FROM onu_events WHERE event_id LIKE 'during-%'")[0][0] == len(outcomes)
