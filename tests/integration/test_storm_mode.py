"""Storm mode (issue 12, SPEC §5.6): it switches on by itself when power-off signals come faster
than oms_storm_mode_config says, off after the rate has stayed low for the cool-down, and each
switch is recorded, announced and visible in one place. The rate has no hot row."""

import json
import select
import threading
import time

import psycopg2
import pytest

from conftest import CORRELATING, dsn, query, scalar
from engine_grid import build_grid, kaifa, picture

# 120 a minute over a 5-second window: 10 signals in 5 seconds switch it on; under 30 a minute
# (fewer than 3 in 5 seconds) for 2 seconds switch it off. Windows twice as wide meanwhile.
FAST = """UPDATE oms_storm_mode_config SET auto_activation_threshold = 120, deactivation_threshold_per_minute = 30,
                 rate_window_seconds = 5, cooldown_seconds = 2, window_multiplier = 2 WHERE config_name = 'default'"""


@pytest.fixture
def grid(pool):
    build_grid(pool)
    query(pool, FAST)
    return pool


def deliver(database, payloads, sessions=4):
    errors = []

    def work(part):
        conn = psycopg2.connect(dsn(database), options="-c TimeZone=UTC")
        try:
            for function, payload in part:
                with conn.cursor() as cur:
                    cur.execute(f"SELECT {function}(%s::jsonb)", (json.dumps(payload),))
                conn.commit()
        except psycopg2.Error as e:
            errors.append(e.pgerror)
        finally:
            conn.close()

    threads = [threading.Thread(target=work, args=(payloads[s::sessions],)) for s in range(sessions)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return errors


def state(pool):
    return query(pool, "SELECT active, switches FROM oms_storm_mode")[0]


def test_storm_mode_switches_on_under_a_storm_and_off_after_the_cool_down(grid, db):
    listener = psycopg2.connect(dsn(db))
    listener.autocommit = True
    with listener.cursor() as cur:
        cur.execute("LISTEN oms_outage")
    assert state(grid) == (False, 0)
    # 80 last gasps from 4 sessions within a second or two.
    storm = [kaifa(f"E-{f}{d}-{n:02d}", "10:00") for f in "AB" for d in range(1, 5) for n in range(1, 11)]
    assert deliver(db, storm) == []
    assert state(grid) == (True, 1)
    assert query(grid, "SELECT config_value FROM oms_storm_mode_config WHERE config_key = 'storm_mode_active'") == [
        ("true",)]
    assert query(grid, "SELECT active, rate_per_minute >= 120, threshold_per_minute FROM oms_storm_mode_log") == [
        (True, True, 120)]
    # Quiet for longer than the window and the cool-down: the next signal finds the storm over.
    time.sleep(8)
    assert deliver(db, [kaifa("E-A1-01", "10:30", restored=True)], sessions=1) == []
    assert state(grid) == (False, 2)
    assert query(grid, "SELECT config_value FROM oms_storm_mode_config WHERE config_key = 'storm_mode_active'") == [
        ("false",)]
    switches = []
    while select.select([listener], [], [], 1) != ([], [], []):
        listener.poll()
        while listener.notifies:
            note = json.loads(listener.notifies.pop(0).payload)
            if note["change"].startswith("storm_mode"):
                switches.append((note["change"], note["storm_mode"]))
    listener.close()
    assert switches == [("storm_mode_on", True), ("storm_mode_off", False)]


def test_a_refresh_ends_a_storm_that_no_signal_follows(grid, db):
    # Storm mode switches when a signal arrives; after the last signal of a storm none does.
    # oms_storm_mode_refresh(), scheduled, applies the same rule without one.
    storm = [kaifa(f"E-{f}{d}-{n:02d}", "10:00") for f in "AB" for d in range(1, 5) for n in range(1, 11)]
    assert deliver(db, storm) == []
    assert state(grid) == (True, 1)
    # Within the cool-down, and with the storm's rate still in the window: it stays on.
    assert scalar(grid, "SELECT oms_storm_mode_refresh()") is True
    assert state(grid) == (True, 1)
    time.sleep(8)
    # The view still says what the last signal left: on.
    assert state(grid) == (True, 1)
    assert scalar(grid, "SELECT oms_storm_mode_refresh()") is False
    assert state(grid) == (False, 2)
    assert query(grid, "SELECT config_value FROM oms_storm_mode_config WHERE config_key = 'storm_mode_active'") == [
        ("false",)]
    assert query(grid, "SELECT active FROM oms_storm_mode_log ORDER BY switched_at") == [(True,), (False,)]
    # Again: nothing left to switch, nothing recorded twice.
    assert scalar(grid, "SELECT oms_storm_mode_refresh()") is False
    assert state(grid) == (False, 2)
    # It counts no signal: the rate is the storm's alone.
    assert scalar(grid, "SELECT sum(signals) FROM oms_signal_rate") == len(storm)


def test_the_rate_has_no_hot_row(grid, db):
    # Four sessions in open transactions, each counting a signal on its own feeder: none waits for
    # another (a single counter row would hold the second until the first commits).
    meters = ["E-A1-03", "E-B1-03", "M-FD002-050", "M-FD001-003"]
    conns = [psycopg2.connect(dsn(db), options="-c TimeZone=UTC -c statement_timeout=5000") for _ in meters]
    try:
        for conn, meter in zip(conns, meters):
            with conn.cursor() as cur:
                function, payload = kaifa(meter, "10:00")
                cur.execute(f"SELECT {function}(%s::jsonb)", (json.dumps(payload),))
        shards = {row[0] for row in query(grid, "SELECT shard FROM oms_signal_rate")}
        assert shards == set()  # nothing committed yet: each session's row is its own
        for conn in conns:
            conn.commit()
        assert len({row[0] for row in query(grid, "SELECT shard FROM oms_signal_rate")}) == 4
    finally:
        for conn in conns:
            conn.close()


def test_in_a_storm_windows_widen_and_repeated_word_costs_less(grid, db):
    query(grid, """UPDATE oms_storm_mode_config SET auto_activation_threshold = 1, cooldown_seconds = 3600
                   WHERE config_name = 'default'""")
    # Three meters of DP-A2 off at 10:00, 10:04 and 10:08: not within five minutes of each other,
    # but within the storm's ten.
    assert deliver(db, [kaifa("E-A2-01", "10:00"), kaifa("E-A2-02", "10:04"), kaifa("E-A2-03", "10:08")],
                   sessions=1) == []
    assert state(grid)[0] is True
    assert [row[:4] for row in picture(grid)] == [("DP-A2", "distribution_point", "confirmed", 3)]
    # A call about a meter already out: recorded as a source, without a timeline row.
    timeline = scalar(grid, "SELECT count(*) FROM oms_event_timeline")
    assert deliver(db, [(CORRELATING["callcenter"], {"ticketId": "TC-STORM-1", "timestamp": "2025-10-01T10:09:00Z",
                                                      "customer": {"phone": "1", "meterNumber": "E-A2-01"}})],
                   sessions=1) == []
    assert scalar(grid, "SELECT count(*) FROM oms_event_timeline") == timeline
    assert scalar(grid, "SELECT count(*) FROM oms_event_sources WHERE source_event_id = 'TC-STORM-1'") == 1
    assert [row[5] for row in picture(grid)] == ["0.99"]  # 1 - (0.2)(0.2)(0.2)(0.6), rounded
