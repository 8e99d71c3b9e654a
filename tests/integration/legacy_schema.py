"""The legacy database surface, read from ../shared/LEGACY_SCHEMA.md (issue 10).

One parser for everything that holds the extension against the legacy surface: the superset test
(a fresh install has every legacy table, column, view and function), and the fixture builder that
makes a database the way the legacy scripts made it (legacy_fixture.py).

    schema = load()
    schema.tables["oms_meters"].columns["location_lat"]   -> Column("numeric(10,8)", not_null=False)
"""

import os
import re
from dataclasses import dataclass, field

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SHARED = os.environ.get("OMS_SHARED_DIR", os.path.join(REPO, "..", "shared"))
PATH = os.path.join(SHARED, "LEGACY_SCHEMA.md")


@dataclass
class Column:
    type: str
    not_null: bool = False


@dataclass
class Table:
    name: str
    columns: dict            # name -> Column, in the document's order
    partitioned: bool = False
    constraints: list = field(default_factory=list)   # pg_get_constraintdef texts
    defaults: dict = field(default_factory=dict)      # column -> default expression
    indexes: list = field(default_factory=list)       # "btree (a, b)" texts
    triggers: list = field(default_factory=list)      # (name, definition)


@dataclass
class Function:
    name: str
    arguments: list          # (name or None, type)
    returns: str

    @property
    def argument_types(self):
        return [t for _, t in self.arguments]


@dataclass
class LegacySchema:
    tables: dict
    views: dict              # name -> {column: type}
    functions: list
    seed_text: str
    api_columns: dict        # table -> [column] the operations API reads or writes


def split_top_level(text, separator=","):
    """Splits on `separator` outside parentheses: `numeric(10,8)` stays whole."""
    parts, depth, current = [], 0, ""
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == separator and depth == 0:
            parts.append(current.strip())
            current = ""
        else:
            current += ch
    if current.strip():
        parts.append(current.strip())
    return parts


def parse_columns(text):
    columns = {}
    for part in split_top_level(text):
        name, rest = part.split(" ", 1)
        not_null = rest.endswith(" not null")
        columns[name] = Column(rest[: -len(" not null")] if not_null else rest, not_null)
    return columns


def sections(text):
    """The document's `## ` sections, by heading."""
    found, heading = {}, None
    for line in text.splitlines():
        if line.startswith("## "):
            heading = line[3:].strip()
            found[heading] = []
        elif heading:
            found[heading].append(line)
    return found


def bullets(lines):
    """Bullet items, with their indented continuation lines joined on."""
    items = []
    for line in lines:
        if line.startswith("- "):
            items.append(line[2:])
        elif line.startswith("  ") and items:
            items[-1] += " " + line.strip()
    return items


BULLET = re.compile(r"^`(?P<name>[a-z_0-9]+)`(?P<partitioned> \(partitioned\))?: (?P<rest>.*)$")
FUNCTION = re.compile(r"^`(?P<name>[a-z_0-9]+)\((?P<args>.*?)\) → (?P<returns>.*)`$")
IDENTIFIER = re.compile(r"^[a-z_][a-z_0-9]*$")


def parse_function(item):
    m = FUNCTION.match(item)
    arguments = []
    for arg in split_top_level(m["args"]):
        words = arg.split(" ", 1)
        # `p_x character varying` names its argument; `jsonb` alone would not (none here do).
        if len(words) == 2 and words[0].startswith(("p_", "json_", "lat", "lon")):
            arguments.append((words[0], words[1]))
        else:
            arguments.append((None, arg))
    return Function(m["name"], arguments, m["returns"])


def parse_constraint_line(table, rest):
    # "constraints: A; B. defaults: x = y; z = w. indexes: btree (a); btree (b)."
    parts = re.split(r"\. (?=defaults: |indexes: )", rest.rstrip("."))
    for part in parts:
        kind, _, body = part.partition(": ")
        if body in ("", "none"):
            continue
        items = [i.strip() for i in split_top_level(body, ";")]
        if kind == "constraints":
            table.constraints.extend(items)
        elif kind == "defaults":
            for item in items:
                column, _, expression = item.partition(" = ")
                table.defaults[column] = expression
        elif kind == "indexes":
            table.indexes.extend(items)


def api_column_list(rest):
    """The columns a bullet of the operations-API section names: its first sentence, after its
    last colon, without remarks in parentheses."""
    first_sentence = re.split(r"\.(?: |$)", rest, maxsplit=1)[0]
    listed = first_sentence.rsplit(": ", 1)[-1]
    listed = re.sub(r"\([^)]*\)", "", listed).replace(" and also ", ", ")
    return [w.strip() for w in listed.split(",") if IDENTIFIER.match(w.strip())]


def parse(text):
    doc = sections(text)
    tables, views, functions, api_columns = {}, {}, [], {}
    for item in bullets(doc["Tables"]):
        m = BULLET.match(item)
        tables[m["name"]] = Table(m["name"], parse_columns(m["rest"]), partitioned=bool(m["partitioned"]))
    for item in bullets(doc["Views"]):
        m = BULLET.match(item)
        views[m["name"]] = {n: c.type for n, c in parse_columns(m["rest"]).items()}
    for item in bullets(doc["Functions"]):
        functions.append(parse_function(item))
    for item in bullets(doc["Constraints, defaults and indexes"]):
        m = BULLET.match(item)
        parse_constraint_line(tables[m["name"]], m["rest"])
    for item in bullets(doc["Triggers"]):
        m = BULLET.match(item)
        name, _, definition = m["rest"].partition(": ")
        tables[m["name"]].triggers.append((name, definition))
    # oms_outage_customers is described in prose: its columns, keys and actions.
    for item in bullets(doc["Also part of the legacy surface"]):
        m = BULLET.match(item)
        prose = m["rest"]
        columns = {}
        for part in split_top_level(re.sub(r"\(→[^)]*\)", "", prose.split(", unique (")[0])):
            name, rest = part.split(" ", 1)
            columns[name] = Column(rest.replace(" not null", "").strip(), rest.strip().endswith("not null"))
        table = Table(m["name"], columns)
        table.constraints = [
            "FOREIGN KEY (outage_id) REFERENCES oms_outage_events(id) ON DELETE CASCADE",
            "FOREIGN KEY (customer_id) REFERENCES oms_customers(id) ON DELETE CASCADE",
            "PRIMARY KEY (id)",
            "UNIQUE (outage_id, customer_id)",
        ]
        tables[m["name"]] = table
        # "... together with `oms_customers` `id, customer_name, account_id, address`."
        also = re.search(r"`(\w+)` `([^`]+)`", prose)
        if also:
            api_columns[also[1]] = [c.strip() for c in also[2].split(",")]
    for item in bullets(doc["What the operations API and its dashboards read and write"]):
        m = BULLET.match(item)
        if m and m["name"] in tables:
            api_columns[m["name"]] = api_column_list(m["rest"])
    return LegacySchema(tables, views, functions, "\n".join(doc["Seed rows"]), api_columns)


def load(path=PATH):
    with open(path) as f:
        return parse(f.read())


# Type widths, for "the same type or a wider one".
VARCHAR = re.compile(r"^character varying(?:\((\d+)\))?(\[\])?$")
NUMERIC = re.compile(r"^numeric(?:\((\d+),(\d+)\))?$")


def holds(ours, legacy):
    """Whether a column of type `ours` holds every value of a column of type `legacy` unchanged
    (PostgreSQL's own spelling of both, as format_type prints it; commas without spaces)."""
    ours, legacy = ours.replace(", ", ","), legacy.replace(", ", ",")
    if ours == legacy:
        return True
    lv, ov = VARCHAR.match(legacy), VARCHAR.match(ours)
    if lv:
        array = lv[2] or ""
        if ours == "text" + array:
            return True
        return bool(ov) and (ov[2] or "") == array and (ov[1] is None or (lv[1] is not None and int(ov[1]) >= int(lv[1])))
    ln, on = NUMERIC.match(legacy), NUMERIC.match(ours)
    if ln and on:
        if on[1] is None:
            return True
        if ln[1] is None:
            return False
        return int(on[2]) >= int(ln[2]) and int(on[1]) - int(on[2]) >= int(ln[1]) - int(ln[2])
    widening = {("integer", "bigint"), ("integer", "numeric"), ("bigint", "numeric"),
                ("timestamp without time zone", "timestamp with time zone")}
    return (legacy, ours) in widening
