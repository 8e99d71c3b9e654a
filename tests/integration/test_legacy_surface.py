"""The legacy surface is a subset of the extension (issue 10, SPEC §3): every line of
../shared/LEGACY_SCHEMA.md held against the catalog of the test database.

- every legacy table, with every legacy column, of the same type or a wider one;
- NOT NULL only where the legacy column is NOT NULL, and on columns of our own only with a default,
  so that whatever a legacy load inserts, ours accepts;
- the legacy defaults (other than ids, whose generator differs), so a load that leaves a column out
  gets the value it got before;
- no foreign key of ours refuses what the legacy schema accepts: the legacy keys with their ON DELETE
  actions, no key on a legacy column the legacy schema left without one, and keys on our own
  columns that cascade or set null;
- every view, with at least the legacy columns, of compatible types;
- every function signature, with a compatible result;
- the columns the operations API reads and writes.

Each gap is one line of the failure message, so a failing run lists everything that is missing.
"""

import re

import pytest

import legacy_schema
from conftest import query

SCHEMA = legacy_schema.load()

ON_DELETE = {"a": "NO ACTION", "r": "RESTRICT", "c": "CASCADE", "n": "SET NULL", "d": "SET DEFAULT"}


def catalog(pool):
    columns = {}
    for table, column, type_, not_null, default in query(pool, """
        SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
               pg_get_expr(d.adbin, d.adrelid)
        FROM pg_class c
        JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
        LEFT JOIN pg_attrdef d ON d.adrelid = c.oid AND d.adnum = a.attnum
        WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm')"""):
        columns.setdefault(table, {})[column] = (type_, not_null, default)
    foreign_keys = {}
    for table, columns_, referenced, action in query(pool, """
        SELECT c.relname, ARRAY(SELECT attname FROM unnest(k.conkey) n
                                JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = n),
               r.relname, k.confdeltype
        FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid JOIN pg_class r ON r.oid = k.confrelid
        WHERE k.contype = 'f' AND c.relnamespace = 'public'::regnamespace
          AND k.conparentid = 0  -- not the copies a key to a partitioned table makes per partition"""):
        foreign_keys.setdefault(table, []).append((tuple(columns_), referenced, ON_DELETE[action]))
    functions = {}
    for name, arguments, result in query(pool, """
        SELECT p.proname, pg_get_function_identity_arguments(p.oid), pg_get_function_result(p.oid)
        FROM pg_proc p WHERE p.pronamespace = 'public'::regnamespace"""):
        functions.setdefault(name, []).append((arguments, result))
    return columns, foreign_keys, functions


def legacy_foreign_keys(table):
    keys = {}
    for text in table.constraints:
        m = re.match(r"FOREIGN KEY \((.*?)\) REFERENCES (\w+)\(.*?\)(?: ON DELETE (CASCADE|SET NULL))?$", text)
        if m:
            keys[tuple(c.strip() for c in m[1].split(","))] = (m[2], m[3] or "NO ACTION")
    return keys


def bare_default(expression):
    """A default as it compares across spellings: no casts, CURRENT_TIMESTAMP as now()."""
    expression = re.sub(r"::[a-z ]+(\([0-9,]+\))?", "", expression or "")
    expression = expression.replace("CURRENT_TIMESTAMP", "now()").replace("pg_catalog.", "")
    return re.sub(r"^(\d+)\.0+$", r"\1", re.sub(r"(\.\d*?)0+$", r"\1", expression)).rstrip(".")


def is_generated_key(expression):
    return bool(re.search(r"(uuid_generate_v4|oms_uuid_v7|gen_random_uuid|nextval)\(", expression or ""))


def table_gaps(name, legacy, ours, our_keys):
    gaps = []
    if ours is None:
        return [f"table {name} is missing"]
    for column, want in legacy.columns.items():
        if column not in ours:
            gaps.append(f"column {name}.{column} ({want.type}) is missing")
            continue
        type_, not_null, default = ours[column]
        if not legacy_schema.holds(type_, want.type):
            gaps.append(f"column {name}.{column} is {type_}, narrower than the legacy {want.type}")
        if not_null and not want.not_null:
            gaps.append(f"column {name}.{column} is NOT NULL; the legacy column takes NULL")
        legacy_default = legacy.defaults.get(column)
        if legacy_default and not is_generated_key(legacy_default):
            if bare_default(default) != bare_default(legacy_default):
                gaps.append(f"column {name}.{column} defaults to {default}; the legacy default is {legacy_default}")
        elif legacy_default and default is None:
            gaps.append(f"column {name}.{column} has no default; the legacy one generates keys ({legacy_default})")
    for column, (type_, not_null, default) in ours.items():
        if column not in legacy.columns and not_null and default is None:
            gaps.append(f"column {name}.{column} is ours, NOT NULL and without a default: legacy loads cannot fill it")
    wanted = legacy_foreign_keys(legacy)
    for columns, referenced, action in our_keys:
        if columns in wanted:
            legacy_referenced, legacy_action = wanted[columns]
            if (referenced, action) != (legacy_referenced, legacy_action):
                gaps.append(f"foreign key {name}({', '.join(columns)}) -> {referenced} ON DELETE {action}; "
                            f"the legacy key is -> {legacy_referenced} ON DELETE {legacy_action}")
        elif all(c in legacy.columns for c in columns):
            gaps.append(f"foreign key {name}({', '.join(columns)}) -> {referenced}: the legacy schema has none there, "
                        "so it would refuse rows the legacy schema accepts")
        elif action not in ("CASCADE", "SET NULL"):
            gaps.append(f"foreign key {name}({', '.join(columns)}) -> {referenced} ON DELETE {action} would refuse "
                        "deletes the legacy schema accepts")
    return gaps


def surface_gaps(pool):
    columns, foreign_keys, functions = catalog(pool)
    gaps = []
    for name, legacy in SCHEMA.tables.items():
        gaps += table_gaps(name, legacy, columns.get(name), foreign_keys.get(name, []))
    for name, wanted in SCHEMA.views.items():
        ours = columns.get(name)
        if ours is None:
            gaps.append(f"view {name} is missing")
            continue
        for column, type_ in wanted.items():
            if column not in ours:
                gaps.append(f"view {name} lacks column {column} ({type_})")
            elif not legacy_schema.holds(ours[column][0], type_):
                gaps.append(f"view {name}.{column} is {ours[column][0]}, narrower than the legacy {type_}")
    for function in SCHEMA.functions:
        signatures = functions.get(function.name, [])
        for arguments, result in signatures:
            types = [re.sub(r"^\w+ ", "", a) if a.split(" ", 1)[0].startswith(("p_", "json_", "lat", "lon")) else a
                     for a in legacy_schema.split_top_level(arguments)]
            if types == function.argument_types:
                if result.replace("TABLE(", "").rstrip(")") != function.returns.replace("TABLE(", "").rstrip(")"):
                    gaps.append(f"function {function.name}({', '.join(types)}) returns {result}, "
                                f"not the legacy {function.returns}")
                break
        else:
            gaps.append(f"function {function.name}({', '.join(function.argument_types)}) is missing")
    for table, wanted in SCHEMA.api_columns.items():
        for column in wanted:
            if column not in columns.get(table, {}):
                gaps.append(f"column {table}.{column}, which the operations API uses, is missing")
    return gaps


def test_every_line_of_the_legacy_surface_is_in_the_extension(pool):
    gaps = surface_gaps(pool)
    assert not gaps, f"{len(gaps)} gaps against LEGACY_SCHEMA.md:\n" + "\n".join(gaps)


def test_the_parser_reads_the_whole_document():
    # A parser that silently skipped lines would make the test above pass on nothing.
    assert len(SCHEMA.tables) == 39 and len(SCHEMA.views) == 5 and len(SCHEMA.functions) == 19
    assert sum(len(t.columns) for t in SCHEMA.tables.values()) == 356
    assert SCHEMA.tables["oms_meters"].columns["location_lat"] == legacy_schema.Column("numeric(10,8)", False)
    assert SCHEMA.tables["kaifa_event_details"].columns["value"] == legacy_schema.Column("character varying(200)", True)
    assert SCHEMA.tables["kaifa_events"].partitioned and not SCHEMA.tables["kaifa_event_headers"].partitioned
    assert ("payload_id",) in legacy_foreign_keys(SCHEMA.tables["kaifa_event_status"])
    assert legacy_foreign_keys(SCHEMA.tables["oms_meters"])[("dp_id",)] == ("network_distribution_points", "SET NULL")
    assert SCHEMA.api_columns["oms_event_timeline"] == [
        "id", "outage_event_id", "event_type", "event_description", "event_timestamp", "created_by"]
    assert SCHEMA.api_columns["oms_customers"] == ["id", "customer_name", "account_id", "address"]


@pytest.mark.parametrize("ours, legacy, wider", [
    ("character varying(100)", "character varying(64)", True),
    ("character varying(50)", "character varying(64)", False),
    ("text", "character varying(200)", True),
    ("character varying", "character varying(200)", True),
    ("numeric(11,8)", "numeric(10,8)", True),
    ("numeric(10,7)", "numeric(10,8)", False),
    ("numeric(12,8)", "numeric(10,6)", True),
    ("numeric", "numeric(12,3)", True),
    ("numeric(12,3)", "numeric", False),
    ("character varying(100)[]", "character varying(100)[]", True),
    ("text[]", "character varying(100)[]", True),
    ("integer", "uuid", False),
    ("bigint", "integer", True),
])
def test_what_wider_means(ours, legacy, wider):
    assert legacy_schema.holds(ours, legacy) is wider
