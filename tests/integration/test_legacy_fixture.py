"""The legacy fixture (legacy_fixture.py) against the document it is built from,
../shared/LEGACY_SCHEMA.md: if the fixture drifts from the legacy surface, adoption tests built on
it would prove nothing. Each check collects every mismatch, so a failure lists them all."""

import re

import psycopg2
import pytest

import legacy_fixture
import legacy_schema
from conftest import dsn, run

pytestmark = pytest.mark.fresh_only  # builds its own database, without the extension

SCHEMA = legacy_schema.load()


def built(database):
    conn = psycopg2.connect(dsn(database))
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            legacy_fixture.build(cur)
    finally:
        conn.close()
    return database


def normalised(text):
    return " ".join(text.split())


def without_casts(expression):
    """`'active'::character varying` and `'active'` name the same default."""
    return re.sub(r"::[a-z ]+(\(\d+(,\d+)?\))?(\[\])?", "", normalised(expression))


def by_table(rows):
    grouped = {}
    for table, *rest in rows:
        grouped.setdefault(table, []).append(tuple(rest) if len(rest) > 1 else rest[0])
    return grouped


def read_catalog(database):
    """The public schema as the checks compare it, each part grouped by table (or function) name."""
    def grouped(sql):
        return by_table(run(database, sql))

    return {
        "relations": dict(run(database, """
            SELECT relname, relkind FROM pg_class
            WHERE relnamespace = 'public'::regnamespace AND relkind IN ('r', 'p', 'v') AND NOT relispartition""")),
        "columns": grouped("""
            SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
                   pg_get_expr(d.adbin, d.adrelid)
            FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
            LEFT JOIN pg_attrdef d ON d.adrelid = c.oid AND d.adnum = a.attnum
            WHERE c.relnamespace = 'public'::regnamespace ORDER BY c.relname, a.attnum"""),
        # Keys referencing a partitioned table get one clone per partition (conparentid set): not the document's.
        "constraints": grouped("""
            SELECT c.relname, pg_get_constraintdef(k.oid) FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid
            WHERE c.relnamespace = 'public'::regnamespace AND k.conparentid = 0"""),
        "indexes": grouped("""
            SELECT c.relname, split_part(pg_get_indexdef(i.indexrelid), ' USING ', 2)
            FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid
            WHERE c.relnamespace = 'public'::regnamespace AND NOT c.relispartition
              AND NOT EXISTS (SELECT FROM pg_constraint k WHERE k.conindid = i.indexrelid)"""),
        "triggers": grouped("""
            SELECT c.relname, t.tgname, pg_get_triggerdef(t.oid)
            FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
            WHERE c.relnamespace = 'public'::regnamespace AND NOT t.tgisinternal AND NOT c.relispartition"""),
        "partitions": grouped("""
            SELECT p.relname, c.relname, pg_get_expr(c.relpartbound, c.oid)
            FROM pg_inherits i JOIN pg_class p ON p.oid = i.inhparent JOIN pg_class c ON c.oid = i.inhrelid
            WHERE p.relnamespace = 'public'::regnamespace"""),
        "partition_keys": dict(run(database, """
            SELECT relname, pg_get_partkeydef(oid) FROM pg_class
            WHERE relnamespace = 'public'::regnamespace AND relkind = 'p'""")),
        "serial_sequences": dict(run(database, """
            SELECT c.relname || '.' || a.attname, pg_get_serial_sequence(c.oid::regclass::text, a.attname)
            FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0
            WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p')""")),
        "functions": grouped("""
            SELECT proname, pg_get_function_identity_arguments(oid), pg_get_function_result(oid), prosecdef,
                   proconfig IS NOT NULL
            FROM pg_proc WHERE pronamespace = 'public'::regnamespace"""),
    }


def relation_mismatches(catalog):
    expected = {**{t.name: "p" if t.partitioned else "r" for t in SCHEMA.tables.values()},
                **{v: "v" for v in SCHEMA.views}}
    ours = catalog["relations"]
    return ([f"{name}: not in the document" for name in sorted(set(ours) - set(expected))]
            + [f"{name}: relkind {ours.get(name)}, expected {kind}"
               for name, kind in expected.items() if ours.get(name) != kind])


def table_mismatches(table, catalog):
    mismatches = []
    ours = {c[0]: c[1:] for c in catalog["columns"].get(table.name, [])}
    if list(ours) != list(table.columns):
        mismatches.append(f"{table.name}: columns {list(ours)}, expected {list(table.columns)}")
    for name, column in table.columns.items():
        type_, not_null, default = ours.get(name, (None, None, None))
        if (type_, not_null) != (column.type, column.not_null):
            mismatches.append(f"{table.name}.{name}: {type_} not null={not_null}, "
                              f"expected {column.type} not null={column.not_null}")
        expected_default = table.defaults.get(name)
        if (default and without_casts(default)) != (expected_default and without_casts(expected_default)):
            mismatches.append(f"{table.name}.{name}: default {default}, expected {expected_default}")
        if expected_default and expected_default.startswith("nextval("):
            sequence = catalog["serial_sequences"].get(f"{table.name}.{name}")
            if sequence != "public." + expected_default.split("'")[1]:
                mismatches.append(f"{table.name}.{name}: owns sequence {sequence}, expected {expected_default}")
    triggers = [(n, d.split(f"CREATE TRIGGER {n} ", 1)[1]) for n, d in catalog["triggers"].get(table.name, [])]
    for kind, ours_, expected in [("constraints", catalog["constraints"].get(table.name, []), table.constraints),
                                  ("indexes", catalog["indexes"].get(table.name, []), table.indexes),
                                  ("triggers", triggers, table.triggers)]:
        if sorted(normalised(str(x)) for x in ours_) != sorted(normalised(str(x)) for x in expected):
            mismatches.append(f"{table.name}: {kind} {sorted(ours_)}, expected {sorted(expected)}")
    if table.partitioned:
        key = catalog["partition_keys"].get(table.name)
        partitions = sorted(catalog["partitions"].get(table.name, []))
        expected_partitions = [(f"{table.name}_p{n}", f"FOR VALUES WITH (modulus 4, remainder {n})") for n in range(4)]
        if (key, partitions) != ("HASH (id)", expected_partitions):
            mismatches.append(f"{table.name}: partitioned by {key} into {partitions}, "
                              f"expected HASH (id) into {expected_partitions}")
    return mismatches


def view_mismatches(catalog):
    mismatches = []
    for view, expected in SCHEMA.views.items():
        ours = [tuple(c[:2]) for c in catalog["columns"].get(view, [])]
        if ours != list(expected.items()):
            mismatches.append(f"view {view}: {ours}, expected {list(expected.items())}")
    return mismatches


def function_mismatches(catalog):
    mismatches = []
    for function in SCHEMA.functions:
        signature = (", ".join(f"{n} {t}" if n else t for n, t in function.arguments), function.returns)
        found = catalog["functions"].get(function.name, [])
        if [f[:2] for f in found] != [signature]:
            mismatches.append(f"function {function.name}: {[f[:2] for f in found]}, expected [{signature}]")
        if any(security_definer or pinned for *_, security_definer, pinned in found):
            mismatches.append(f"function {function.name}: SECURITY DEFINER or a pinned setting; "
                              "the legacy functions had neither")
    return mismatches


def catalog_mismatches(database):
    """Every difference between the public schema's catalog and the document."""
    catalog = read_catalog(database)
    return (relation_mismatches(catalog)
            + [m for table in SCHEMA.tables.values() for m in table_mismatches(table, catalog)]
            + view_mismatches(catalog) + function_mismatches(catalog))


def test_the_built_catalog_is_the_documents(empty_db):
    mismatches = catalog_mismatches(built(empty_db))
    print("\n".join(mismatches))
    assert mismatches == []


def test_every_table_has_rows_and_every_column_a_value(empty_db):
    built(empty_db)
    offenders = []
    for table in SCHEMA.tables.values():
        counts = ", ".join(f'count("{c}")' for c in table.columns)
        total, *filled = run(empty_db, f"SELECT count(*), {counts} FROM {table.name}")[0]
        if total < 2:
            offenders.append(f"{table.name}: {total} rows")
        offenders += [f"{table.name}.{c}: always NULL" for c, n in zip(table.columns, filled) if n == 0]
    print("\n".join(offenders))
    assert offenders == []


def test_two_builds_make_the_same_tables_and_row_counts(new_database):
    def tables_and_counts(database):
        conn = psycopg2.connect(dsn(database))
        try:
            with conn.cursor() as cur:
                counts = {t: fingerprint[0] for t, fingerprint in legacy_fixture.table_fingerprints(cur).items()}
        finally:
            conn.close()
        tables = run(database, """SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace
                                  AND relkind IN ('r', 'p') ORDER BY relname""")
        return tables, counts

    first, second = (tables_and_counts(built(new_database())) for _ in range(2))
    assert first == second


def test_fingerprints_ignore_added_columns_and_see_changed_rows(empty_db):
    conn = psycopg2.connect(dsn(built(empty_db)))
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            before = legacy_fixture.table_fingerprints(cur)
            assert set(before) == set(legacy_fixture.LEGACY_TABLES)
            for table in legacy_fixture.LEGACY_TABLES:
                cur.execute(f"ALTER TABLE {table} ADD COLUMN added_by_adoption integer DEFAULT 1")
            assert legacy_fixture.table_fingerprints(cur) == before
            cur.execute("UPDATE oms_meters SET power_status = 'on' WHERE meter_number = 'LM1'")
            after = legacy_fixture.table_fingerprints(cur)
            assert [t for t in before if after[t] != before[t]] == ["oms_meters"]
    finally:
        conn.close()
