"""SPEC §3: foreign keys hold wherever a column names another table. The tables the correlator
fills have their keys checked once per statement on INSERT (sql/schema/10_references.sql, issue 21)
instead of PostgreSQL's check per row, and on UPDATE their keys to an outage: the same refusals, the
same locks, the same ON DELETE actions. Their other keys keep PostgreSQL's per-row update check."""

import uuid

import psycopg2
import psycopg2.errors
import pytest

from conftest import dsn, run

# (table, key column, referenced table): every single-column foreign key checked per statement (on
# UPDATE, those to oms_outage_events only).
KEYS = [
    ("oms_outage_meters", "outage_id", "oms_outage_events"),
    ("oms_outage_meters", "meter_id", "oms_meters"),
    ("oms_event_sources", "outage_event_id", "oms_outage_events"),
    ("oms_event_timeline", "outage_event_id", "oms_outage_events"),
    ("oms_outage_customers", "outage_id", "oms_outage_events"),
    ("oms_outage_customers", "customer_id", "oms_customers"),
]


def constraint_of(db, table, column):
    rows = run(db, """SELECT c.conname FROM pg_constraint c
                      JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
                      WHERE c.conrelid = %s::regclass AND c.contype = 'f' AND a.attname = %s""",
               (f"public.{table}", column))
    assert len(rows) == 1, (table, column, rows)
    return rows[0][0]


def new_outages(db, n):
    """`n` open service outages of their own; their ids."""
    return [o for (o,) in run(db, """
        INSERT INTO public.oms_outage_events (event_id, status, first_detected_at, scope, device_key)
        SELECT 'OUT-REF-' || gen_random_uuid(), 'detected', now(), 'service', 'ref:' || gen_random_uuid()
        FROM generate_series(1, %s) RETURNING id""", (n,))]


@pytest.fixture
def outage(db):
    return new_outages(db, 1)[0]


@pytest.fixture
def meter(db):
    return run(db, "SELECT id FROM public.oms_meters ORDER BY meter_number LIMIT 1")[0][0]


@pytest.fixture
def customer(db):
    return run(db, "SELECT id FROM public.oms_customers ORDER BY customer_id LIMIT 1")[0][0]


def insert(db, table, outage, meter=None, customer=None, rows=1):
    """Inserts `rows` rows into `table` naming these keys; returns the statement."""
    if table == "oms_outage_meters":
        sql = """INSERT INTO public.oms_outage_meters (outage_id, meter_id, off_at, customer_key, first_source)
                 SELECT %s::uuid, %s::uuid, now() - g * interval '1 second', gen_random_uuid(), 'onu' FROM generate_series(1, %s) g"""
        params = (outage, meter, rows)
    elif table == "oms_event_sources":
        sql = """INSERT INTO public.oms_event_sources (outage_event_id, source_type, source_event_id, source_table)
                 SELECT %s::uuid, 'onu', 'REF-' || gen_random_uuid(), 'onu_events' FROM generate_series(1, %s)"""
        params = (outage, rows)
    elif table == "oms_event_timeline":
        sql = """INSERT INTO public.oms_event_timeline (outage_event_id, event_type, status, description)
                 SELECT %s::uuid, 'note', 'detected', 'a reference test' FROM generate_series(1, %s)"""
        params = (outage, rows)
    else:
        sql = "INSERT INTO public.oms_outage_customers (outage_id, customer_id) VALUES (%s::uuid, %s::uuid)"
        params = (outage, customer)
    run(db, sql, params)


def test_the_keys_stay_declared_and_are_checked_once_per_statement(db):
    for table, column, referenced in KEYS:
        name = constraint_of(db, table, column)
        triggers = run(db, """SELECT t.tgfoid::regproc::text, t.tgenabled FROM pg_trigger t
                              JOIN pg_constraint c ON c.oid = t.tgconstraint
                              WHERE t.tgrelid = %s::regclass AND c.conname = %s ORDER BY 1""",
                       (f"public.{table}", name))
        # On UPDATE, only keys to an outage (which merges move in bulk) are checked per statement;
        # the others keep PostgreSQL's per-row check, which skips a row whose key did not change.
        update_check = "D" if referenced == "oms_outage_events" else "O"
        assert triggers == [('"RI_FKey_check_ins"', "D"), ('"RI_FKey_check_upd"', update_check)], (table, name)
        # The ON DELETE action on the referenced table is PostgreSQL's own, untouched.
        actions = run(db, """SELECT count(*) FROM pg_trigger t JOIN pg_constraint c ON c.oid = t.tgconstraint
                             WHERE t.tgrelid = %s::regclass AND c.conname = %s AND t.tgenabled <> 'D'""",
                      (f"public.{referenced}", name))
        assert actions == [(2,)], (table, name)
        statement_triggers = run(db, """SELECT tgname FROM pg_trigger WHERE tgrelid = %s::regclass
                                        AND tgname LIKE 'oms_references_%%' ORDER BY 1""", (f"public.{table}",))
        assert statement_triggers == [("oms_references_inserted",), ("oms_references_updated",)], table


@pytest.mark.parametrize("table,column,referenced", KEYS)
def test_a_key_naming_no_row_is_refused_like_a_foreign_key(db, outage, meter, customer, table, column, referenced):
    missing = str(uuid.uuid4())
    keys = {"outage": outage, "meter": meter, "customer": customer}
    keys[{"outage_id": "outage", "outage_event_id": "outage", "meter_id": "meter",
          "customer_id": "customer"}[column]] = missing
    with pytest.raises(psycopg2.errors.ForeignKeyViolation) as refused:
        insert(db, table, **keys, rows=3)
    diag = refused.value.diag
    assert diag.constraint_name == constraint_of(db, table, column)
    assert diag.message_primary == (f'insert or update on table "{table}" violates foreign key constraint '
                                    f'"{diag.constraint_name}"')
    assert diag.message_detail == f'Key ({column})=({missing}) is not present in table "{referenced}".'
    # The good keys go through.
    insert(db, table, outage, meter, customer)


def test_one_bad_key_among_many_refuses_the_statement(db, outage, meter):
    other = run(db, "SELECT id FROM public.oms_meters ORDER BY meter_number OFFSET 1 LIMIT 2")
    missing = str(uuid.uuid4())
    with pytest.raises(psycopg2.errors.ForeignKeyViolation) as refused:
        run(db, """INSERT INTO public.oms_outage_meters (outage_id, meter_id, off_at, customer_key, first_source)
                   SELECT %s::uuid, m, now(), m, 'onu' FROM unnest(%s::uuid[]) AS m""",
            (outage, [str(other[0][0]), str(missing), str(other[1][0])]))
    assert str(missing) in refused.value.diag.message_detail
    assert run(db, "SELECT count(*) FROM public.oms_outage_meters WHERE outage_id = %s", (outage,)) == [(0,)]


def test_a_statement_naming_most_meters_is_checked_in_one_pass_with_the_same_refusal_and_locks(db):
    """A backlog's batch names most meters: they are checked in one pass over oms_meters instead of
    one index lookup each (the planner is told so for the call only). The refusal, the locks and
    the session's own planner settings, for the rest of its transaction, are as for a small
    statement."""
    run(db, "ANALYZE public.oms_meters")
    meters = [str(m) for (m,) in run(db, "SELECT id FROM public.oms_meters ORDER BY meter_number")]
    assert len(meters) >= 10
    # Enough outages that their key is checked in one pass too: it is checked last (by name).
    outages = [str(o) for o in new_outages(db, 60)]
    missing = str(uuid.uuid4())
    sql = """INSERT INTO public.oms_outage_meters (outage_id, meter_id, off_at, customer_key, first_source)
             SELECT o, m, clock_timestamp(), m, 'onu' FROM unnest(%s::uuid[], %s::uuid[]) AS r(o, m)"""

    def spread(named):
        return [outages[i % len(outages)] for i in range(len(named))], named

    conn = psycopg2.connect(dsn(db))
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute("SET enable_nestloop = on; SET work_mem = '4MB'")
            with pytest.raises(psycopg2.errors.ForeignKeyViolation) as refused:
                cur.execute(sql, spread(meters + [missing]))
            assert refused.value.diag.message_detail == \
                f'Key (meter_id)=({missing}) is not present in table "oms_meters".'
            # The check's plan, as auto_explain tells it to this client. On this small grid a scan of
            # oms_meters costs little; it is priced as on a big one, where a key or two is looked up.
            cur.execute("""LOAD 'auto_explain'; SET auto_explain.log_min_duration = 0;
                           SET auto_explain.log_nested_statements = on; SET client_min_messages = log;
                           SET seq_page_cost = 1000""")
            cur.execute("BEGIN")
            plans = []
            for named in (meters[:2], meters):
                del conn.notices[:]
                cur.execute(sql, spread(named))
                plans += [n for n in conn.notices if "FROM oms_meters r WHERE" in n]
            # Still in the writer's transaction: its settings are its own.
            cur.execute("SELECT current_setting('enable_nestloop'), current_setting('work_mem')")
            assert cur.fetchone() == ("on", "4MB")
            cur.execute("RESET client_min_messages; RESET seq_page_cost; SET auto_explain.log_min_duration = -1")
            assert len(plans) == 2, plans
            assert "Nested Loop" in plans[0] and "oms_meters_pkey" in plans[0], plans[0]
            assert "Nested Loop" not in plans[1] and "Join" in plans[1], plans[1]
            # Every meter named is locked until the writer commits.
            with pytest.raises(psycopg2.errors.LockNotAvailable):
                run(db, "SET lock_timeout = '300ms'; DELETE FROM public.oms_meters WHERE id = %s", (meters[-1],))
            cur.execute("COMMIT")
    finally:
        conn.close()
    assert run(db, "SELECT count(*) FROM public.oms_outage_meters WHERE outage_id = ANY (%s::uuid[])",
               (outages,)) == [(len(meters) + 2,)]


def test_an_update_is_checked_only_for_the_keys_it_brings(db, outage, meter):
    insert(db, "oms_outage_meters", outage, meter, rows=2)
    run(db, "UPDATE public.oms_outage_meters SET on_at = now() WHERE outage_id = %s", (outage,))
    with pytest.raises(psycopg2.errors.ForeignKeyViolation):
        run(db, "UPDATE public.oms_outage_meters SET outage_id = %s::uuid WHERE outage_id = %s", (str(uuid.uuid4()), outage))
    assert run(db, "SELECT count(*) FROM public.oms_outage_meters WHERE outage_id = %s", (outage,)) == [(2,)]


def test_an_update_that_changes_a_meter_is_refused_if_the_meter_is_not_there(db, outage, meter):
    insert(db, "oms_outage_meters", outage, meter, rows=2)
    missing = str(uuid.uuid4())
    with pytest.raises(psycopg2.errors.ForeignKeyViolation) as refused:
        run(db, "UPDATE public.oms_outage_meters SET meter_id = %s::uuid WHERE outage_id = %s", (missing, outage))
    assert refused.value.diag.message_detail == f'Key (meter_id)=({missing}) is not present in table "oms_meters".'
    assert run(db, "SELECT count(*) FROM public.oms_outage_meters WHERE outage_id = %s AND meter_id = %s",
               (outage, meter)) == [(2,)]


def test_an_update_that_changes_a_customer_is_refused_if_the_customer_is_not_there(db, outage, customer):
    insert(db, "oms_outage_customers", outage, customer=customer)
    missing = str(uuid.uuid4())
    with pytest.raises(psycopg2.errors.ForeignKeyViolation) as refused:
        run(db, "UPDATE public.oms_outage_customers SET customer_id = %s::uuid WHERE outage_id = %s",
            (missing, outage))
    assert refused.value.diag.message_detail == \
        f'Key (customer_id)=({missing}) is not present in table "oms_customers".'
    # The correlator's upsert of the same row (its key unchanged) goes through.
    run(db, """INSERT INTO public.oms_outage_customers (outage_id, customer_id, restored_at) VALUES (%s, %s, now())
               ON CONFLICT (outage_id, customer_id) DO UPDATE SET restored_at = EXCLUDED.restored_at""",
        (outage, customer))
    assert run(db, "SELECT count(*) FROM public.oms_outage_customers WHERE outage_id = %s AND restored_at IS NOT NULL",
               (outage,)) == [(1,)]


def test_an_update_that_leaves_the_meters_alone_does_not_lock_them(db, outage, meter):
    """A span's restoration (on_at) is the correlator's commonest update: it names no new meter, so
    no meter row is locked for it, as PostgreSQL's own check would not. Its outage is locked."""
    insert(db, "oms_outage_meters", outage, meter, rows=2)
    writer = psycopg2.connect(dsn(db))
    try:
        with writer.cursor() as cur:
            cur.execute("UPDATE public.oms_outage_meters SET on_at = now() WHERE outage_id = %s", (outage,))
        run(db, "SET lock_timeout = '300ms'; SELECT FROM public.oms_meters WHERE id = %s FOR UPDATE", (meter,))
        with pytest.raises(psycopg2.errors.LockNotAvailable):
            run(db, "SET lock_timeout = '300ms'; SELECT FROM public.oms_outage_events WHERE id = %s FOR UPDATE",
                (outage,))
        writer.rollback()
    finally:
        writer.close()


def test_deleting_an_outage_still_cascades(db, outage, meter):
    for table in ("oms_outage_meters", "oms_event_sources", "oms_event_timeline"):
        insert(db, table, outage, meter)
    run(db, "DELETE FROM public.oms_outage_events WHERE id = %s", (outage,))
    for table, column in (("oms_outage_meters", "outage_id"), ("oms_event_sources", "outage_event_id"),
                          ("oms_event_timeline", "outage_event_id")):
        assert run(db, f"SELECT count(*) FROM public.{table} WHERE {column} = %s", (outage,)) == [(0,)], table


def test_a_row_referred_to_is_locked_until_the_writer_commits(db, outage, meter):
    """As PostgreSQL's own check: a key the statement wrote is locked (FOR KEY SHARE), so the row
    it names cannot be deleted under a writer that has not committed."""
    writer = psycopg2.connect(dsn(db))
    try:
        with writer.cursor() as cur:
            cur.execute("""INSERT INTO public.oms_outage_meters (outage_id, meter_id, off_at, customer_key, first_source)
                           VALUES (%s, %s, now(), %s, 'onu')""", (outage, meter, meter))
        with pytest.raises(psycopg2.errors.LockNotAvailable):
            run(db, "SET lock_timeout = '300ms'; DELETE FROM public.oms_meters WHERE id = %s", (meter,))
        with pytest.raises(psycopg2.errors.LockNotAvailable):
            run(db, "SET lock_timeout = '300ms'; DELETE FROM public.oms_outage_events WHERE id = %s", (outage,))
        writer.commit()
    finally:
        writer.close()
    # Once committed, deleting the meter takes its memberships with it (ON DELETE CASCADE).
    run(db, "DELETE FROM public.oms_meters WHERE id = %s", (meter,))
    assert run(db, "SELECT count(*) FROM public.oms_outage_meters WHERE meter_id = %s", (meter,)) == [(0,)]


def test_tables_kept_on_drop_get_postgresqls_own_checks_back(db, outage, meter):
    """oms_keep_data_on_drop() detaches the tables with their data: without the extension's
    statement-level checks, PostgreSQL's per-row checks are enabled again, so the keys still hold."""
    run(db, "SELECT oms_keep_data_on_drop()")
    for table, column, _ in KEYS:
        name = constraint_of(db, table, column)
        assert run(db, """SELECT t.tgenabled FROM pg_trigger t JOIN pg_constraint c ON c.oid = t.tgconstraint
                          WHERE t.tgrelid = %s::regclass AND c.conname = %s""",
                   (f"public.{table}", name)) == [("O",), ("O",)], (table, name)
    assert run(db, "SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'oms_references_%%'") == [(0,)]
    with pytest.raises(psycopg2.errors.ForeignKeyViolation):
        insert(db, "oms_outage_meters", outage, str(uuid.uuid4()))


def test_a_foreign_key_to_another_column_keeps_postgresqls_check(db):
    """Only keys to a referenced `id` move to the statement-level check; a DBA's key to another
    column keeps its per-row check, also when the move is made again (an upgrade, an adoption)."""
    run(db, """CREATE TABLE public.dba_sources (code varchar(32) PRIMARY KEY);
               ALTER TABLE public.oms_event_timeline
                   ADD CONSTRAINT dba_source_fkey FOREIGN KEY (source) REFERENCES public.dba_sources (code) NOT VALID;
               SELECT oms_check_references_per_statement('public.oms_event_timeline')""")
    assert run(db, """SELECT t.tgenabled FROM pg_trigger t JOIN pg_constraint c ON c.oid = t.tgconstraint
                      WHERE t.tgrelid = 'public.oms_event_timeline'::regclass AND c.conname = 'dba_source_fkey'""") \
        == [("O",), ("O",)]
    name = constraint_of(db, "oms_event_timeline", "outage_event_id")
    assert run(db, """SELECT t.tgenabled FROM pg_trigger t JOIN pg_constraint c ON c.oid = t.tgconstraint
                      WHERE t.tgrelid = 'public.oms_event_timeline'::regclass AND c.conname = %s""", (name,)) \
        == [("D",), ("D",)]
