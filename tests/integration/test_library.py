"""The library by its plain name (issue 20): every way a DBA names it finds the one file that a
build installs, `$libdir/oms_correlation.so` (the control file's module_pathname), and a server that
preloads it keeps one library through ALTER EXTENSION UPDATE.

Before 0.4.0 each release's library was named by version (oms_correlation-0.3.0.so) and nothing
answered to the plain name; a stale oms_correlation.so from an older build hid that from every run.
"""

import json
import os
import subprocess

import psycopg2
import pytest

from conftest import CORRELATING, PORT, RELEASES, REPO, example, install_release, run

pytestmark = pytest.mark.fresh_only  # installs the extension itself

PG_CONFIG = "/usr/lib/postgresql/15/bin/pg_config"
CLUSTER = os.path.join(REPO, "scripts", "cluster.sh")
PRELOAD_PORT = int(os.environ.get("OMS_PRELOAD_PORT", "25434"))
# Settings the library defines; a placeholder (a SET before the library is loaded) has no unit.
DEFINED = "SELECT unit FROM pg_settings WHERE name = 'oms_correlation.rollup_window'"


def pkglibdir():
    return subprocess.run([PG_CONFIG, "--pkglibdir"], capture_output=True, text=True, check=True).stdout.strip()


def connect(port, dbname, options=""):
    conn = psycopg2.connect(f"host=127.0.0.1 port={port} user=postgres dbname={dbname}",
                            options=("-c TimeZone=UTC " + options).strip())
    conn.autocommit = True
    return conn


def one(conn, sql, params=None):
    with conn.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchone()


def ingest_sample(conn, name):
    function = CORRELATING[name.split("_", 1)[0]]
    return one(conn, f"SELECT {function}(%s::jsonb)", (json.dumps(example(name)),))[0]


def test_the_build_installs_the_library_under_its_plain_name():
    # The one library a build installs; previous releases the upgrade tests build sit beside it.
    assert os.path.isfile(os.path.join(pkglibdir(), "oms_correlation.so"))


def test_load_by_plain_name_defines_the_settings(new_database):
    database = new_database("oms_it_load_")
    conn = connect(PORT, database)
    assert one(conn, DEFINED) is None
    with conn.cursor() as cur:
        cur.execute("LOAD 'oms_correlation'")
    assert one(conn, DEFINED) == ("s",)
    assert one(conn, "SHOW oms_correlation.rollup_window") == ("5min",)
    # The functions are bound to the same file.
    with conn.cursor() as cur:
        cur.execute("CREATE EXTENSION oms_correlation")
    assert one(conn, "SELECT array_agg(DISTINCT probin) FROM pg_proc WHERE probin LIKE '%oms_correlation%'") == (
        ["$libdir/oms_correlation"],)
    conn.close()


def test_session_preload_libraries_by_plain_name(new_database):
    database = new_database("oms_it_session_preload_")
    conn = connect(PORT, database, "-c session_preload_libraries=oms_correlation")
    # Loaded at connection, before any call: the settings are the library's, not placeholders.
    assert one(conn, DEFINED) == ("s",)
    conn.close()


@pytest.fixture
def preload_cluster():
    """A cluster of its own started with shared_preload_libraries = 'oms_correlation'."""
    subprocess.run([CLUSTER, "destroy", "preload"], check=True)
    started = subprocess.run([CLUSTER, "start", "preload", str(PRELOAD_PORT)], capture_output=True, text=True)
    assert started.returncode == 0, started.stderr
    conn = connect(PRELOAD_PORT, "postgres")
    with conn.cursor() as cur:
        cur.execute("ALTER SYSTEM SET shared_preload_libraries = 'oms_correlation'")
    conn.close()
    subprocess.run([CLUSTER, "stop", "preload"], check=True)
    started = subprocess.run([CLUSTER, "start", "preload", str(PRELOAD_PORT)], capture_output=True, text=True)
    assert started.returncode == 0, started.stderr
    yield
    subprocess.run([CLUSTER, "destroy", "preload"], check=True)


def create_database(name):
    conn = connect(PRELOAD_PORT, "postgres")
    with conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE {name}")
    conn.close()


def test_shared_preload_libraries_by_plain_name(preload_cluster):
    create_database("oms_preload")
    conn = connect(PRELOAD_PORT, "oms_preload")
    assert one(conn, "SHOW shared_preload_libraries") == ("oms_correlation",)
    assert one(conn, DEFINED) == ("s",)
    with conn.cursor() as cur:
        cur.execute("CREATE EXTENSION oms_correlation")
        with open(os.path.join(REPO, "demo", "grid.sql")) as f:
            cur.execute(f.read())
    assert ingest_sample(conn, "onu_last_gasp.json") == 1
    assert one(conn, "SELECT count(*) FROM oms_meter_status_events")[0] == 2
    conn.close()


def test_a_preloaded_session_keeps_working_through_an_update(preload_cluster):
    """A database at the previous release runs that release's own library (its functions are bound
    to oms_correlation-0.3.0.so); the preloaded server has the plain-named one loaded beside it.
    After ALTER EXTENSION UPDATE every function is bound to the preloaded library, and a session
    connected across the update goes on, with what it SET."""
    release = RELEASES[-1]
    sources = install_release(release)
    create_database("oms_preload_update")
    session = connect(PRELOAD_PORT, "oms_preload_update")
    with session.cursor() as cur:
        cur.execute(f"CREATE EXTENSION oms_correlation VERSION '{release}'")
        with open(os.path.join(sources, "demo", "grid.sql")) as f:
            cur.execute(f.read())
        cur.execute("SET oms_correlation.scada_scope = 'topology'")
    assert one(session, "SELECT DISTINCT probin FROM pg_proc WHERE proname = 'insert_onu_event_from_json'")[0] in (
        f"$libdir/oms_correlation-{release}", f"oms_correlation-{release}")
    assert ingest_sample(session, "onu_last_gasp.json") == 1

    other = connect(PRELOAD_PORT, "oms_preload_update")
    with other.cursor() as cur:
        cur.execute("ALTER EXTENSION oms_correlation UPDATE")
    other.close()

    assert one(session, "SELECT array_agg(DISTINCT probin) FROM pg_proc WHERE probin LIKE '%oms_correlation%'") == (
        ["$libdir/oms_correlation"],)
    result = ingest_sample(session, "scada_breaker_trip.json")
    assert (result["scada_scope"], result["affected_meters"]) == ("topology", 150)

    # CREATE EXTENSION in another database of the same preloaded server.
    create_database("oms_preload_fresh")
    fresh = connect(PRELOAD_PORT, "oms_preload_fresh")
    with fresh.cursor() as cur:
        cur.execute("CREATE EXTENSION oms_correlation")
    assert one(fresh, "SELECT extversion FROM pg_extension WHERE extname = 'oms_correlation'") == (
        one(session, "SELECT extversion FROM pg_extension WHERE extname = 'oms_correlation'"))
    fresh.close()
    session.close()
