"""An adopted legacy database backs up and restores whole (issue 10, SPEC §9): after the one
documented step, CALL oms_finish_adoption(), which brings the legacy partitioned tables into the
extension's shape online, pg_dump / pg_restore gives back every row of every table, with or without
--load-via-partition-root, and ingest goes on in the restored database."""

import json
import os
import subprocess
import tempfile
import threading

import psycopg2
import pytest

from conftest import EXAMPLES, PORT, REPO, correlating_function, dsn, example, run
from test_adoption import REQUIREMENTS, build_legacy
from test_durability import BIN, fingerprints

pytestmark = pytest.mark.fresh_only  # installs the extension itself


def adopted_with_history(database):
    build_legacy(database)
    run(database, "CREATE EXTENSION oms_correlation")
    with open(os.path.join(REPO, "demo", "grid.sql")) as f:
        run(database, f.read())
    for name in sorted(os.listdir(EXAMPLES)):
        if name.endswith(".json"):
            run(database, f"SELECT {correlating_function(name)}(%s::jsonb)", (json.dumps(example(name)),))


def partitioned_tables(database):
    return run(database, "SELECT relname::text FROM pg_class WHERE relkind = 'p' AND relnamespace = 'public'::regnamespace "
                         "ORDER BY 1")


@pytest.mark.parametrize("via_partition_root", [False, True])
def test_after_finishing_the_adoption_a_dump_restores_every_row(new_database, via_partition_root):
    legacy, restored, fresh = new_database("oms_it_adopted_"), new_database("oms_it_restored_"), new_database("oms_it_fresh_")
    adopted_with_history(legacy)
    assert partitioned_tables(legacy) == [("kaifa_event_payloads",), ("kaifa_events",)]
    kaifa_rows = run(legacy, "SELECT count(*) FROM kaifa_events")[0][0]
    notices = []
    # Small batches: the copy goes round its loop many times.
    run(legacy, "CALL oms_finish_adoption(batch_rows => 2)", notices=notices)
    assert partitioned_tables(legacy) == []
    text = "".join(notices)
    assert f"kaifa_events: {kaifa_rows} of {kaifa_rows} rows copied" in text
    assert "oms_event_timeline:" in text and "rows filled in" in text
    # The adopted database now meets every requirement of a fresh install, the unique delivery key too.
    run(fresh, "CREATE EXTENSION oms_correlation")
    assert {r[0] for r in run(fresh, REQUIREMENTS)} - {r[0] for r in run(legacy, REQUIREMENTS)} == set()
    # A second call finds nothing to do.
    again = []
    run(legacy, "CALL oms_finish_adoption()", notices=again)
    assert again == [] or all("oms_finish_adoption" not in n for n in again)

    before = fingerprints(legacy)
    assert before["kaifa_events"][0] == kaifa_rows and before["kaifa_event_details"][0] > 0
    with tempfile.TemporaryDirectory() as tmp:
        dump = os.path.join(tmp, "adopted.dump")
        options = ["--load-via-partition-root"] if via_partition_root else []
        subprocess.run([f"{BIN}/pg_dump", "-Fc", *options, "-h", "127.0.0.1", "-p", str(PORT), "-U", "postgres",
                        "-f", dump, legacy], check=True, capture_output=True, text=True)
        restore = subprocess.run([f"{BIN}/pg_restore", "-h", "127.0.0.1", "-p", str(PORT), "-U", "postgres",
                                  "-d", restored, "--exit-on-error", dump], capture_output=True, text=True)
        assert restore.returncode == 0, restore.stderr
        assert restore.stderr == ""
    assert fingerprints(restored) == before

    # Ingest goes on: a new message is stored, a redelivery finds its original.
    message = example("kaifa_full.json")
    message["header"]["message_id"] = "after-restore-1"
    kaifa = "insert_kaifa_event_from_json_with_meter_sync"
    first = run(restored, f"SELECT {kaifa}(%s::jsonb)", (json.dumps(message),))[0][0]
    assert run(restored, f"SELECT {kaifa}(%s::jsonb)", (json.dumps(message),))[0][0] == first
    assert run(restored, "SELECT count(*) FROM oms_rejected_events")[0][0] == 0


def test_finishing_the_adoption_is_online(new_database):
    """Consumers keep delivering Kaifa messages while the tables are copied and swapped: every
    call succeeds and every message is in the plain table afterwards."""
    legacy = new_database("oms_it_adopted_")
    adopted_with_history(legacy)
    stop = threading.Event()
    delivered, failures = [], []

    def consumer():
        conn = psycopg2.connect(dsn(legacy))
        conn.autocommit = True
        n = 0
        while not stop.is_set() or n < 20:
            n += 1
            message = example("kaifa_full.json")
            message["header"]["message_id"] = f"during-finish-{n}"
            try:
                with conn.cursor() as cur:
                    cur.execute("SELECT insert_kaifa_event_from_json_with_meter_sync(%s::jsonb)", (json.dumps(message),))
                    delivered.append(cur.fetchone()[0])
            except psycopg2.Error as e:
                failures.append(e)
        conn.close()

    thread = threading.Thread(target=consumer)
    thread.start()
    try:
        run(legacy, "CALL oms_finish_adoption(batch_rows => 1)")
    finally:
        stop.set()
        thread.join()
    assert failures == []
    assert partitioned_tables(legacy) == []
    stored = {r[0] for r in run(legacy, "SELECT id::text FROM kaifa_events WHERE delivery_key LIKE 'message_id:during-finish-%'")}
    assert stored == {str(d) for d in delivered} and len(stored) == len(delivered) >= 20
    # Every message kept its payload and children through the swap.
    assert run(legacy, """SELECT count(*) FROM kaifa_events e
                          WHERE NOT EXISTS (SELECT FROM kaifa_event_payloads p WHERE p.event_id = e.id)""") == [(0,)]
