"""The DROP guard decides from what each statement drops (issues 10, 13): it refuses to take the
extension's tables with outage history in them, whichever statement would, and lets through every
statement that drops nothing of ours, whatever else the client's string holds."""

import json

import psycopg2
import pytest

from conftest import admin, dsn, example, query, run, scalar

pytestmark = pytest.mark.fresh_only  # drops the extension


def with_history(pool):
    query(pool, "SELECT insert_scada_event_with_meter_check(%s::jsonb)", (json.dumps(example("scada_breaker_trip.json")),))


def installed(database):
    return run(database, "SELECT count(*) FROM pg_extension WHERE extname = 'oms_correlation'")[0][0] == 1


def test_a_string_of_statements_that_drops_another_schema_goes_through(db, pool):
    with_history(pool)
    # As psql -c, psycopg2 and migration tools send it: one string, several statements.
    assert run(db, "DROP SCHEMA IF EXISTS other CASCADE; SELECT count(*) FROM public.oms_meters") == [(179,)]
    assert run(db, "CREATE SCHEMA other; CREATE TABLE other.t (x int); DROP SCHEMA other CASCADE; "
                   "SELECT count(*) FROM oms_outage_events") == [(1,)]
    assert run(db, "DROP EXTENSION IF EXISTS no_such_extension; SELECT 1") == [(1,)]


@pytest.mark.parametrize("statement", [
    "DROP EXTENSION oms_correlation",
    "DROP EXTENSION IF EXISTS no_such_extension, oms_correlation CASCADE",
    "DROP SCHEMA public CASCADE",
    "DROP SCHEMA IF EXISTS other, public CASCADE",
    "SELECT 1; DROP EXTENSION oms_correlation",
])
def test_every_statement_that_would_drop_the_history_is_refused(db, pool, statement):
    with_history(pool)
    with pytest.raises(psycopg2.errors.DependentObjectsStillExist) as refused:
        run(db, statement)
    assert "1 outage records and 45 meter status events" in str(refused.value)
    assert installed(db) and scalar(pool, "SELECT count(*) FROM oms_outage_events") == 1


def test_drop_schema_of_ours_without_cascade_is_left_to_postgresql(db, pool):
    with_history(pool)
    with pytest.raises(psycopg2.errors.DependentObjectsStillExist) as refused:
        run(db, "DROP SCHEMA public")
    assert "outage records" not in str(refused.value)  # PostgreSQL's own refusal: it drops nothing
    assert installed(db)


@pytest.fixture
def owner_role():
    """A superuser, other than the bootstrap one, who installs the extension (DROP OWNED BY the
    bootstrap superuser is refused by PostgreSQL itself)."""
    admin("DROP ROLE IF EXISTS oms_test_owner; CREATE ROLE oms_test_owner SUPERUSER LOGIN")
    yield "oms_test_owner"


def test_drop_owned_by_the_extensions_owner_is_refused(new_database, owner_role):
    database = new_database()
    run(database, "CREATE EXTENSION oms_correlation", user=owner_role)
    run(database, "INSERT INTO network_substations (substation_id) VALUES ('SS-OWNED'); "
                  "INSERT INTO oms_meters (meter_number, substation_id, power_status) "
                  "SELECT 'M-OWNED', id, 'off' FROM network_substations")
    run(database, "SELECT insert_scada_event_with_meter_check(%s::jsonb)",
        (json.dumps({"eventType": "breaker_trip", "substationId": "SS-OWNED", "timestamp": "2025-09-30T10:00:00Z"}),))
    assert run(database, "SELECT count(*) FROM oms_outage_events") == [(1,)]
    admin("DROP ROLE IF EXISTS oms_test_bystander; CREATE ROLE oms_test_bystander")
    run(database, "DROP OWNED BY oms_test_bystander")  # owns nothing of ours
    with pytest.raises(psycopg2.errors.DependentObjectsStillExist):
        run(database, f"DROP OWNED BY oms_test_bystander, {owner_role}")
    assert installed(database)
    run(database, f"SET oms_correlation.allow_drop_with_data = on; DROP OWNED BY {owner_role}")
    assert not installed(database)
    admin("DROP ROLE oms_test_bystander")
    run(database, f"REASSIGN OWNED BY {owner_role} TO postgres")


def test_allow_drop_with_data_is_a_superusers_word_only(db, pool):
    """A non-superuser with the owner's privileges (a member of its role) can run DROP EXTENSION;
    the setting must not let it delete the history, even set as a placeholder before the
    library is loaded in its session."""
    with_history(pool)
    admin("DROP ROLE IF EXISTS oms_test_member; CREATE ROLE oms_test_member LOGIN NOSUPERUSER; "
          "GRANT postgres TO oms_test_member")
    try:
        conn = psycopg2.connect(dsn(db).replace("user=postgres", "user=oms_test_member"))
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM pg_settings WHERE name LIKE 'oms_correlation.%'")
            assert cur.fetchone()[0] == 0  # the library is not loaded in this session
            cur.execute("SET oms_correlation.allow_drop_with_data = on")  # a placeholder: allowed
            with pytest.raises(psycopg2.errors.DependentObjectsStillExist):
                cur.execute("DROP EXTENSION oms_correlation")
        conn.close()
    finally:
        admin("DROP OWNED BY oms_test_member; DROP ROLE oms_test_member")
    assert installed(db)
    # The superuser's word is taken.
    run(db, "SET oms_correlation.allow_drop_with_data = on; DROP EXTENSION oms_correlation")
    assert not installed(db)
