"""SPEC §7: least privilege and a pinned search_path."""

import json
import uuid

import psycopg2
import pytest

from conftest import CORRELATING, admin, correlating_function, dsn, example, query, run, scalar, settle

SAMPLES = ["scada_breaker_trip.json", "onu_last_gasp.json", "kaifa_minimal.json", "callcenter_ticket.json"]
FUNCTIONS = list(CORRELATING.values()) + ["insert_scada_event_from_json", "insert_onu_event_from_json",
                                          "insert_kaifa_event_from_json", "insert_callcenter_ticket_from_json"]


@pytest.fixture
def role(db):
    """A login role, dropped afterwards (roles are cluster-wide)."""
    names = []

    def make(grant_execute):
        name = "oms_role_" + uuid.uuid4().hex[:8]
        admin(f"CREATE ROLE {name} LOGIN")
        names.append(name)
        if grant_execute:
            # The grants the README shows for a consumer role.
            run(db, f"GRANT USAGE ON SCHEMA public TO {name}; "
                    + "".join(f"GRANT EXECUTE ON FUNCTION {fn}(jsonb) TO {name}; " for fn in FUNCTIONS))
        return name

    yield make
    for name in names:
        run(db, f"DROP OWNED BY {name} CASCADE")
        admin(f"DROP ROLE {name}")


def connect_as(db, user):
    conn = psycopg2.connect(dsn(db).replace("user=postgres", f"user={user}"), options="-c TimeZone=UTC")
    conn.autocommit = True
    return conn


def test_ingest_functions_are_security_definer_and_not_public(pool):
    rows = query(pool, """SELECT p.proname, p.prosecdef, has_function_privilege('public', p.oid, 'EXECUTE')
                          FROM pg_proc p WHERE p.proname = ANY(%s) ORDER BY 1""", (FUNCTIONS,))
    assert len(rows) == 8
    assert all(secdef and not public for _, secdef, public in rows), rows


def test_execute_only_role_can_ingest_but_not_touch_tables(db, pool, role):
    consumer = role(grant_execute=True)
    conn = connect_as(db, consumer)
    with conn.cursor() as cur:
        for name in SAMPLES:
            cur.execute(f"SELECT {correlating_function(name)}(%s::jsonb)", (json.dumps(example(name)),))
            assert cur.fetchone()[0] is not None
        for sql in ["SELECT * FROM oms_meters LIMIT 1", "SELECT * FROM onu_events",
                    "UPDATE oms_meters SET power_status = 'on'", "DELETE FROM oms_outage_events",
                    "INSERT INTO oms_rejected_events (source, function_name, message, sqlstate) VALUES ('x','x','x','x')",
                    "SELECT * FROM oms_rejected_events", "UPDATE oms_correlation_rules SET weight_onu = 0"]:
            with pytest.raises(psycopg2.errors.InsufficientPrivilege):
                cur.execute(sql)
    conn.close()
    assert scalar(pool, "SELECT count(*) FROM onu_events") == 1
    settle(pool)
    # The trip's feeder outage, and the building's service outage the ONU opened and the others joined.
    assert query(pool, "SELECT scope FROM oms_outage_events ORDER BY 1") == [("feeder",), ("service",)]


def test_a_role_without_the_grant_cannot_ingest(db, role):
    stranger = role(grant_execute=False)
    conn = connect_as(db, stranger)
    with conn.cursor() as cur:
        for fn in FUNCTIONS:
            with pytest.raises(psycopg2.errors.InsufficientPrivilege):
                cur.execute(f"SELECT {fn}('{{}}'::jsonb)")
    conn.close()


def test_look_alike_tables_on_the_search_path_redirect_nothing(db, pool, role):
    attacker = role(grant_execute=True)
    admin_conn = psycopg2.connect(dsn(db))
    admin_conn.autocommit = True
    with admin_conn.cursor() as cur:
        # Look-alike tables, owned by the attacker (LIKE needs SELECT on the originals, so the
        # DBA's session makes them).
        cur.execute(f"CREATE SCHEMA evil AUTHORIZATION {attacker}")
        for table in ["oms_meters", "onu_events", "onus", "oms_meter_status_events"]:
            cur.execute(f"CREATE TABLE evil.{table} (LIKE public.{table} INCLUDING DEFAULTS)")
            cur.execute(f"ALTER TABLE evil.{table} OWNER TO {attacker}")
    admin_conn.close()
    conn = connect_as(db, attacker)
    with conn.cursor() as cur:
        cur.execute("INSERT INTO evil.oms_meters (meter_number, onu_id) VALUES ('M12345678', 3230316)")
        cur.execute("CREATE FUNCTION evil.now() RETURNS timestamptz LANGUAGE sql AS $$ SELECT '1999-01-01'::timestamptz $$")
        cur.execute("SET search_path = evil, public, pg_catalog")
        cur.execute("SELECT insert_onu_event_from_json_with_meter_sync(%s::jsonb)", (json.dumps(example("onu_last_gasp.json")),))
        onu_event_id = cur.fetchone()[0]
        cur.execute("SELECT (SELECT count(*) FROM evil.onu_events), (SELECT count(*) FROM evil.oms_meter_status_events),"
                    " (SELECT power_status FROM evil.oms_meters)")
        assert cur.fetchone() == (0, 0, "unknown")
    conn.close()
    assert query(pool, "SELECT id FROM onu_events") == [(onu_event_id,)]
    assert scalar(pool, "SELECT count(*) FROM oms_meter_status_events WHERE source_type = 'onu'") == 2
    assert scalar(pool, "SELECT min(updated_at) > '2000-01-01' FROM oms_meters WHERE onu_id = 3230316") is True


MEMBER_TABLES = """
SELECT c.oid::regclass::text FROM pg_depend d
JOIN pg_class c ON c.oid = d.objid AND d.classid = 'pg_class'::regclass AND d.deptype = 'e'
WHERE d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'oms_correlation') AND c.relkind IN ('r', 'p', 'v')
ORDER BY 1
"""


def test_the_consumer_role_is_denied_every_table_and_view(db, pool, role):
    consumer = role(grant_execute=True)
    relations = [r[0] for r in query(pool, MEMBER_TABLES)]
    assert len(relations) == 64  # 52 tables (two the registry generation and outage writers) and 12 views, from the catalog
    granted = query(pool, """SELECT rel, privilege FROM unnest(%s::text[]) AS rel,
                                    unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE']) AS privilege
                             WHERE has_table_privilege(%s, rel, privilege)""", (relations, consumer))
    assert granted == []
    # And the server says so when it tries, table by table.
    conn = connect_as(db, consumer)
    with conn.cursor() as cur:
        for rel in relations:
            with pytest.raises(psycopg2.errors.InsufficientPrivilege):
                cur.execute(f"SELECT 1 FROM {rel} LIMIT 1")
    conn.close()


def test_only_the_ingest_functions_run_with_the_owners_rights(pool):
    """And three trigger functions: the one that checks foreign keys per statement (PostgreSQL's own
    per-row check runs as the table's owner too: locking the row referred to needs more than
    INSERT), and the two that tell the correlator of registry and outage changes (a role that may change the
    registry or set an outage's status need not have rights on the extension's tables). No one can
    call them: a trigger function is not callable, and making a trigger with one needs EXECUTE, which
    only the owner has."""
    definer = query(pool, """SELECT p.proname::text FROM pg_depend d
                             JOIN pg_proc p ON p.oid = d.objid AND d.classid = 'pg_proc'::regclass AND d.deptype = 'e'
                             WHERE d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'oms_correlation')
                               AND p.prosecdef ORDER BY 1""")
    assert [r[0] for r in definer] == sorted(
        FUNCTIONS + ["oms_check_references", "oms_outages_changed", "oms_registry_changed"])
    assert query(pool, """SELECT has_function_privilege('public', 'oms_registry_changed()', 'EXECUTE') OR
                                 has_function_privilege('public', 'oms_outages_changed()', 'EXECUTE'),
                                 has_function_privilege('public', 'oms_check_references()', 'EXECUTE'),
                                 has_function_privilege('public', 'oms_check_references_per_statement(regclass)',
                                                        'EXECUTE')""") == [(False, False, False)]
