"""A grid of the engine tests' own (issue 11), and the signals the four sources send about it.

Substation SS-ENG feeds feeders F-A and F-B (by default); each feeder has DPs DP-A1... with ten
meters each, E-A1-01..., each its own customer CE-A1-01.... Every meter is on, online, last heard
from at 09:59 on 2025-10-01, the day every signal below is dated. ONU 9001 serves a building of two
meters, E-A1-01 and E-A1-02. Under the default settings a DP of ten meters rolls up on three meters
(half would be five), and a feeder of forty on two DP outages (30 % would be twelve meters).
"""

import itertools

from conftest import CORRELATING, call, query

DAY = "2025-10-01"
SUBSTATION = "SS-ENG"
_ids = itertools.count(1)


def build_grid(pool, feeders=("A", "B"), dps=4, meters_per_dp=10, onus=None):
    onus = {9001: ["E-A1-01", "E-A1-02"]} if onus is None else onus
    query(pool, "INSERT INTO network_substations (substation_id, name) VALUES (%s, 'Engine test 33/11 kV')",
          (SUBSTATION,))
    for feeder in feeders:
        query(pool, """INSERT INTO network_feeders (feeder_id, substation_id, name)
                       SELECT %s, id, %s FROM network_substations WHERE substation_id = %s""",
              (f"F-{feeder}", f"Feeder {feeder}", SUBSTATION))
        query(pool, """INSERT INTO network_distribution_points (dp_id, feeder_id, name)
                       SELECT 'DP-' || %s || n, f.id, 'Transformer ' || n
                       FROM network_feeders f, generate_series(1, %s) AS n WHERE f.feeder_id = %s""",
              (feeder, dps, f"F-{feeder}"))
        query(pool, """INSERT INTO oms_customers (customer_id, customer_name)
                       SELECT 'CE-' || %s || d || '-' || lpad(n::text, 2, '0'), 'Engine customer'
                       FROM generate_series(1, %s) AS d, generate_series(1, %s) AS n""",
              (feeder, dps, meters_per_dp))
        query(pool, """INSERT INTO oms_meters (meter_number, customer_id, substation_id, feeder_id, dp_id,
                                               power_status, communication_status, last_communication)
                       SELECT 'E-' || %s || d || '-' || lpad(n::text, 2, '0'), c.id, f.substation_id, f.id, dp.id,
                              'on', 'online', %s::timestamptz
                       FROM generate_series(1, %s) AS d CROSS JOIN generate_series(1, %s) AS n
                       JOIN network_feeders f ON f.feeder_id = %s
                       JOIN network_distribution_points dp ON dp.dp_id = 'DP-' || %s || d
                       JOIN oms_customers c ON c.customer_id = 'CE-' || %s || d || '-' || lpad(n::text, 2, '0')""",
              (feeder, f"{DAY} 09:59:00+00", dps, meters_per_dp, f"F-{feeder}", feeder, feeder))
    for onu, meters in onus.items():
        query(pool, "INSERT INTO onus (id, name) VALUES (%s, 'Building ' || %s)", (onu, onu))
        query(pool, "UPDATE oms_meters SET onu_id = %s WHERE meter_number = ANY (%s)", (onu, meters))


def at(hhmm):
    """HH:MM, or HH:MM:SS, on the grid's day."""
    return f"{DAY}T{hhmm}Z" if hhmm.count(":") == 2 else f"{DAY}T{hhmm}:00Z"


def onu(onu_id, hhmm, restored=False, event_id=None):
    return CORRELATING["onu"], {
        "eventId": event_id or f"ONU-{onu_id}-{hhmm}-{'on' if restored else 'off'}",
        "type": "ONU_PowerRestored" if restored else "ONU_LastGaspAlert",
        "onuId": onu_id, "timestamp": at(hhmm), "associatedMeters": []}


def kaifa(meter, hhmm, restored=False, event_id=None):
    payload = {"event_id": event_id or f"KF-{meter}-{hhmm}-{'on' if restored else 'off'}-{next(_ids)}",
               "assets": {"ns2:mRID": meter}}
    if restored:
        payload.update(event_type={"@ref": "3.26.0.216"}, severity="low", reason="Power restored")
    else:
        payload.update(severity="critical", reason="Last gasp signal detected")
    return CORRELATING["kaifa"], {"message_type": "EndDeviceEvent", "timestamp": at(hhmm), "payload": payload}


def ticket(meter, hhmm, ticket_id=None):
    return CORRELATING["callcenter"], {
        "ticketId": ticket_id or f"TC-{meter}-{hhmm}-{next(_ids)}", "timestamp": at(hhmm),
        "customer": {"phone": "+962-7-0000-0000", "meterNumber": meter}}


def scada(feeder, hhmm, restoration=False):
    return CORRELATING["scada"], {
        "eventType": "MV_AlarmRestoration" if restoration else "breaker_trip", "substationId": SUBSTATION,
        "feederId": f"F-{feeder}", "timestamp": at(hhmm)}


# Each outage of the grid but the merged ones: its device, scope, status, customers affected and
# still out, confidence, start and end (HH:MI), meters, and the start of the outage it is nested in.
PICTURE = """
SELECT CASE o.scope WHEN 'service' THEN coalesce('onu:' || substring(o.device_key FROM '^service:onu:(.*)$'),
                                                 (SELECT m.meter_number FROM oms_meters m
                                                  WHERE 'service:meter:' || m.id = o.device_key))
                    WHEN 'distribution_point' THEN dp.dp_id WHEN 'feeder' THEN f.feeder_id ELSE s.substation_id END,
       o.scope, o.status, o.affected_customers_count, o.customers_out, o.confidence_score::text,
       to_char(o.first_detected_at AT TIME ZONE 'UTC', 'HH24:MI'),
       to_char(o.actual_restoration_time AT TIME ZONE 'UTC', 'HH24:MI'),
       ARRAY(SELECT m.meter_number::text FROM oms_outage_meters om JOIN oms_meters m ON m.id = om.meter_id
             WHERE om.outage_id = o.id ORDER BY 1),
       (SELECT to_char(p.first_detected_at AT TIME ZONE 'UTC', 'HH24:MI') FROM oms_outage_events p
         WHERE p.id = o.parent_outage_id)
FROM oms_outage_events o
JOIN network_substations s ON s.id = o.substation_id AND s.substation_id = 'SS-ENG'
LEFT JOIN network_feeders f ON f.id = o.feeder_id
LEFT JOIN network_distribution_points dp ON dp.id = o.dp_id
WHERE o.status <> 'merged'
ORDER BY 1, 7
"""


def picture(pool):
    return [tuple(row) for row in query(pool, PICTURE)]


def merged_count(pool):
    return query(pool, """SELECT count(*) FROM oms_outage_events o JOIN network_substations s ON s.id = o.substation_id
                          WHERE s.substation_id = 'SS-ENG' AND o.status = 'merged'""")[0][0]


def assert_counts_are_recounts(pool):
    """Every outage's counts equal a recount of its meters (SPEC §5.1: distinct customers, a meter
    with no customer counting as one; the rule written out here, not the extension's customer_key),
    no merged outage keeps any, and every merged outage leads to one that is not merged."""
    assert query(pool, """
        SELECT o.event_id, o.affected_customers_count, o.customers_out, c.affected, c.still_out
        FROM oms_outage_events o
        LEFT JOIN LATERAL (SELECT count(DISTINCT coalesce(m.customer_id, m.id)) AS affected,
                                  count(DISTINCT coalesce(m.customer_id, m.id)) FILTER (WHERE om.on_at IS NULL) AS still_out
                           FROM oms_outage_meters om JOIN oms_meters m ON m.id = om.meter_id
                           WHERE om.outage_id = o.id) AS c ON true
        WHERE o.substation_id = (SELECT id FROM network_substations WHERE substation_id = 'SS-ENG')
          AND (o.status = 'merged' AND c.affected > 0
               OR o.status <> 'merged' AND (o.affected_customers_count <> c.affected
                                            OR o.customers_out <> CASE WHEN o.status IN ('detected', 'confirmed', 'in_progress')
                                                                       THEN c.still_out ELSE 0 END))""") == []
    assert query(pool, """
        WITH RECURSIVE chain AS (
            SELECT id AS start, merged_into AS next, 1 AS depth FROM oms_outage_events WHERE status = 'merged'
            UNION ALL
            SELECT c.start, o.merged_into, c.depth + 1 FROM chain c JOIN oms_outage_events o ON o.id = c.next
            WHERE o.status = 'merged' AND c.depth < 10)
        SELECT c.start FROM chain c LEFT JOIN oms_outage_events o ON o.id = c.next
        WHERE c.next IS NULL OR (o.status = 'merged' AND c.depth >= 10)""") == []
    # A meter is out in one outage at most (the unique index says so; this says it of the data).
    assert query(pool, "SELECT meter_id FROM oms_outage_meters WHERE on_at IS NULL GROUP BY 1 HAVING count(*) > 1") == []
    # One outage holds one span of a meter's power loss once: its memberships there never overlap.
    assert query(pool, """
        SELECT a.outage_id, a.meter_id, a.off_at, b.off_at FROM oms_outage_meters a
        JOIN oms_outage_meters b ON b.outage_id = a.outage_id AND b.meter_id = a.meter_id
                                AND b.off_at > a.off_at AND b.off_at < coalesce(a.on_at, 'infinity')""") == []


def play(pool, events, order="as sent", settings=None):
    """Sends `events` as the consumers do, in the order sent or reversed, then checks every
    outage's counts against a recount of its meters."""
    for function, payload in (events if order == "as sent" else list(reversed(events))):
        call(pool, function, payload, settings)
    assert_counts_are_recounts(pool)
