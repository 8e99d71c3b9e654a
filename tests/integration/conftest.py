"""Integration harness: the built extension in a real private cluster, driven through psycopg2
exactly as the consumers drive it (`SELECT fn(%s::jsonb)`, commit, read the result).

Each test gets its own database, cloned from a template that holds the extension and the demo
grid, so tests neither share state nor pay for the grid each time.
"""

import json
import os
import subprocess
import uuid

import psycopg2
import pytest
from psycopg2.pool import SimpleConnectionPool

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
EXAMPLES = os.environ.get("OMS_EXAMPLES_DIR", os.path.join(REPO, "..", "shared", "examples"))
PORT = int(os.environ.get("OMS_TEST_PORT", "54330"))
TEMPLATE = "oms_it_template"


def dsn(dbname):
    return f"host=127.0.0.1 port={PORT} user=postgres dbname={dbname}"


def admin(sql):
    conn = psycopg2.connect(dsn("postgres"))
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
    finally:
        conn.close()


def install_with_grid(database_dsn):
    """CREATE EXTENSION and the demo grid (the users' runbook scenario) in a database."""
    conn = psycopg2.connect(database_dsn)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("CREATE EXTENSION oms_correlation")
        with open(os.path.join(REPO, "demo", "grid.sql")) as f:
            cur.execute(f.read())
    conn.close()


@pytest.fixture(scope="session")
def template():
    subprocess.run([os.path.join(REPO, "scripts", "cluster.sh"), "start", "test", str(PORT)], check=True)
    admin(f"DROP DATABASE IF EXISTS {TEMPLATE}")
    admin(f"CREATE DATABASE {TEMPLATE}")
    install_with_grid(dsn(TEMPLATE))
    return TEMPLATE


@pytest.fixture
def db(template):
    name = "oms_it_" + uuid.uuid4().hex[:12]
    admin(f"CREATE DATABASE {name} TEMPLATE {template}")
    yield name
    admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def empty_db(template):
    """A database without the extension (the cluster is started by `template`)."""
    name = "oms_it_empty_" + uuid.uuid4().hex[:8]
    admin(f"CREATE DATABASE {name}")
    yield name
    admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def pool(db):
    p = SimpleConnectionPool(1, 4, dsn(db), options="-c TimeZone=UTC")
    yield p
    p.closeall()


def example(name):
    with open(os.path.join(EXAMPLES, name)) as f:
        return json.load(f)


def call(pool, function, payload, settings=None):
    """What the consumers do: one pooled connection, SELECT fn(%s::jsonb), commit, return the value."""
    conn = pool.getconn()
    try:
        with conn.cursor() as cur:
            for name, value in (settings or {}).items():
                cur.execute("SELECT set_config(%s, %s, false)", (name, value))
            cur.execute(f"SELECT {function}(%s::jsonb)", (json.dumps(payload),))
            result = cur.fetchone()[0]
            for name in settings or {}:
                cur.execute("RESET " + name)
        conn.commit()
        return result
    except Exception:
        conn.rollback()
        raise
    finally:
        pool.putconn(conn)


def query(pool, sql, params=None):
    conn = pool.getconn()
    try:
        with conn.cursor() as cur:
            cur.execute(sql, params)
            rows = cur.fetchall() if cur.description else []
        conn.commit()
        return rows
    finally:
        pool.putconn(conn)


def scalar(pool, sql, params=None):
    return query(pool, sql, params)[0][0]
