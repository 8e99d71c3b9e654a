"""SPEC §6: malformed, hostile and duplicate input, in both modes of oms_correlation.on_invalid_payload.

Each case is sent as the consumers send it. In quarantine mode the function returns NULL, a WARNING
names the source and the field, the payload is kept whole in oms_rejected_events with its SQLSTATE
and field path, the caller's transaction stays usable, and nothing else is written. In error mode
the function raises that SQLSTATE and nothing is written.
"""

import json

import psycopg2
import pytest

from conftest import scalar, query, demo_grid_only

ONU = "insert_onu_event_from_json_with_meter_sync"
SCADA = "insert_scada_event_with_meter_check"
KAIFA = "insert_kaifa_event_from_json_with_meter_sync"
TICKET = "insert_callcenter_ticket_from_json_with_meter_link"
T = "2025-09-30T10:05:00Z"


def nested(depth):
    value = "deep"
    for _ in range(depth):
        value = {"x": value}
    return value


# (id, function, payload, SQLSTATE, field path)
CASES = [
    ("onu-array", ONU, [1, 2, 3], "22023", "."),
    ("onu-string", ONU, "ONU_LastGaspAlert", "22023", "."),
    ("onu-number", ONU, 42, "22023", "."),
    ("onu-null-json", ONU, None, "22023", "."),
    ("scada-array-of-events", SCADA, [{"eventType": "trip"}], "22023", "."),
    ("onu-missing-onuid", ONU, {"type": "ONU_LastGaspAlert", "timestamp": T}, "22023", "onuId"),
    ("onu-empty-onuid", ONU, {"onuId": "", "type": "ONU_LastGaspAlert", "timestamp": T}, "22023", "onuId"),
    ("onu-onuid-text", ONU, {"onuId": "ONU-7", "type": "x", "timestamp": T}, "22P02", "onuId"),
    ("onu-onuid-float", ONU, {"onuId": 3.5, "type": "x", "timestamp": T}, "22P02", "onuId"),
    ("onu-onuid-too-big", ONU, {"onuId": 2147483648, "type": "x", "timestamp": T}, "22003", "onuId"),
    ("onu-onuid-huge-text", ONU, {"onuId": "99999999999999999999999", "type": "x", "timestamp": T}, "22003", "onuId"),
    ("onu-onuid-object", ONU, {"onuId": {"id": 1}, "type": "x", "timestamp": T}, "22023", "onuId"),
    ("onu-type-array", ONU, {"onuId": 1, "type": ["a"], "timestamp": T}, "22023", "type"),
    ("onu-timestamp-number", ONU, {"onuId": 1, "type": "x", "timestamp": 1759226700}, "22007", "timestamp"),
    ("onu-timestamp-words", ONU, {"onuId": 1, "type": "x", "timestamp": "yesterday"}, "22007", "timestamp"),
    ("onu-timestamp-feb30", ONU, {"onuId": 1, "type": "x", "timestamp": "2025-02-30T10:00:00Z"}, "22007", "timestamp"),
    ("onu-eventid-too-long", ONU, {"eventId": "E" * 101, "onuId": 1, "type": "x", "timestamp": T}, "22001", "eventId"),
    ("onu-meters-objects", ONU, {"onuId": 1, "type": "x", "timestamp": T, "associatedMeters": [{"m": 1}]}, "22023",
     "associatedMeters[0]"),
    ("onu-lat-out-of-range", ONU, {"onuId": 1, "type": "x", "timestamp": T, "location": {"lat": 123}}, "22003",
     "location.lat"),
    ("onu-deep-nesting", ONU, {"onuId": 1, "type": "x", "timestamp": T, "alarmData": nested(200)}, "22023", "."),
    ("scada-missing-substation", SCADA, {"eventType": "trip", "timestamp": T}, "22023", "substationId"),
    ("scada-missing-everything", SCADA, {}, "22023", "eventType"),
    ("scada-voltage-text", SCADA, {"eventType": "trip", "substationId": "SS001", "timestamp": T, "voltage": "high"},
     "22P02", "voltage"),
    ("scada-voltage-huge", SCADA, {"eventType": "trip", "substationId": "SS001", "timestamp": T, "voltage": 1e12},
     "22003", "voltage"),
    ("scada-timestamp-offset-garbage", SCADA, {"eventType": "trip", "substationId": "SS001",
                                               "timestamp": "2025-09-30T10:00:00+25:00"}, "22007", "timestamp"),
    ("scada-coordinates-string", SCADA, {"eventType": "trip", "substationId": "SS001", "timestamp": T,
                                         "coordinates": "31.9,35.9"}, "22023", "coordinates"),
    ("scada-severity-too-long", SCADA, {"eventType": "trip", "substationId": "SS001", "timestamp": T,
                                        "severity": "🔥" * 51}, "22001", "severity"),
    ("kaifa-raw-soap", KAIFA, {"raw_soap": "<soapenv:Envelope>...</soapenv:Envelope>", "original_message": {}},
     "22023", "payload"),
    ("kaifa-empty-payload", KAIFA, {"timestamp": T, "payload": {}}, "22023", "payload"),
    ("kaifa-no-identity", KAIFA, {"timestamp": T, "header": {"message_id": ""}, "payload": {"severity": "critical"}},
     "22023", "payload.event_id"),
    ("kaifa-no-time", KAIFA, {"payload": {"event_id": "E1"}}, "22023", "timestamp"),
    ("kaifa-naive-garbage-time", KAIFA, {"timestamp": "2025-09-24T13:51:31.5553691234", "payload": {"event_id": "E1"}},
     "22007", "timestamp"),
    ("kaifa-details-number", KAIFA, {"timestamp": T, "payload": {"event_id": "E1", "event_details": 5}}, "22023",
     "payload.event_details"),
    ("kaifa-flag-word", KAIFA, {"timestamp": T, "header": {"async_reply_flag": "perhaps"}, "payload": {"event_id": "E1"}},
     "22P02", "header.async_reply_flag"),
    ("kaifa-mrid-array", KAIFA, {"timestamp": T, "payload": {"event_id": "E1", "assets": [{"ns2:mRID": ["M1"]}]}},
     "22023", "payload.assets[0].ns2:mRID"),
    ("ticket-no-customer", TICKET, {"ticketId": "T1", "timestamp": T}, "22023", "customer"),
    ("ticket-customer-string", TICKET, {"ticketId": "T1", "timestamp": T, "customer": "Mrs Haddad"}, "22023", "customer"),
    ("ticket-meter-object", TICKET, {"ticketId": "T1", "timestamp": T, "customer": {"meterNumber": {"n": 1}}}, "22023",
     "customer.meterNumber"),
    ("ticket-phone-too-long", TICKET, {"ticketId": "T1", "timestamp": T, "customer": {"phone": "٠" * 51}}, "22001",
     "customer.phone"),
    ("ticket-timestamp-bool", TICKET, {"ticketId": "T1", "timestamp": True, "customer": {"phone": "1"}}, "22007",
     "timestamp"),
    ("ticket-id-empty", TICKET, {"ticketId": "", "timestamp": T, "customer": {"phone": "1"}}, "22023", "ticketId"),
]

WRITTEN = ["scada_events", "onu_events", "onus", "kaifa_events", "kaifa_event_payloads", "callcenter_tickets",
           "callcenter_customers", "oms_meter_status_events", "oms_outage_events", "oms_meters"]


def snapshot(cur):
    counts = {}
    for table in WRITTEN:
        cur.execute(f"SELECT count(*), coalesce(max(updated_at)::text, '') FROM {table}"
                    if table in ("oms_meters", "onus") else f"SELECT count(*), '' FROM {table}")
        counts[table] = cur.fetchone()
    return counts


@pytest.mark.parametrize("case_id, function, payload, sqlstate, field", CASES, ids=[c[0] for c in CASES])
def test_quarantine(pool, case_id, function, payload, sqlstate, field):
    conn = pool.getconn()
    try:
        with conn.cursor() as cur:
            before = snapshot(cur)
            cur.execute(f"SELECT {function}(%s::jsonb)", (json.dumps(payload),))
            assert cur.fetchone()[0] is None
            warnings = [n for n in conn.notices if n.startswith("WARNING")]
            assert len(warnings) == 1, conn.notices
            assert f'field "{field}"' in warnings[0]
            source = {ONU: "ONU", SCADA: "SCADA", KAIFA: "Kaifa", TICKET: "call-center"}[function]
            assert f"invalid {source} payload" in warnings[0]
            # The caller's transaction is still usable, and nothing else was written.
            assert snapshot(cur) == before
            cur.execute("SELECT sqlstate, field_path, function_name, raw_payload FROM oms_rejected_events")
            rows = cur.fetchall()
            assert rows == [(sqlstate, field, function, payload)]
        conn.commit()
    finally:
        del conn.notices[:]
        pool.putconn(conn)


@pytest.mark.parametrize("case_id, function, payload, sqlstate, field", CASES, ids=[c[0] for c in CASES])
def test_error_mode(pool, case_id, function, payload, sqlstate, field):
    conn = pool.getconn()
    try:
        with conn.cursor() as cur:
            before = snapshot(cur)
            conn.commit()
            cur.execute("SET oms_correlation.on_invalid_payload = 'error'")
            with pytest.raises(psycopg2.Error) as raised:
                cur.execute(f"SELECT {function}(%s::jsonb)", (json.dumps(payload),))
            assert raised.value.pgcode == sqlstate, raised.value.pgerror
            assert f'field "{field}"' in raised.value.pgerror
            conn.rollback()
            cur.execute("RESET oms_correlation.on_invalid_payload")
            assert snapshot(cur) == before
            assert scalar_in(cur, "SELECT count(*) FROM oms_rejected_events") == 0
        conn.commit()
    finally:
        pool.putconn(conn)


def scalar_in(cur, sql):
    cur.execute(sql)
    return cur.fetchone()[0]


def test_hostile_text_is_stored_verbatim(pool):
    hostile = {
        "ticketId": "T'; DROP TABLE oms_meters; --",
        "timestamp": T,
        "customer": {"phone": "+962 ☎ ٧٩٠", "meterNumber": "M12345678') OR 1=1 --",
                     "address": "شارع الملك حسين 😀 <script>alert(1)</script>", "notes": "\\x00 \u202e evil ${jndi:x}"},
    }
    conn = pool.getconn()
    try:
        with conn.cursor() as cur:
            cur.execute(f"SELECT {TICKET}(%s::jsonb)", (json.dumps(hostile),))
            ticket = cur.fetchone()[0]
            assert ticket is not None
            cur.execute("""SELECT t.external_ticket_id, c.phone, c.meter_number, c.address, c.notes, c.meter_id
                           FROM callcenter_tickets t JOIN callcenter_customers c ON c.ticket_id = t.id""")
            assert cur.fetchall() == [(hostile["ticketId"], hostile["customer"]["phone"], hostile["customer"]["meterNumber"],
                                       hostile["customer"]["address"], hostile["customer"]["notes"], None)]
            cur.execute("SELECT raw_payload FROM callcenter_raw_messages")
            assert cur.fetchone()[0] == hostile
            cur.execute(f"SELECT count(*) FROM oms_meters WHERE {demo_grid_only('meter_number')}")
            assert cur.fetchone()[0] == 179
        conn.commit()
    finally:
        pool.putconn(conn)


def test_a_storage_error_is_quarantined_whole(pool):
    """A DBA's constraint rejects a row late in the event: every row of the event goes, the caller's
    transaction stays usable, and the payload is kept."""
    # NOT VALID: an upgraded database already holds ONU audit rows; the check binds new rows alike.
    query(pool, "ALTER TABLE public.oms_meter_status_events ADD CONSTRAINT no_onu_audit "
                "CHECK (source_type <> 'onu') NOT VALID")
    payload = {"eventId": "ONU_LATE_FAIL", "type": "ONU_LastGaspAlert", "onuId": 3230316, "timestamp": T}
    conn = pool.getconn()
    try:
        with conn.cursor() as cur:
            cur.execute(f"SELECT {ONU}(%s::jsonb)", (json.dumps(payload),))
            assert cur.fetchone()[0] is None
            assert any("could not store the ONU event" in n for n in conn.notices)
            cur.execute("SELECT count(*) FROM onu_events")
            assert cur.fetchone()[0] == 0
            cur.execute("SELECT power_status FROM oms_meters WHERE onu_id = 3230316")
            assert {r[0] for r in cur.fetchall()} == {"on"}
            cur.execute("SELECT sqlstate, field_path, raw_payload FROM oms_rejected_events")
            assert cur.fetchall() == [("23514", None, payload)]
        conn.commit()
        with conn.cursor() as cur:
            cur.execute("SET oms_correlation.on_invalid_payload = 'error'")
            with pytest.raises(psycopg2.Error) as raised:
                cur.execute(f"SELECT {ONU}(%s::jsonb)", (json.dumps(payload),))
            assert raised.value.pgcode == "23514"
            assert "could not store the ONU event" in raised.value.pgerror
        conn.rollback()
    finally:
        del conn.notices[:]
        pool.putconn(conn)
    assert scalar(pool, "SELECT count(*) FROM onu_events") == 0
