"""Batch-boundary independence (issue 21, SPEC §5): a correlated storm ends in the same outages,
memberships and customer counts whether the correlator takes its signals one at a time, seven at a
time or all at once, and whether they arrive in the order they were sent or in reverse.

The storm, on the engine grid (six feeders of four DPs of ten meters, 10:00-10:04, then restorations):
- F-A goes out whole (a Kaifa last gasp from each of its 40 meters, 5 s apart from 10:00:00) and comes
  back meter by meter from 10:40:00, 2 s apart;
- F-B goes out whole the same way from 10:00:02 and stays out;
- DP-C1 goes out (its ten meters, 7 s apart from 10:01:00);
- DP-D2 goes out by its two buildings' last gasps: ONU 9101 (meters 01-05) at 10:02:00 and ONU 9102
  (06-10) at 10:02:30;
- on F-E, one customer a DP calls (E-E1-01 at 10:03:00, E-E2-02, E-E3-03, E-E4-04 ten seconds apart);
- E-F1-01 goes off at 10:01:30 and is back at 10:02:00: within the declaration delay (60 s, issue 22)
  its lone last gasp is never an outage, but a momentary interruption of the meter.

Every signal is queued while a session holds the correlator off; then the database's batch size is
set and the queue drained. The outcome each way must be the one written out below (SPEC §5.3-5.4
under the default settings), and the four must agree on every span and customer row.
"""

import json
import random
import uuid

import psycopg2
import pytest
from psycopg2.pool import SimpleConnectionPool

from conftest import BASE, admin, dsn, query, settle
from engine_grid import build_grid, kaifa, onu, picture, ticket

ONUS = {9001: ["E-A1-01", "E-A1-02"],
        9101: [f"E-D2-{n:02d}" for n in range(1, 6)], 9102: [f"E-D2-{n:02d}" for n in range(6, 11)]}


def clock(seconds):
    """10:00:00 plus `seconds`, as HH:MM:SS."""
    total = 10 * 3600 + seconds
    return f"{total // 3600:02d}:{total // 60 % 60:02d}:{total % 60:02d}"


def feeder_meters(feeder):
    return [f"E-{feeder}{d}-{n:02d}" for d in range(1, 5) for n in range(1, 11)]


def storm():
    """(seconds after 10:00, event) in the order they were sent."""
    events = []
    for k, meter in enumerate(feeder_meters("A")):
        events.append((5 * k, kaifa(meter, clock(5 * k))))
        events.append((2400 + 2 * k, kaifa(meter, clock(2400 + 2 * k), restored=True)))
    for k, meter in enumerate(feeder_meters("B")):
        events.append((2 + 5 * k, kaifa(meter, clock(2 + 5 * k))))
    for k in range(10):
        events.append((60 + 7 * k, kaifa(f"E-C1-{k + 1:02d}", clock(60 + 7 * k))))
    events.append((120, onu(9101, clock(120))))
    events.append((150, onu(9102, clock(150))))
    for d in range(1, 5):
        events.append((180 + 10 * (d - 1), ticket(f"E-E{d}-{d:02d}", clock(180 + 10 * (d - 1)))))
    events.append((90, kaifa("E-F1-01", clock(90))))
    events.append((120, kaifa("E-F1-01", clock(120), restored=True)))
    # As a storm arrives: mostly in time order, each event up to 20 s late.
    jitter = random.Random(21)
    return [event for _, event in sorted(events, key=lambda e: e[0] + jitter.uniform(0, 20))]


EXPECTED = [
    # device, scope, status, affected customers, still out, confidence, start, end, meters, nested in
    ("DP-C1", "distribution_point", "confirmed", 10, 10, "1.00", "10:01", None, 10, None),
    ("DP-D2", "distribution_point", "confirmed", 10, 10, "0.84", "10:02", None, 10, None),
    ("E-E1-01", "service", "detected", 1, 1, "0.40", "10:03", None, 1, None),
    ("E-E2-02", "service", "detected", 1, 1, "0.40", "10:03", None, 1, None),
    ("E-E3-03", "service", "detected", 1, 1, "0.40", "10:03", None, 1, None),
    ("E-E4-04", "service", "detected", 1, 1, "0.40", "10:03", None, 1, None),
    ("F-A", "feeder", "restored", 40, 0, "1.00", "10:00", "10:41", 40, None),
    ("F-B", "feeder", "confirmed", 40, 40, "1.00", "10:00", None, 40, None),
]

# Every span and every customer row, by the outage's device (named, not by the ids each database
# makes its own): what "the same memberships" means.
SPANS = """
SELECT coalesce(dp.dp_id, f.feeder_id, (SELECT s.meter_number FROM oms_meters s WHERE 'service:meter:' || s.id = o.device_key),
                o.device_key), m.meter_number, om.off_at, om.on_at, om.first_source
FROM oms_outage_meters om JOIN oms_outage_events o ON o.id = om.outage_id JOIN oms_meters m ON m.id = om.meter_id
LEFT JOIN network_distribution_points dp ON dp.id = o.dp_id AND o.scope = 'distribution_point'
LEFT JOIN network_feeders f ON f.id = o.feeder_id AND o.scope = 'feeder'
ORDER BY 1, 2, 3
"""
CUSTOMERS = """
SELECT coalesce(dp.dp_id, f.feeder_id, (SELECT s.meter_number FROM oms_meters s WHERE 'service:meter:' || s.id = o.device_key),
                o.device_key), c.customer_id, oc.restored_at
FROM oms_outage_customers oc JOIN oms_outage_events o ON o.id = oc.outage_id JOIN oms_customers c ON c.id = oc.customer_id
LEFT JOIN network_distribution_points dp ON dp.id = o.dp_id AND o.scope = 'distribution_point'
LEFT JOIN network_feeders f ON f.id = o.feeder_id AND o.scope = 'feeder'
WHERE o.status <> 'merged'
ORDER BY 1, 2
"""


@pytest.fixture
def grid_databases(template):
    made = []

    def make():
        name = "oms_it_batches_" + uuid.uuid4().hex[:8]
        admin(f"CREATE DATABASE {name} TEMPLATE {template}")
        if BASE != "fresh":
            admin(f"ALTER DATABASE {name} SET search_path = earlier_rows_hidden, public")
        made.append(name)
        pool = SimpleConnectionPool(1, 2, dsn(name), options="-c TimeZone=UTC")
        build_grid(pool, feeders=("A", "B", "C", "D", "E", "F"), onus=ONUS)
        return name, pool

    yield make
    for name in made:
        admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def replay(database, pool, events, batch_size):
    """Every event queued while the correlator is held off, then drained `batch_size` at a time."""
    hold = psycopg2.connect(dsn(database))
    with hold.cursor() as cur:
        cur.execute("SELECT 1 FROM oms_correlation_state WHERE id = 1 FOR UPDATE")
    ingest = psycopg2.connect(dsn(database), options="-c TimeZone=UTC")
    ingest.autocommit = True
    with ingest.cursor() as cur:
        cur.execute("SET oms_correlation.correlate = 'deferred'")
        for function, payload in events:
            cur.execute(f"SELECT {function}(%s::jsonb)", (json.dumps(payload),))
        cur.execute("SELECT count(*) FROM oms_correlation_queue")
        queued = cur.fetchone()[0]
    ingest.close()
    # Whoever drains next reads that batch size: the worker from the database's settings, the call
    # below from its session's.
    admin(f"ALTER DATABASE {database} SET oms_correlation.batch_size = {batch_size}")
    before = query(pool, "SELECT batches FROM oms_correlation_state")[0][0]
    drain = psycopg2.connect(dsn(database), options=f"-c oms_correlation.batch_size={batch_size}")
    drain.autocommit = True
    hold.rollback()
    hold.close()
    with drain.cursor() as cur:
        cur.execute("SELECT oms_correlate_pending()")
    drain.close()
    settle(pool)
    assert query(pool, "SELECT queue_depth, set_aside FROM oms_correlation_status") == [(0, 0)]
    # The batches were the size asked for: the boundaries fell where the test says.
    batches = query(pool, "SELECT batches FROM oms_correlation_state")[0][0] - before
    assert batches == -(-queued // batch_size), (batch_size, batches)
    return queued


INTERRUPTIONS = """
SELECT m.meter_number, to_char(i.interrupted_at AT TIME ZONE 'UTC', 'HH24:MI:SS'),
       to_char(i.restored_at AT TIME ZONE 'UTC', 'HH24:MI:SS')
FROM oms_momentary_interruptions i JOIN oms_meters m ON m.id = i.meter_id ORDER BY 1, 2
"""


def outcome(pool):
    return ([row[:8] + (len(row[8]), row[9]) for row in picture(pool)], query(pool, SPANS), query(pool, CUSTOMERS),
            query(pool, INTERRUPTIONS))


def test_a_storm_ends_the_same_whatever_the_batches_and_the_arrival_order(grid_databases):
    sent = storm()
    outcomes = {}
    for label, events, batch_size in (("one at a time", sent, 1), ("seven at a time", sent, 7),
                                      ("all at once", sent, 1_000_000),
                                      ("in reverse, seven at a time", list(reversed(sent)), 7)):
        database, pool = grid_databases()
        queued = replay(database, pool, events, batch_size)
        # Each signal queued once: 132 Kaifa (F-A's 40 off and 40 on, F-B's 40, DP-C1's 10, E-F1-01's
        # two), 2 ONU, 4 calls.
        assert queued == len(sent) == 138, label
        outcomes[label] = outcome(pool)
        pool.closeall()
    for label, (shape, spans, customers, interruptions) in outcomes.items():
        assert shape == EXPECTED, label
        # 40 + 40 + 10 + 10 + 4 spans, one customer each.
        assert len(spans) == 104 and len(customers) == 104, label
        assert interruptions == [("E-F1-01", "10:01:30", "10:02:00")], label
    first = next(iter(outcomes.values()))
    for label, other in outcomes.items():
        assert other == first, label
