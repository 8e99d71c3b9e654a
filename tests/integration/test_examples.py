"""Every sample payload through the functions the consumers call, with the result types they read."""

import os
import re

import pytest

from conftest import CORRELATING, EXAMPLES, call, correlating_function, example, query, scalar

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")

STORING = {
    "scada": "insert_scada_event_from_json",
    "onu": "insert_onu_event_from_json",
    "kaifa": "insert_kaifa_event_from_json",
    "callcenter": "insert_callcenter_ticket_from_json",
}
SAMPLES = sorted(n for n in os.listdir(EXAMPLES) if n.endswith(".json"))


def check_type(source, result):
    if source == "scada":
        assert isinstance(result, dict)
        assert UUID.match(result["scada_event_id"])
    elif source == "onu":
        assert isinstance(result, int) and result > 0
    else:
        assert isinstance(result, str) and UUID.match(result), result


def test_every_sample_is_here():
    assert len(SAMPLES) == 10, SAMPLES


@pytest.mark.parametrize("name", SAMPLES)
def test_correlating_function_accepts_sample(pool, name):
    source = name.split("_", 1)[0]
    result = call(pool, CORRELATING[source], example(name))
    check_type(source, result)
    assert scalar(pool, "SELECT count(*) FROM oms_rejected_events") == 0


@pytest.mark.parametrize("name", SAMPLES)
def test_store_function_accepts_sample_and_does_no_meter_work(pool, name):
    source = name.split("_", 1)[0]
    result = call(pool, STORING[source], example(name))
    if source == "scada":
        assert isinstance(result, str) and UUID.match(result)
    else:
        check_type(source, result)
    assert scalar(pool, "SELECT count(*) FROM oms_meter_status_events") == 0
    assert scalar(pool, "SELECT count(*) FROM oms_outage_events") == 0
    assert scalar(pool, "SELECT count(*) FROM oms_rejected_events") == 0


def test_store_functions_write_their_rows(pool):
    call(pool, STORING["kaifa"], example("kaifa_full.json"))
    counts = query(pool, """SELECT (SELECT count(*) FROM kaifa_events), (SELECT count(*) FROM kaifa_event_headers),
        (SELECT count(*) FROM kaifa_event_users), (SELECT count(*) FROM kaifa_event_payloads),
        (SELECT count(*) FROM kaifa_event_assets), (SELECT count(*) FROM kaifa_event_usage_points),
        (SELECT count(*) FROM kaifa_event_details), (SELECT count(*) FROM kaifa_event_names),
        (SELECT count(*) FROM kaifa_event_status), (SELECT count(*) FROM kaifa_event_metadata),
        (SELECT count(*) FROM kaifa_event_original_messages)""")[0]
    assert counts == (1, 1, 1, 1, 1, 1, 2, 1, 1, 1, 1)
    call(pool, STORING["callcenter"], example("callcenter_ticket.json"))
    assert query(pool, """SELECT (SELECT count(*) FROM callcenter_tickets), (SELECT count(*) FROM callcenter_customers),
        (SELECT count(*) FROM callcenter_ticket_status_history), (SELECT count(*) FROM callcenter_raw_messages)""")[0] == (1, 1, 1, 1)
    onu_id = call(pool, STORING["onu"], example("onu_last_gasp.json"))
    assert query(pool, "SELECT event_id, event_type, raw_payload->>'nmsType' FROM onu_events WHERE id = %s", (onu_id,)) == [
        ("ONU_TEST_001", "ONU_LastGaspAlert", "FiberTech")
    ]


def test_replaying_all_samples_twice_writes_each_once(pool):
    names = SAMPLES
    first = [call(pool, correlating_function(n), example(n)) for n in names]
    tables = ["scada_events", "onu_events", "kaifa_events", "callcenter_tickets", "oms_meter_status_events",
              "scada_event_affected_meters", "oms_outage_events", "oms_event_sources", "oms_event_timeline"]
    before = {t: scalar(pool, f"SELECT count(*) FROM {t}") for t in tables}
    second = [call(pool, correlating_function(n), example(n)) for n in names]
    after = {t: scalar(pool, f"SELECT count(*) FROM {t}") for t in tables}
    assert before == after
    for a, b in zip(first, second):
        if isinstance(a, dict):
            assert b["scada_event_id"] == a["scada_event_id"] and b["duplicate"] is True
        else:
            assert a == b
