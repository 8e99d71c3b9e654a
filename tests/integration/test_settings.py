"""Every setting does what the README says it does (issue 13): each is set away from its default
and its effect on what the extension writes is checked against the default's; and the README's
table of settings is the list of settings the library defines."""

import os
import re

import psycopg2
import pytest

from conftest import REPO, call, example, query, scalar

ONU = "insert_onu_event_from_json_with_meter_sync"
KAIFA = "insert_kaifa_event_from_json_with_meter_sync"
TICKET = "insert_callcenter_ticket_from_json_with_meter_link"
SCADA = "insert_scada_event_with_meter_check"


def confidences(pool, source):
    return {str(c) for (c,) in query(pool, "SELECT DISTINCT confidence_score FROM oms_meter_status_events "
                                           "WHERE source_type = %s", (source,))}


@pytest.mark.parametrize("setting, function, payload, source, default, chosen", [
    ("oms_correlation.confidence_scada", SCADA, example("scada_breaker_trip.json"), "scada", "0.90", "0.55"),
    ("oms_correlation.confidence_onu", ONU, example("onu_last_gasp.json"), "onu", "0.85", "0.70"),
    ("oms_correlation.confidence_kaifa", KAIFA, example("kaifa_minimal.json"), "kaifa", "0.90", "0.66"),
    ("oms_correlation.confidence_call_center", TICKET, example("callcenter_ticket.json"), "call_center", "0.60",
     "0.33"),
])
def test_each_confidence_setting_scores_its_sources_status_events(pool, setting, function, payload, source, default,
                                                                   chosen):
    call(pool, function, payload, {setting: chosen})
    assert confidences(pool, source) == {chosen}
    # The same kind of event under the default.
    second = dict(payload)
    for key in ("eventId", "ticketId"):
        if key in second:
            second[key] += "-DEFAULT"
    if function == KAIFA:
        second["payload"] = dict(second["payload"], event_id="KAIFA-DEFAULT")
    second["timestamp"] = "2025-09-30T12:00:00Z"
    if function == SCADA:
        second["eventType"], second["alarmType"] = "LOSS OF VOLTAGE", "De-energized"
    call(pool, function, second)
    assert confidences(pool, source) == {chosen, default}


def test_update_meter_status_takes_the_confidence_of_its_source(pool):
    event = scalar(pool, "SELECT update_meter_status('M12345678', 'off', 'power_off', 'onu', 'ONU-X', "
                         "'2025-09-30T10:00:00Z') ")
    assert str(scalar(pool, "SELECT confidence_score FROM oms_meter_status_events WHERE id = %s", (event,))) == "0.85"


def test_comm_fresh_window_decides_which_silent_meters_count_offline(pool):
    # FD001's 22 meters were last heard from at 09:58; the trips are at 10:00.
    trip = {"eventType": "breaker_trip", "substationId": "SS001", "feederId": "FD001"}
    default = call(pool, SCADA, dict(trip, timestamp="2025-09-30T10:00:00Z"))
    assert (default["total_meters"], default["offline_meters"], default["online_meters"]) == (22, 0, 22)
    narrow = call(pool, SCADA, dict(trip, timestamp="2025-09-30T10:00:05Z"), {"oms_correlation.comm_fresh_window": "60s"})
    assert (narrow["total_meters"], narrow["offline_meters"], narrow["online_meters"]) == (22, 22, 0)


def test_scada_scope_topology_affects_every_meter_in_scope(pool):
    evidence = call(pool, SCADA, {"eventType": "breaker_trip", "substationId": "SS001", "feederId": "FD001",
                                  "timestamp": "2025-09-30T10:00:00Z"})
    assert (evidence["scada_scope"], evidence["affected_meters"]) == ("evidence", 0)
    topology = call(pool, SCADA, {"eventType": "breaker_trip", "substationId": "SS001", "feederId": "FD001",
                                  "timestamp": "2025-09-30T10:00:05Z"}, {"oms_correlation.scada_scope": "topology"})
    assert (topology["scada_scope"], topology["affected_meters"]) == ("topology", 22)


def test_on_invalid_payload_decides_between_quarantine_and_error(pool):
    assert call(pool, ONU, {"onuId": "x"}) is None
    assert scalar(pool, "SELECT count(*) FROM oms_rejected_events") == 1
    with pytest.raises(psycopg2.errors.InvalidTextRepresentation):
        call(pool, ONU, {"onuId": "x"}, {"oms_correlation.on_invalid_payload": "error"})
    assert scalar(pool, "SELECT count(*) FROM oms_rejected_events") == 1


def test_update_meter_status_follows_the_ordering_rule(pool):
    """An older event is audited, not applied (README, "Bad input, duplicates and ordering")."""
    newer = scalar(pool, "SELECT update_meter_status('M12345678', 'off', 'power_off', 'system', 'DBA-1', "
                         "'2025-09-30T10:00:00Z')")
    older = scalar(pool, "SELECT update_meter_status('M12345678', 'on', 'power_on', 'system', 'DBA-2', "
                         "'2025-09-30T09:00:00Z')")
    assert query(pool, "SELECT source_event_id, applied, metadata ? 'not_applied' FROM oms_meter_status_events "
                       "WHERE id IN (%s, %s) ORDER BY event_timestamp", (newer, older)) == [
        ("DBA-2", False, True), ("DBA-1", True, False)]
    assert query(pool, "SELECT power_status, last_event_at::text FROM oms_meters WHERE meter_number = 'M12345678'",
                 ) == [("off", "2025-09-30 10:00:00+00")]


def documented_settings():
    with open(os.path.join(REPO, "README.md")) as f:
        readme = f.read()
    table = readme.split("## Settings", 1)[1].split("\n## ", 1)[0]
    names = set()
    for cell in re.findall(r"^\| (`[^|]+`) \|", table, re.M):
        names.update(re.findall(r"`([a-z_]+)`", cell))
    return names


def test_the_readmes_settings_are_the_librarys(pool):
    query(pool, "SELECT oms_uuid_v7()")  # loads the library, which defines them
    defined = {name.split(".", 1)[1] for (name,) in query(
        pool, "SELECT name FROM pg_settings WHERE name LIKE 'oms_correlation.%'")}
    assert documented_settings() == defined
