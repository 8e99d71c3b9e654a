"""oms_correlate_events, the legacy correlation entry point (SPEC §5.9), called as the consumers
call it through the operations API after every ingest (LEGACY_SCHEMA.md, last section)."""

import json

from conftest import call, example, query, scalar

CORRELATE = "SELECT oms_correlate_events(%s, %s, %s, %s, %s, %s, %s, %s)"


def correlate(pool, source_type, source_event_id, at="2025-09-30T10:00:00Z", lat=None, lng=None):
    """As the consumers send it: event type 'outage' whatever happened, window 30, radius 1000."""
    return scalar(pool, CORRELATE, ("outage", source_type, source_event_id, at, lat, lng, 30, 1000))


def test_a_stored_alarm_answers_with_the_outage_its_ingest_correlated_and_writes_nothing(pool):
    trip = call(pool, "insert_scada_event_with_meter_check", example("scada_breaker_trip.json"))
    counts = "SELECT (SELECT count(*) FROM oms_outage_events), (SELECT count(*) FROM oms_event_sources)"
    before = query(pool, counts)
    assert str(correlate(pool, "scada", f"scada_{trip['scada_event_id']}")) == trip["outage_event_id"]
    assert str(correlate(pool, "scada", f"scada_{trip['scada_event_id']}")) == trip["outage_event_id"]
    assert query(pool, counts) == before
    # A restoration: the outage it restored.
    restoration = call(pool, "insert_scada_event_with_meter_check", example("scada_restoration.json"))
    before = query(pool, counts)
    assert str(correlate(pool, "scada", f"scada_{restoration['scada_event_id']}")) == trip["outage_event_id"]
    # An informational alarm: none.
    info = call(pool, "insert_scada_event_with_meter_check",
                {"eventType": "MV_AlarmTemperature", "substationId": "SS001", "timestamp": "2025-09-30T11:00:00Z"})
    assert correlate(pool, "scada", f"scada_{info['scada_event_id']}") is None
    assert query(pool, counts) == before


def test_rejected_payloads_open_nothing(pool):
    # The ingest returned NULL: the consumer sends the id it made of that, or the payload's own.
    assert call(pool, "insert_onu_event_from_json_with_meter_sync", {"eventId": "BROKEN-1", "onuId": "x"}) is None
    assert correlate(pool, "scada", "scada_None", lat=31.95, lng=35.91) is None
    assert correlate(pool, "onu", "BROKEN-1", lat=31.95, lng=35.91) is None
    assert scalar(pool, "SELECT count(*) FROM oms_outage_events") == 0


def test_an_external_report_opens_joins_and_is_idempotent(pool):
    # Without coordinates there is nowhere to put it.
    assert correlate(pool, "call_center", "EXT-0") is None
    # In Aqaba, far from the grids the suite runs on.
    first = correlate(pool, "call_center", "EXT-1", lat=29.5321, lng=35.0063)
    assert first is not None
    assert correlate(pool, "call_center", "EXT-1", lat=29.5321, lng=35.0063) == first
    # 300 m away and ten minutes later: the same outage; 5 km away: another.
    assert correlate(pool, "onu", "EXT-2", at="2025-09-30T10:10:00Z", lat=29.5348, lng=35.0063) == first
    other = correlate(pool, "onu", "EXT-3", lat=29.5771, lng=35.0063)
    assert other not in (None, first)
    assert query(pool, "SELECT source_type, source_event_id, correlation_weight::text FROM oms_event_sources "
                       "WHERE outage_event_id = %s ORDER BY 2", (first,)) == [
        ("call_center", "EXT-1", "0.40"), ("onu", "EXT-2", "0.60")]
    # Noisy-OR of 0.4 and 0.6.
    assert str(scalar(pool, "SELECT confidence_score FROM oms_outage_events WHERE id = %s", (first,))) == "0.76"
