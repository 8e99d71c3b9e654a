"""CREATE EXTENSION on a fresh database (SPEC §9)."""

import pytest
import json

import psycopg2

from conftest import dsn, example

pytestmark = pytest.mark.fresh_only  # installs the extension itself


def test_installs_into_the_schema_create_extension_chooses(empty_db):
    conn = psycopg2.connect(dsn(empty_db))
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("CREATE SCHEMA grid")
        cur.execute("CREATE EXTENSION oms_correlation SCHEMA grid")
        cur.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'grid'")
        # 44 until 0.3.0; 0.4.0 added the correlator's queue, set-aside, input log, state, pending
        # declarations, momentary interruptions, and the registry generation and
        # the outage writers.
        assert cur.fetchone()[0] == 52
        cur.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
        assert cur.fetchone()[0] == 0
        # A caller whose search_path does not include the schema still writes into it.
        cur.execute("SET search_path = public")
        cur.execute("SELECT grid.insert_onu_event_from_json_with_meter_sync(%s::jsonb)",
                    (json.dumps(example("onu_last_gasp.json")),))
        assert cur.fetchone()[0] == 1
        cur.execute("SELECT count(*) FROM grid.onu_events")
        assert cur.fetchone()[0] == 1
        cur.execute("SELECT extrelocatable, extnamespace::regnamespace::text FROM pg_extension WHERE extname = 'oms_correlation'")
        assert cur.fetchone() == (False, "grid")
    conn.close()


def test_fresh_install_is_seeded_and_needs_no_other_extension(empty_db):
    conn = psycopg2.connect(dsn(empty_db))
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("CREATE EXTENSION oms_correlation")
        cur.execute("SELECT extname FROM pg_extension ORDER BY 1")
        assert [r[0] for r in cur.fetchall()] == ["oms_correlation", "plpgsql"]
        # The legacy scripts' three rules; SPEC §3's weights per source come out of them.
        cur.execute("SELECT rule_name, source_types::text, correlation_window_minutes FROM oms_correlation_rules ORDER BY 1")
        assert cur.fetchall() == [("SCADA Priority", "{scada}", 15),
                                  ("Standard Outage Detection", "{scada,kaifa,onu,call_center}", 30),
                                  ("Storm Mode Detection", "{scada,kaifa,onu,call_center}", 60)]
        cur.execute("SELECT source_type, correlation_weight::text FROM oms_source_summary ORDER BY 1")
        assert cur.fetchall() == [("call_center", "0.40"), ("kaifa", "0.80"), ("onu", "0.60"), ("scada", "1.00")]
        cur.execute("SELECT config_name, auto_activation_threshold FROM oms_storm_mode_config")
        assert cur.fetchall() == [("default", 100)]
        cur.execute("SELECT classification, count(*) FROM scada_alarm_vocabulary GROUP BY 1 ORDER BY 1")
        assert dict(cur.fetchall()) == {"outage": 12, "restoration": 8}
    conn.close()
