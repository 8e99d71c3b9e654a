//! Meter signals into outages (SPEC §5.2-5.4): what a last gasp, a restoration or a customer's
//! report does to the outage records, whichever source sent it. The caller holds the device locks
//! of the signal's meters (`locks`).
//!
//! A power-off signal for a meter
//! - joins the open outage it is already out in as one more source (confidence grows);
//! - else joins the highest open outage that covers it (its service, DP, feeder or substation)
//!   when the signal is not earlier than that outage's start minus the join window;
//! - else opens a service outage for the meter's service (its ONU's building, or itself); then
//!   `rollup` decides whether the DP and the feeder roll up.
//!
//! A power-on signal ends the meter's membership; the last meter back restores the outage at its
//! on time. A power-off signal older than the meter's next recorded power-on (it arrived late) is
//! recorded as a membership that has already ended: the outcome depends on event times, not on
//! arrival order.

use pgrx::datum::{DatumWithOid, TimestampWithTimeZone};
use pgrx::spi::{SpiClient, SpiResult};
use pgrx::Uuid;

use super::locks::{self, located_meters};
use super::rollup::{self, push_new, Touched};
use super::rules::{DeviceKey, Scope};
use super::store;
use super::storm;
use super::stream::{Announcements, Change};
use crate::db::{arg, execute, new_uuid_v7, scada_check};
use crate::error::Source;
use crate::gucs::{self, EngineSettings};

/// What a source event says about its meters' power.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Power {
    Off,
    On,
}

/// One source event's power signal: the meters it reached (audited), when, and who said it.
pub struct Signal<'a> {
    pub power: Power,
    pub source: Source,
    /// The id the source's rows are recorded under (`oms_event_sources.source_event_id`), which
    /// is what `oms_correlate_events` looks the event up by.
    pub source_event_id: &'a str,
    pub source_table: &'a str,
    pub at: TimestampWithTimeZone,
    pub meters: Vec<Uuid>,
}

/// An open outage over a meter.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Cover {
    pub id: Uuid,
    pub start: TimestampWithTimeZone,
    pub scope: Scope,
    /// Signals from other DPs may change it at the same time (`shared_outage!`).
    pub shared: bool,
}

/// Where a meter hangs, and what covers it now.
#[derive(Debug, Clone)]
pub(crate) struct Located {
    pub meter: Uuid,
    pub customer_key: Uuid,
    pub customer: Option<Uuid>,
    pub dp: Option<Uuid>,
    pub feeder: Option<Uuid>,
    pub substation: Option<Uuid>,
    pub onu: Option<i32>,
    /// The open outage the meter is already out in.
    pub out_in: Option<Uuid>,
    /// The highest open outage whose device covers the meter.
    pub cover: Option<Cover>,
    /// The meter's next power-on after the signal, when one is already recorded (a late signal).
    pub back_on_at: Option<TimestampWithTimeZone>,
    /// When the meter went off in the outage it is out in.
    pub out_since: Option<TimestampWithTimeZone>,
    /// For a late signal: the outage whose membership of the meter its next power-on ended, which
    /// is the episode the signal belongs to.
    pub episode_of: Option<Uuid>,
    /// `out_in` and `episode_of` may be changed by signals from other DPs at the same time.
    pub out_in_is_shared: bool,
    pub episode_is_shared: bool,
    /// Its power changed too often in the last hour: its signals open and join nothing.
    pub flapping: bool,
    /// The SCADA restoration of its device, handled already, that ended this (late) power-off
    /// before the meter's own next power-on: `back_on_at` is its time.
    pub restored_by: Option<Uuid>,
    /// `episode_of` holds a span of the meter already (else the meter joins it with one).
    pub episode_holds_meter: bool,
}

impl Located {
    fn service(&self) -> DeviceKey {
        DeviceKey::service_of(&self.meter.to_string(), self.onu)
    }

    /// A late power-off whose episode already ended before the outage now over the meter began
    /// (its power-on is recorded, and is not later than that outage's start): it is an outage of
    /// its own, over already, and not part of the later one.
    fn is_past_episode(&self) -> bool {
        let Some(back_on) = self.back_on_at else {
            return false;
        };
        match self.out_since.or(self.cover.map(|c| c.start)) {
            Some(later_start) => later_start.into_inner() >= back_on.into_inner(),
            None => false,
        }
    }
}

// A source and its meters join an open outage: $1 outage, $2 time, $3 source type, $4 source
// event id, $5 source table, $6 the confirmation threshold, $7 the timeline's description, $8 its
// event type ('outage_detected' for the source that opened the outage, else 'source_joined'); the
// statement names the meters in a CTE `incoming` before it (meter_id, customer_key, customer_id,
// dp_id, feeder_id, substation_id, on_at: the next power-on already recorded, for a late signal).
//
// Counts move by what is new: a customer is affected once and out once. Confidence takes the new
// source's weight (from the rules) by noisy-OR (SPEC §5.2); SCADA makes it certain and confirmed;
// a predicted outage is confirmed when its confidence reaches the threshold. The outage's start is
// its earliest meter's off time, whatever order they arrived in.
//
// `OFFSET 0` in a lookup of an outage's memberships keeps it a lookup by key, row by row. Without
// it a generic plan, which takes every outage for a few meters, may read the whole outage instead:
// 18 ms a join against a feeder outage of 68,000 memberships, where the lookup takes 0.04 ms.
macro_rules! join_outage {
    () => {
        r#"members AS (
    INSERT INTO oms_outage_meters
        (outage_id, meter_id, off_at, on_at, customer_key, customer_id, dp_id, feeder_id, substation_id,
         first_source, first_source_event_id)
    SELECT $1, meter_id, $2, on_at, customer_key, customer_id, dp_id, feeder_id, substation_id, $3, $4
    FROM incoming
    ON CONFLICT DO NOTHING
    RETURNING meter_id, customer_key, customer_id, on_at
), new_keys AS (
    SELECT DISTINCT n.customer_key FROM members n
    WHERE NOT EXISTS (SELECT FROM oms_outage_meters om WHERE om.outage_id = $1 AND om.customer_key = n.customer_key
                      OFFSET 0)
), out_keys AS (
    SELECT DISTINCT n.customer_key FROM members n
    WHERE n.on_at IS NULL
      AND NOT EXISTS (SELECT FROM oms_outage_meters om
                      WHERE om.outage_id = $1 AND om.customer_key = n.customer_key AND om.on_at IS NULL OFFSET 0)
), customers AS (
    INSERT INTO oms_outage_customers (outage_id, customer_id, linked_at, restored_at)
    SELECT $1, customer_id, $2, CASE WHEN bool_and(on_at IS NOT NULL) THEN max(on_at) END
    FROM members WHERE customer_id IS NOT NULL GROUP BY customer_id
    ON CONFLICT (outage_id, customer_id) DO UPDATE
        SET restored_at = CASE WHEN EXCLUDED.restored_at IS NULL THEN NULL
                               ELSE oms_outage_customers.restored_at END
), source AS (
    INSERT INTO oms_event_sources
        (outage_event_id, source_type, source_event_id, source_table, correlation_weight, detected_at,
         event_timestamp, confidence_weight, event_data)
    SELECT $1, $3, $4, $5, w.w, $2, $2, w.w,
           pg_catalog.jsonb_build_object('power', 'off', 'meters', (SELECT count(*) FROM incoming))
    FROM (SELECT oms_source_weight($3) AS w) AS w
    ON CONFLICT (outage_event_id, source_type, source_event_id) DO NOTHING
    RETURNING correlation_weight
), before AS (
    SELECT o.status,
           CASE WHEN $3 = 'scada' AND EXISTS (SELECT FROM source) THEN 1.0
                WHEN (SELECT correlation_weight FROM source) IS NULL THEN o.confidence_score
                ELSE round(1 - (1 - coalesce(o.confidence_score, 0))
                               * (1 - least((SELECT correlation_weight FROM source), 1)), 2) END AS confidence
    FROM oms_outage_events o WHERE o.id = $1
), counted AS (
    UPDATE oms_outage_events o SET
        affected_customers_count = coalesce(o.affected_customers_count, 0) + (SELECT count(*) FROM new_keys),
        customers_out = coalesce(o.customers_out, 0) + (SELECT count(*) FROM out_keys),
        confidence_score = b.confidence,
        status = CASE WHEN o.status = 'detected' AND ($3 = 'scada' OR b.confidence >= $6) THEN 'confirmed'
                      ELSE o.status END,
        first_detected_at = LEAST(o.first_detected_at, $2),
        last_updated_at = pg_catalog.now()
    FROM before b
    WHERE o.id = $1
    RETURNING o.status, b.status AS status_before
), timeline AS (
    INSERT INTO oms_event_timeline
        (outage_event_id, event_type, status, description, source, "timestamp", metadata,
         event_description, event_timestamp, created_by)
    SELECT $1, $8, c.status, $7, $3, $2,
           pg_catalog.jsonb_build_object('meters_joined', (SELECT count(*) FROM members),
                                         'customers_added', (SELECT count(*) FROM new_keys),
                                         'source_added', EXISTS (SELECT FROM source)),
           $7, $2, 'oms_correlation'
    FROM counted c
    -- Once per source event: meters it brings to an outage it is already a source of (an alarm
    -- recorded after its restoration) are the same story. No event type: a quiet join.
    WHERE EXISTS (SELECT FROM source) AND $8 IS NOT NULL
)
SELECT (SELECT count(*) FROM members)::int4, (SELECT count(*) FROM source)::int4,
       (SELECT count(*) FROM members WHERE on_at IS NULL)::int4,
       (SELECT status = 'confirmed' AND status_before IS DISTINCT FROM 'confirmed' FROM counted)
"#
    };
}
pub(crate) use join_outage;

/// The meters' next power-on after $2, when one is already recorded (the meter's newest event is
/// later than $2): a late power-off signal records a membership that has already ended.
macro_rules! next_power_on {
    () => {
        r#"CASE WHEN l.last_event_at > $2 THEN
           (SELECT min(e.event_timestamp) FROM oms_meter_status_events e
            WHERE e.meter_id = l.meter_id AND e.event_type = 'power_on' AND e.event_timestamp > $2) END"#
    };
}
pub(crate) use next_power_on;

/// Whether outage `o` may be changed by signals that do not hold the exclusive locks of its meter
/// (the row alias given, with a `dp_id`) (`locks`): anything wider than the meter's own service
/// and DP.
macro_rules! shared_outage {
    ($meter:literal) => {
        concat!(
            "NOT coalesce(o.scope = 'service' OR (o.scope = 'distribution_point' AND o.dp_id = ",
            $meter,
            ".dp_id), false)"
        )
    };
}

// The meters ($1) where they hang, the open outage each is out in, the highest open outage
// covering each, each one's next power-on after $2, when it went off in the outage it is out in,
// the outage whose membership that power-on ended (the episode a late signal belongs to), whether
// those two outages are shared (`shared_outage!`), whether it is flapping at $2 under a threshold
// of $3 (`oms_meter_is_flapping()`, SPEC §5.7), and whether the covering outage is shared.
//
// A meter's next power-on is its own, or the first SCADA restoration of its device after $2 that
// is handled already, whichever came first: a power-off older than that restoration (a delayed
// head-end message) was over when it came, as the restoration would have ended it in time. Its
// episode is then the meter's membership that power-on ended, else the outage of a device over the
// meter that the restoration ended (the survivor, if it merged since), begun by $2 plus the join
// window ($4 seconds) unless SCADA reported it (a SCADA outage takes in what is under it, whenever
// it began); the restoration's id is returned, to turn the meter on.
const LOCATE: &str = concat!(
    "WITH target AS (SELECT DISTINCT unnest($1::uuid[]) AS id), located AS (",
    located_meters!(),
    r#"), restored_after AS (
    -- Per device, not per meter: a signal's meters share one or two. Two probes of the partial
    -- index scada_events_restorations, the feeder's and the whole substation's, each one descent.
    SELECT d.feeder_id, d.substation_id, r.id AS restoration, r.event_timestamp AS restored_at
    FROM (SELECT DISTINCT feeder_id, substation_id FROM located) AS d
    JOIN network_substations s ON s.id = d.substation_id
    LEFT JOIN network_feeders f ON f.id = d.feeder_id
    CROSS JOIN LATERAL (
        SELECT x.id, x.event_timestamp FROM (
            (SELECT e.id, e.event_timestamp FROM scada_events e
             WHERE e.substation_id = s.substation_id AND e.feeder_id = f.feeder_id AND e.event_timestamp > $2
               AND (e.check_result ->> 'classification') = 'restoration'
               AND (e.check_result ->> 'meters_checked') = 'true'
             ORDER BY e.event_timestamp LIMIT 1)
            UNION ALL
            (SELECT e.id, e.event_timestamp FROM scada_events e
             WHERE e.substation_id = s.substation_id AND e.feeder_id IS NULL AND e.event_timestamp > $2
               AND (e.check_result ->> 'classification') = 'restoration'
               AND (e.check_result ->> 'meters_checked') = 'true'
             ORDER BY e.event_timestamp LIMIT 1)) AS x
        ORDER BY x.event_timestamp LIMIT 1) AS r
)
SELECT l.meter_id, l.customer_key, l.customer_id, l.dp_id, l.feeder_id, l.substation_id, l.onu_id,
       member.outage_id, cover.id, cover.first_detected_at, cover.scope::text, back.at, member.off_at,
       episode.outage_id, member.shared, episode.shared,
       oms_meter_is_flapping(l.meter_id, $2, $3),
       cover.shared, CASE WHEN back.by_restoration THEN ra.restoration END, episode.holds_meter
FROM located l
CROSS JOIN LATERAL (SELECT "#,
    next_power_on!(),
    r#" AS at) AS own
LEFT JOIN restored_after ra ON ra.feeder_id IS NOT DISTINCT FROM l.feeder_id
                           AND ra.substation_id IS NOT DISTINCT FROM l.substation_id
CROSS JOIN LATERAL (
    -- least() passes over a NULL; on a tie the meter's own power-on (the restoration's audit) wins.
    SELECT least(own.at, ra.restored_at) AS at,
           coalesce(ra.restored_at < own.at, ra.restored_at IS NOT NULL) AS by_restoration
) AS back
LEFT JOIN LATERAL (
    SELECT x.outage_id, x.shared, x.holds_meter FROM (
        SELECT om.outage_id, "#,
    shared_outage!("l"),
    r#" AS shared, true AS holds_meter, 1 AS preference
        FROM oms_outage_meters om JOIN oms_outage_events o ON o.id = om.outage_id
        WHERE om.meter_id = l.meter_id AND om.on_at = back.at AND o.status <> 'merged'
        UNION ALL
        (SELECT o.id, "#,
    shared_outage!("l"),
    r#" AS shared, false, 2
         FROM scada_events e
         CROSS JOIN LATERAL pg_catalog.jsonb_array_elements_text(e.check_result -> 'restored_outages') AS r(id)
         JOIN oms_outage_events told ON told.id = r.id::uuid
         JOIN oms_outage_events o ON o.id = coalesce(told.merged_into, told.id)
         WHERE back.by_restoration AND e.id = ra.restoration
           AND o.status = 'restored' AND o.actual_restoration_time = e.event_timestamp
           AND o.device_key IN ('substation:' || l.substation_id, 'feeder:' || l.feeder_id, 'dp:' || l.dp_id,
                                CASE WHEN l.onu_id IS NOT NULL THEN 'service:onu:' || l.onu_id
                                     ELSE 'service:meter:' || l.meter_id END)
           AND (o.first_detected_at <= $2 + pg_catalog.make_interval(secs => $4)
                OR EXISTS (SELECT FROM oms_event_sources es
                           WHERE es.outage_event_id = o.id AND es.source_type = 'scada'
                             AND es.correlation_weight IS NOT NULL))
         ORDER BY CASE o.scope WHEN 'substation' THEN 1 WHEN 'feeder' THEN 2 WHEN 'distribution_point' THEN 3 ELSE 4 END
         LIMIT 1)
    ) AS x
    ORDER BY x.preference
    LIMIT 1
) AS episode ON back.at IS NOT NULL
LEFT JOIN LATERAL (
    SELECT om.outage_id, om.off_at, "#,
    shared_outage!("l"),
    r#" AS shared
    FROM oms_outage_meters om JOIN oms_outage_events o ON o.id = om.outage_id
    WHERE om.meter_id = l.meter_id AND om.on_at IS NULL
) AS member ON true
LEFT JOIN LATERAL (
    SELECT o.id, o.first_detected_at, o.scope, "#,
    shared_outage!("l"),
    r#" AS shared
    FROM oms_outage_events o
    WHERE o.status IN ('detected', 'confirmed', 'in_progress')
      AND o.device_key IN ('substation:' || l.substation_id, 'feeder:' || l.feeder_id, 'dp:' || l.dp_id,
                           CASE WHEN l.onu_id IS NOT NULL THEN 'service:onu:' || l.onu_id
                                ELSE 'service:meter:' || l.meter_id END)
    ORDER BY CASE o.scope WHEN 'substation' THEN 1 WHEN 'feeder' THEN 2 WHEN 'distribution_point' THEN 3 ELSE 4 END
    LIMIT 1
) AS cover ON true
"#
);

// A power-off at $3 for meters ($2) of outage $1 whose membership there starts later: the
// membership starts at $3 instead. Only the meter's first membership after $3, and only when no
// membership of the meter holds $3 already (it would overlap) or starts exactly then. Found
// meter by meter and updated by row address: a generic plan would read the whole outage (600 ms
// against one of 68,000 memberships; see `join_outage!`).
const EARLIER_OFF: &str = r#"
UPDATE oms_outage_meters om SET off_at = $3
FROM (SELECT first.ctid FROM unnest($2::uuid[]) AS m(meter_id)
      CROSS JOIN LATERAL (SELECT y.ctid, y.outage_id FROM oms_outage_meters y
                          WHERE y.meter_id = m.meter_id AND y.off_at > $3
                          ORDER BY y.off_at, y.outage_id = $1 DESC LIMIT 1) AS first
      WHERE first.outage_id = $1
        AND NOT EXISTS (SELECT FROM oms_outage_meters x
                        WHERE x.meter_id = m.meter_id AND x.off_at <= $3 AND coalesce(x.on_at, 'infinity') > $3)
     ) AS moved
WHERE om.ctid = moved.ctid
"#;

/// Where the meters hang and what covers them, as of a signal at `at`.
pub(crate) fn locate(
    client: &mut SpiClient<'_>,
    meters: &[Uuid],
    at: TimestampWithTimeZone,
    settings: &EngineSettings,
) -> SpiResult<Vec<Located>> {
    let mut located = Vec::with_capacity(meters.len());
    for row in execute(
        client,
        LOCATE,
        &[
            arg(meters.to_vec()),
            arg(at),
            arg(settings.flap_threshold),
            arg(settings.join_window_seconds),
        ],
    )? {
        let cover = match (
            row.get::<Uuid>(9)?,
            row.get::<TimestampWithTimeZone>(10)?,
            row.get::<String>(11)?.as_deref().and_then(Scope::parse),
        ) {
            (Some(id), Some(start), Some(scope)) => Some(Cover {
                id,
                start,
                scope,
                shared: row.get::<bool>(18)?.unwrap_or(true),
            }),
            _ => None,
        };
        located.push(Located {
            meter: row.get::<Uuid>(1)?.expect("a meter's id"),
            customer_key: row.get::<Uuid>(2)?.expect("a customer or the meter"),
            customer: row.get::<Uuid>(3)?,
            dp: row.get::<Uuid>(4)?,
            feeder: row.get::<Uuid>(5)?,
            substation: row.get::<Uuid>(6)?,
            onu: row.get::<i32>(7)?,
            out_in: row.get::<Uuid>(8)?,
            cover,
            back_on_at: row.get::<TimestampWithTimeZone>(12)?,
            out_since: row.get::<TimestampWithTimeZone>(13)?,
            episode_of: row.get::<Uuid>(14)?,
            out_in_is_shared: row.get::<bool>(15)?.unwrap_or(true),
            episode_is_shared: row.get::<bool>(16)?.unwrap_or(true),
            flapping: row.get::<bool>(17)?.unwrap_or(false),
            restored_by: row.get::<Uuid>(19)?,
            episode_holds_meter: row.get::<bool>(20)?.unwrap_or(true),
        });
    }
    Ok(located)
}

// `join_outage!` for meters located by `locate` ($9-$15 their columns).
const JOIN: &str = concat!(
    r#"
WITH incoming AS (
    SELECT * FROM unnest($9::uuid[], $10::uuid[], $11::uuid[], $12::uuid[], $13::uuid[], $14::uuid[],
                         $15::timestamptz[])
        AS i(meter_id, customer_key, customer_id, dp_id, feeder_id, substation_id, on_at)
), "#,
    join_outage!()
);

/// What a join changed.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Joined {
    pub meters_added: i32,
    pub source_added: bool,
}

/// A source event and the meters it brings into an open outage.
pub(crate) struct Joining<'a> {
    pub outage: Uuid,
    pub at: TimestampWithTimeZone,
    pub source: &'a str,
    pub source_event_id: &'a str,
    pub source_table: &'a str,
    pub description: String,
    /// This source opened the outage.
    pub opened: bool,
    /// Record the source and its meters only: no timeline row, no announcement.
    pub quiet: bool,
}

/// Joins the source and the meters to the open outage; restores it when every meter is back
/// (the meters were late signals whose power-on is recorded).
pub(crate) fn join(
    client: &mut SpiClient<'_>,
    joining: &Joining<'_>,
    meters: &[&Located],
    settings: &EngineSettings,
    announcements: &mut Announcements,
) -> SpiResult<Joined> {
    let args: Vec<DatumWithOid<'_>> = vec![
        arg(joining.outage),
        arg(joining.at),
        arg(joining.source),
        arg(joining.source_event_id),
        arg(joining.source_table),
        arg(settings.confirm_confidence),
        arg(joining.description.as_str()),
        arg(match (joining.opened, joining.quiet) {
            (true, _) => Some("outage_detected"),
            (false, false) => Some("source_joined"),
            (false, true) => None,
        }),
        arg(meters.iter().map(|m| m.meter).collect::<Vec<_>>()),
        arg(meters.iter().map(|m| m.customer_key).collect::<Vec<_>>()),
        arg(meters.iter().map(|m| m.customer).collect::<Vec<_>>()),
        arg(meters.iter().map(|m| m.dp).collect::<Vec<_>>()),
        arg(meters.iter().map(|m| m.feeder).collect::<Vec<_>>()),
        arg(meters.iter().map(|m| m.substation).collect::<Vec<_>>()),
        arg(meters.iter().map(|m| m.back_on_at).collect::<Vec<_>>()),
    ];
    let row = execute(client, JOIN, &args)?.first();
    let joined = Joined {
        meters_added: row.get::<i32>(1)?.unwrap_or(0),
        source_added: row.get::<i32>(2)?.unwrap_or(0) > 0,
    };
    let meters_out = row.get::<i32>(3)?.unwrap_or(0);
    if !joining.opened && !joining.quiet && (joined.meters_added > 0 || joined.source_added) {
        announcements.push(joining.outage, Change::Joined);
    }
    if row.get::<bool>(4)? == Some(true) {
        announcements.push(joining.outage, Change::Confirmed);
    }
    if joined.meters_added > 0 && meters_out == 0 {
        restore_if_all_back(client, joining.outage, joining.source, announcements)?;
    }
    Ok(joined)
}

// A predicted outage for a device, or the open one it already has ($1 candidate id, $2 start,
// $3 the event id's tag, $4 device key, $5-$7 DP, feeder, substation, $8 description, $9 nested
// window in seconds, $10 the meters: one of them in an outage restored less than the window ago
// makes this a nested outage of that one (SPEC §5.4), $11 scope). A service outage's first
// timeline row is its opening source's join; a roll-up's is written here.
const OPEN_PREDICTED: &str = r#"
WITH opened AS (
    INSERT INTO oms_outage_events
        (id, event_id, event_type, status, severity, confidence_score, affected_customers_count, customers_out,
         description, dp_id, feeder_id, substation_id, first_detected_at, scope, device_key, parent_outage_id)
    VALUES ($1,
            'OMS_' || upper($3) || '_' || to_char($2 AT TIME ZONE 'UTC', 'YYYYMMDD"T"HH24MISS')
                || '_' || substr(replace($1::text, '-', ''), 17, 16),
            'outage', 'detected', 'medium', 0, 0, 0, $8, $5, $6, $7, $2, $11, $4,
            (SELECT o.id FROM oms_outage_meters om JOIN oms_outage_events o ON o.id = om.outage_id
              WHERE om.meter_id = ANY ($10) AND o.status = 'restored'
                AND o.actual_restoration_time <= $2
                AND o.actual_restoration_time > $2 - pg_catalog.make_interval(secs => $9)
              ORDER BY o.actual_restoration_time DESC LIMIT 1))
    ON CONFLICT (device_key) WHERE status IN ('detected', 'confirmed', 'in_progress')
    DO UPDATE SET last_updated_at = pg_catalog.now()
    RETURNING id, id = $1 AS created, status, parent_outage_id
), timeline AS (
    INSERT INTO oms_event_timeline
        (outage_event_id, event_type, status, description, source, "timestamp", metadata,
         event_description, event_timestamp, created_by)
    SELECT id, 'outage_detected', status, $8, 'oms_correlation', $2,
           pg_catalog.jsonb_build_object('scope', $11, 'nested_in', parent_outage_id),
           $8, $2, 'oms_correlation'
    FROM opened WHERE created AND $11 <> 'service'
)
SELECT id, created FROM opened
"#;

/// A predicted outage to open (or find open) on a device.
pub(crate) struct Predicted<'a> {
    pub device: &'a DeviceKey,
    pub start: TimestampWithTimeZone,
    pub tag: &'a str,
    pub dp: Option<Uuid>,
    pub feeder: Option<Uuid>,
    pub substation: Option<Uuid>,
    pub description: String,
    /// Meters whose recent outage would make this one nested (services only).
    pub meters: Vec<Uuid>,
}

/// Opens the predicted outage, or finds the device's open one: `(id, created)`.
pub(crate) fn open_predicted(
    client: &mut SpiClient<'_>,
    predicted: &Predicted<'_>,
    settings: &EngineSettings,
    announcements: &mut Announcements,
) -> SpiResult<(Uuid, bool)> {
    let row = execute(
        client,
        OPEN_PREDICTED,
        &[
            arg(new_uuid_v7()),
            arg(predicted.start),
            arg(predicted.tag),
            arg(predicted.device.to_string()),
            arg(predicted.dp),
            arg(predicted.feeder),
            arg(predicted.substation),
            arg(predicted.description.as_str()),
            arg(settings.nested_window_seconds),
            arg(predicted.meters.clone()),
            arg(predicted.device.scope().as_str()),
        ],
    )?
    .first();
    let (id, created) = row.get_two::<Uuid, bool>()?;
    let id = id.expect("INSERT ... RETURNING id");
    let created = created == Some(true);
    if created {
        announcements.push(id, Change::Opened);
    }
    Ok((id, created))
}

// An outage with meters, none of them still out, is over at its last meter's on time.
const RESTORE_IF_ALL_BACK: &str = r#"
WITH done AS (
    -- Both tests by index (oms_outage_meters_open_idx): this runs after every power-on.
    SELECT (SELECT max(om.on_at) FROM oms_outage_meters om WHERE om.outage_id = $1) AS at
    WHERE EXISTS (SELECT FROM oms_outage_meters om WHERE om.outage_id = $1)
      AND NOT EXISTS (SELECT FROM oms_outage_meters om WHERE om.outage_id = $1 AND om.on_at IS NULL)
), restored AS (
    UPDATE oms_outage_events o SET status = 'restored', actual_restoration_time = d.at, customers_out = 0,
                                   last_updated_at = pg_catalog.now()
    FROM done d
    WHERE o.id = $1 AND o.status IN ('detected', 'confirmed', 'in_progress')
    RETURNING o.id, d.at, o.first_detected_at
), timeline AS (
    INSERT INTO oms_event_timeline
        (outage_event_id, event_type, status, description, source, "timestamp", metadata,
         event_description, event_timestamp, created_by)
    SELECT id, 'outage_restored', 'restored', 'Every meter is back on', $2, at, NULL,
           'Every meter is back on', at, 'oms_correlation'
    FROM restored
)
SELECT count(*)::int4, coalesce(bool_or(at - first_detected_at <= pg_catalog.make_interval(secs => $3)), false)
FROM restored
"#;

pub(crate) fn restore_if_all_back(
    client: &mut SpiClient<'_>,
    outage: Uuid,
    source: &str,
    announcements: &mut Announcements,
) -> SpiResult<bool> {
    let window = gucs::engine().momentary_window_seconds;
    let row = execute(
        client,
        RESTORE_IF_ALL_BACK,
        &[arg(outage), arg(source), arg(window)],
    )?
    .first();
    let (restored, momentary) = row.get_two::<i32, bool>()?;
    let restored = restored.unwrap_or(0) > 0;
    if restored {
        announcements.push(outage, Change::Restored);
    }
    if momentary == Some(true) {
        announcements.push(outage, Change::Momentary);
    }
    Ok(restored)
}

/// Correlates one source event's signal into the outage records, and announces what changed.
pub fn correlate(client: &mut SpiClient<'_>, signal: &Signal<'_>) -> SpiResult<()> {
    let power_offs = match signal.power {
        Power::Off => i32::try_from(signal.meters.len()).unwrap_or(i32::MAX),
        Power::On => 0,
    };
    correlate_counting(client, signal, power_offs)
}

/// `power_offs`: what the signal adds to the storm rate (none when it is correlated again).
fn correlate_counting(
    client: &mut SpiClient<'_>,
    signal: &Signal<'_>,
    power_offs: i32,
) -> SpiResult<()> {
    if signal.meters.is_empty() {
        return Ok(());
    }
    let storm = storm::observe(client, power_offs)?;
    let mut settings = gucs::engine();
    if storm.active {
        settings.widen(storm.window_multiplier);
    }
    let mut announcements = Announcements::default();
    match signal.power {
        Power::Off => power_off(client, signal, &settings, storm.active, &mut announcements)?,
        Power::On => power_on(client, signal, &mut announcements)?,
    }
    announcements.send(client, signal.source.as_str(), signal.source_event_id)
}

/// What a power-off signal will do with its located meters.
#[derive(Default)]
struct Plan<'l> {
    /// Outages to join, with the meters they gain.
    joins: Vec<(Uuid, Vec<&'l Located>)>,
    /// Services to open.
    opens: Vec<(DeviceKey, Vec<&'l Located>)>,
    /// Late signals' episodes, over before they arrived.
    episodes: Vec<(DeviceKey, Vec<&'l Located>)>,
    /// Meters this signal says went off earlier than their membership records: whatever the
    /// arrival order, a meter's interruption starts at its earliest word.
    earlier: Vec<(Uuid, Vec<Uuid>)>,
    /// Outages joined that other DPs' signals may change at the same time: locked first.
    shared: Vec<Uuid>,
    /// Of those, the ones the plan needs still open.
    must_be_open: Vec<Uuid>,
    /// Meters given a span that a restoration of their device handled before this late signal
    /// ended (`Located::restored_by`): back on in the registry as of it.
    turned_on: Vec<&'l Located>,
}

impl<'l> Plan<'l> {
    /// `closed`: outages found closed when locked, which the plan must not join: their meters open
    /// outages of their own instead.
    fn of(
        located: &'l [Located],
        signal: &Signal<'_>,
        settings: &EngineSettings,
        closed: &[Uuid],
    ) -> Self {
        let at_plus_window =
            signal.at.into_inner() + i64::from(settings.join_window_seconds) * 1_000_000;
        let mut plan = Plan::default();
        for meter in located {
            if meter.flapping {
                continue;
            }
            if let Some(outage) = meter.episode_of {
                if !meter.episode_holds_meter {
                    // An outage a restoration ended that this late power-off's meter was not in:
                    // it joins with its span, over at the restoration.
                    group(&mut plan.joins, outage).push(meter);
                    plan.turned_on.push(meter);
                } else {
                    // A late word about an episode already recorded: one more source of that
                    // outage.
                    group(&mut plan.joins, outage);
                    group(&mut plan.earlier, outage).push(meter.meter);
                }
                if meter.episode_is_shared {
                    push_new(&mut plan.shared, outage);
                }
                continue;
            }
            if meter.is_past_episode() {
                group(&mut plan.episodes, meter.service()).push(meter);
                // The episode nests the outage the meter is out in now, which is changed too.
                if let (Some(outage), true) = (meter.out_in, meter.out_in_is_shared) {
                    push_new(&mut plan.shared, outage);
                }
                continue;
            }
            if let Some(outage) = meter.out_in.filter(|o| !closed.contains(o)) {
                // Already out: the event is one more source of the outage it is out in.
                group(&mut plan.joins, outage);
                if meter
                    .out_since
                    .is_some_and(|since| since.into_inner() > signal.at.into_inner())
                {
                    group(&mut plan.earlier, outage).push(meter.meter);
                }
                if meter.out_in_is_shared {
                    push_new(&mut plan.shared, outage);
                    push_new(&mut plan.must_be_open, outage);
                }
                continue;
            }
            match meter.cover {
                // Not earlier than the outage's start minus the join window.
                Some(cover)
                    if at_plus_window >= cover.start.into_inner()
                        && !closed.contains(&cover.id) =>
                {
                    group(&mut plan.joins, cover.id).push(meter);
                    if cover.shared {
                        push_new(&mut plan.shared, cover.id);
                        push_new(&mut plan.must_be_open, cover.id);
                    }
                }
                _ => {
                    group(&mut plan.opens, meter.service()).push(meter);
                    if meter.restored_by.is_some() {
                        plan.turned_on.push(meter);
                    }
                }
            }
        }
        plan
    }
}

/// How often a power-off is located again because an outage it was to join closed while it
/// waited for the outage's lock.
const LOCATE_ATTEMPTS: usize = 3;

fn power_off(
    client: &mut SpiClient<'_>,
    signal: &Signal<'_>,
    settings: &EngineSettings,
    in_storm: bool,
    announcements: &mut Announcements,
) -> SpiResult<()> {
    let mut located = locate(client, &signal.meters, signal.at, settings)?;
    let mut attempt = 1;
    loop {
        let plan = Plan::of(&located, signal, settings, &[]);
        let open = locks::lock_outages(client, &plan.shared)?;
        let closed: Vec<Uuid> = plan
            .must_be_open
            .iter()
            .filter(|id| !open.contains(id))
            .copied()
            .collect();
        let plan = if closed.is_empty() {
            Some(plan)
        } else if attempt == LOCATE_ATTEMPTS {
            // Outages keep closing under it: what is still closed is not joined.
            Some(Plan::of(&located, signal, settings, &closed))
        } else {
            None
        };
        if let Some(plan) = plan {
            let turned_on = plan.turned_on.clone();
            carry_out(
                client,
                signal,
                settings,
                in_storm,
                &located,
                plan,
                announcements,
            )?;
            return turn_on_as_restored(client, &turned_on);
        }
        attempt += 1;
        located = locate(client, &signal.meters, signal.at, settings)?;
    }
}

/// Meters the plan gave a span that a restoration of their device, handled before their power-off
/// arrived, ended (`Plan::turned_on`) are back on in the registry as of that restoration, as they
/// would be had the power-off come in time.
fn turn_on_as_restored(client: &mut SpiClient<'_>, turned_on: &[&Located]) -> SpiResult<()> {
    let mut by_restoration: Vec<(Uuid, Vec<&Located>)> = Vec::new();
    for meter in turned_on {
        if let Some(restoration) = meter.restored_by {
            group(&mut by_restoration, restoration).push(meter);
        }
    }
    for (restoration, meters) in by_restoration {
        let at = meters[0]
            .back_on_at
            .expect("a meter a restoration ended is back at its time");
        let ids: Vec<Uuid> = meters.iter().map(|m| m.meter).collect();
        scada_check::restore_meters_as_of(client, &ids, restoration, at, gucs::confidence_scada())?;
        // An outage of their own it ended counts among its outages, for an alarm arriving later.
        store::note_restored_by(client, restoration, &[], &ids)?;
    }
    Ok(())
}

fn carry_out(
    client: &mut SpiClient<'_>,
    signal: &Signal<'_>,
    settings: &EngineSettings,
    in_storm: bool,
    located: &[Located],
    plan: Plan<'_>,
    announcements: &mut Announcements,
) -> SpiResult<()> {
    let Plan {
        joins,
        opens,
        episodes,
        earlier,
        ..
    } = plan;
    for (outage, meters) in &earlier {
        execute(
            client,
            EARLIER_OFF,
            &[arg(*outage), arg(meters.clone()), arg(signal.at)],
        )?;
    }
    let mut touched = Touched::default();
    let description = |count: usize| {
        format!(
            "{} {}: {count} meter(s) off",
            signal.source.label(),
            signal.source_event_id
        )
    };
    for (outage, meters) in &joins {
        let joining = Joining {
            outage: *outage,
            at: signal.at,
            source: signal.source.as_str(),
            source_event_id: signal.source_event_id,
            source_table: signal.source_table,
            description: description(meters.len()),
            opened: false,
            // In a storm, word about meters already out is recorded as a source only.
            quiet: in_storm && meters.is_empty(),
        };
        let joined = join(client, &joining, meters, settings, announcements)?;
        if joined.meters_added > 0 {
            touched.note(meters, located_scope(located, *outage));
        }
    }
    for (service, meters) in &opens {
        let first = meters[0];
        let predicted = Predicted {
            device: service,
            start: signal.at,
            tag: signal.source.as_str(),
            dp: first.dp,
            feeder: first.feeder,
            substation: first.substation,
            description: format!("Predicted from {}", description(meters.len())),
            meters: meters.iter().map(|m| m.meter).collect(),
        };
        let (outage, created) = open_predicted(client, &predicted, settings, announcements)?;
        let joining = Joining {
            outage,
            at: signal.at,
            source: signal.source.as_str(),
            source_event_id: signal.source_event_id,
            source_table: signal.source_table,
            description: if created {
                predicted.description.clone()
            } else {
                description(meters.len())
            },
            opened: created,
            quiet: false,
        };
        join(client, &joining, meters, settings, announcements)?;
        touched.note(meters, Some(Scope::Service));
    }
    for (service, meters) in &episodes {
        record_past_episode(client, signal, settings, service, meters, announcements)?;
        touched.note(meters, Some(Scope::Service));
    }
    rollup::after_power_off(client, settings, &touched, signal, announcements)
}

// A service outage that was already over when its signal arrived ($1 id, $2 start, $3 source,
// $4 device key, $5-$7 DP, feeder, substation, $8 description, $9 its end: the meters' power-on).
// The outage the meters are out in now, if it began within the nested window ($10) after that
// end, is nested in this one ($11 those outages).
const RECORD_PAST_EPISODE: &str = r#"
WITH episode AS (
    INSERT INTO oms_outage_events
        (id, event_id, event_type, status, severity, confidence_score, affected_customers_count, customers_out,
         description, dp_id, feeder_id, substation_id, first_detected_at, scope, device_key,
         actual_restoration_time)
    VALUES ($1,
            'OMS_' || upper($3) || '_' || to_char($2 AT TIME ZONE 'UTC', 'YYYYMMDD"T"HH24MISS')
                || '_' || substr(replace($1::text, '-', ''), 17, 16),
            'outage', 'restored', 'medium', 0, 0, 0, $8, $5, $6, $7, $2, 'service', $4, $9)
    RETURNING id
), nested AS (
    UPDATE oms_outage_events o SET parent_outage_id = $1, last_updated_at = pg_catalog.now()
    WHERE o.id = ANY ($11) AND o.parent_outage_id IS NULL
      AND o.first_detected_at >= $9 AND o.first_detected_at <= $9 + pg_catalog.make_interval(secs => $10)
)
INSERT INTO oms_event_timeline
    (outage_event_id, event_type, status, description, source, "timestamp", metadata,
     event_description, event_timestamp, created_by)
SELECT id, 'outage_restored', 'restored', 'Every meter was back on before this signal arrived', $3, $9, NULL,
       'Every meter was back on before this signal arrived', $9, 'oms_correlation'
FROM episode
"#;

/// Records a late power-off's episode as the outage it was, already over.
fn record_past_episode(
    client: &mut SpiClient<'_>,
    signal: &Signal<'_>,
    settings: &EngineSettings,
    service: &DeviceKey,
    meters: &[&Located],
    announcements: &mut Announcements,
) -> SpiResult<()> {
    let first = meters[0];
    let ended = meters
        .iter()
        .filter_map(|m| m.back_on_at)
        .max_by_key(|t| t.into_inner())
        .expect("a past episode has its power-on");
    let id = new_uuid_v7();
    let description = format!(
        "{} {}: {} meter(s) off, back on before the signal arrived",
        signal.source.label(),
        signal.source_event_id,
        meters.len()
    );
    let later: Vec<Uuid> = meters.iter().filter_map(|m| m.out_in).collect();
    execute(
        client,
        RECORD_PAST_EPISODE,
        &[
            arg(id),
            arg(signal.at),
            arg(signal.source.as_str()),
            arg(service.to_string()),
            arg(first.dp),
            arg(first.feeder),
            arg(first.substation),
            arg(description.as_str()),
            arg(ended),
            arg(settings.nested_window_seconds),
            arg(later),
        ],
    )?;
    let joining = Joining {
        outage: id,
        at: signal.at,
        source: signal.source.as_str(),
        source_event_id: signal.source_event_id,
        source_table: signal.source_table,
        description,
        opened: true,
        quiet: false,
    };
    join(client, &joining, meters, settings, announcements)?;
    announcements.push(id, Change::RecordedRestored);
    Ok(())
}

/// The scope of the outage a meter was placed in, as located.
fn located_scope(located: &[Located], outage: Uuid) -> Option<Scope> {
    located
        .iter()
        .filter_map(|m| m.cover)
        .find(|c| c.id == outage)
        .map(|c| c.scope)
}

fn group<K: PartialEq, V>(groups: &mut Vec<(K, Vec<V>)>, key: K) -> &mut Vec<V> {
    let at = match groups.iter().position(|(k, _)| *k == key) {
        Some(at) => at,
        None => {
            groups.push((key, Vec::new()));
            groups.len() - 1
        }
    };
    &mut groups[at].1
}

// A power-on signal ends its meters' memberships ($1 meters, $2 time). A power-on older than the
// meter's off time is older news and ends nothing.
// Returns the outages, the meters, and whether each outage is shared (`shared_outage!`).
const CLOSE_MEMBERSHIPS: &str = concat!(
    r#"
UPDATE oms_outage_meters om SET on_at = $2
FROM oms_outage_events o
WHERE om.meter_id = ANY ($1) AND om.on_at IS NULL AND om.off_at <= $2 AND o.id = om.outage_id
RETURNING om.outage_id, om.meter_id, "#,
    shared_outage!("om"),
    "\n"
);

// What a power-on did to one outage ($1; $2 time, $3 source, $4 source event id, $5 its meters
// back, $6 source table): its customers fully back are out no more, the source is noted (without
// a weight: it is no evidence of the outage), and the timeline has the step with its counts
// (SPEC §5.4, step restoration).
const STEP_RESTORED: &str = r#"
WITH back AS (
    -- Meter by meter (OFFSET 0, see `join_outage!`): the outage may hold 100,000 meters.
    SELECT DISTINCT om.customer_key, om.customer_id
    FROM unnest($5::uuid[]) AS m(meter_id)
    CROSS JOIN LATERAL (SELECT om.customer_key, om.customer_id FROM oms_outage_meters om
                        WHERE om.outage_id = $1 AND om.meter_id = m.meter_id AND om.on_at = $2 OFFSET 0) AS om
    WHERE NOT EXISTS (SELECT FROM oms_outage_meters other
                      WHERE other.outage_id = $1 AND other.customer_key = om.customer_key AND other.on_at IS NULL
                      OFFSET 0)
), customers AS (
    UPDATE oms_outage_customers c SET restored_at = $2
    FROM back b WHERE c.outage_id = $1 AND c.customer_id = b.customer_id AND c.restored_at IS NULL
), counted AS (
    UPDATE oms_outage_events o
    SET customers_out = greatest(coalesce(o.customers_out, 0) - (SELECT count(*) FROM back), 0),
        last_updated_at = pg_catalog.now()
    WHERE o.id = $1
    RETURNING o.status, o.customers_out
), source AS (
    INSERT INTO oms_event_sources
        (outage_event_id, source_type, source_event_id, source_table, correlation_weight, detected_at,
         event_timestamp, confidence_weight, event_data)
    VALUES ($1, $3, $4, $6, NULL, $2, $2, NULL, '{"power": "on"}')
    ON CONFLICT (outage_event_id, source_type, source_event_id) DO NOTHING
)
INSERT INTO oms_event_timeline
    (outage_event_id, event_type, status, description, source, "timestamp", metadata,
     event_description, event_timestamp, created_by)
SELECT $1, 'partially_restored', c.status, d.text, $3, $2,
       pg_catalog.jsonb_build_object('meters_back', cardinality($5), 'customers_back', (SELECT count(*) FROM back),
                                     'customers_out', c.customers_out),
       d.text, $2, 'oms_correlation'
FROM counted c,
     LATERAL (SELECT cardinality($5) || ' meter(s) back on; ' || c.customers_out || ' customer(s) still out'
             AS text) AS d
"#;

fn power_on(
    client: &mut SpiClient<'_>,
    signal: &Signal<'_>,
    announcements: &mut Announcements,
) -> SpiResult<()> {
    let mut by_outage: Vec<(Uuid, Vec<Uuid>)> = Vec::new();
    let mut shared = Vec::new();
    for row in execute(
        client,
        CLOSE_MEMBERSHIPS,
        &[arg(signal.meters.clone()), arg(signal.at)],
    )? {
        let outage = row.get::<Uuid>(1)?.expect("outage_id");
        group(&mut by_outage, outage).push(row.get::<Uuid>(2)?.expect("meter_id"));
        if row.get::<bool>(3)?.unwrap_or(true) {
            push_new(&mut shared, outage);
        }
    }
    // Signals from other DPs may be restoring the same outage: whichever takes its lock second
    // sees the other's meters back, and restores it when it was the last.
    locks::lock_outages(client, &shared)?;
    let source = signal.source.as_str();
    for (outage, meters) in by_outage {
        execute(
            client,
            STEP_RESTORED,
            &[
                arg(outage),
                arg(signal.at),
                arg(source),
                arg(signal.source_event_id),
                arg(meters),
                arg(signal.source_table),
            ],
        )?;
        if !restore_if_all_back(client, outage, source, announcements)? {
            announcements.push(outage, Change::PartiallyRestored);
        }
    }
    Ok(())
}

// A restoration at $2 of outages $1 ended the spans that began before it. A span that began after
// it (a power-off that arrived before a late restoration), still open or already over, is no part
// of those outages: it leaves them, with its customer when that was the customer's only span
// there (else the customer is back when its last earlier span ended). Returns the spans by the
// source event that brought each, to be correlated again as the power-offs they were. Lookups by
// key, row by row (see `join_outage!`).
const DETACH_LATER_SPANS: &str = r#"
WITH later AS (
    DELETE FROM oms_outage_meters om
    WHERE om.outage_id = ANY ($1) AND om.off_at > $2
    RETURNING om.outage_id, om.meter_id, om.customer_key, om.customer_id, om.off_at, om.first_source,
              om.first_source_event_id
), gone AS (
    -- This statement still sees the rows it deleted: a customer stays when an earlier span remains.
    SELECT DISTINCT l.outage_id, l.customer_key, l.customer_id FROM later l
    WHERE NOT EXISTS (SELECT FROM oms_outage_meters om
                      WHERE om.outage_id = l.outage_id AND om.customer_key = l.customer_key AND om.off_at <= $2
                      OFFSET 0)
), customers AS (
    DELETE FROM oms_outage_customers c USING gone g
    WHERE c.outage_id = g.outage_id AND c.customer_id = g.customer_id
), customers_back AS (
    -- A customer who stays was back when its last earlier span ended (a later span had reopened it).
    UPDATE oms_outage_customers c
    SET restored_at = (SELECT max(om.on_at) FROM oms_outage_meters om
                       WHERE om.outage_id = c.outage_id AND om.customer_key = c.customer_id AND om.off_at <= $2
                       OFFSET 0)
    FROM (SELECT DISTINCT l.outage_id, l.customer_id FROM later l WHERE l.customer_id IS NOT NULL) AS k
    WHERE c.outage_id = k.outage_id AND c.customer_id = k.customer_id
      AND NOT EXISTS (SELECT FROM gone g WHERE g.outage_id = k.outage_id AND g.customer_id = k.customer_id)
), counted AS (
    UPDATE oms_outage_events o
    SET affected_customers_count = greatest(coalesce(o.affected_customers_count, 0) - g.n, 0),
        last_updated_at = pg_catalog.now()
    FROM (SELECT outage_id, count(*) AS n FROM gone GROUP BY outage_id) AS g
    WHERE o.id = g.outage_id
)
SELECT l.first_source, l.first_source_event_id, es.source_table, l.off_at, array_agg(l.meter_id ORDER BY l.meter_id)
FROM later l
LEFT JOIN LATERAL (SELECT es.source_table FROM oms_event_sources es
                   WHERE es.outage_event_id = l.outage_id AND es.source_type = l.first_source
                     AND es.source_event_id = l.first_source_event_id
                   LIMIT 1) AS es ON true
GROUP BY 1, 2, 3, 4
ORDER BY 4, 1, 2
"#;

/// Spans one source event brought into an outage they began after the restoration of.
pub(crate) struct LaterSpans {
    pub source: Source,
    pub source_event_id: String,
    pub source_table: String,
    pub off_at: TimestampWithTimeZone,
    pub meters: Vec<Uuid>,
}

/// After a restoration at `at` of `restored`: the spans that began after it leave those outages
/// (`DETACH_LATER_SPANS`), to be correlated again with `correlate_later_spans`, so that a
/// restoration that arrives late ends what an in-time one would have (SPEC §5.4) and never a span
/// before it began.
pub(crate) fn detach_spans_after_restoration(
    client: &mut SpiClient<'_>,
    restored: &[Uuid],
    at: TimestampWithTimeZone,
) -> SpiResult<Vec<LaterSpans>> {
    if restored.is_empty() {
        return Ok(Vec::new());
    }
    read_later_spans(execute(
        client,
        DETACH_LATER_SPANS,
        &[arg(restored.to_vec()), arg(at)],
    )?)
}

// After a restoration at $2 of outages $1: the power-offs told after it (by ONU, Kaifa, call
// center) that joined those outages as sources, about meters of theirs ($3: also the meters whose
// later spans left them). Most came while their meters were still out there, so they added no
// span of their own; they belong to what came after. Their source rows leave the restored
// outages, which are weighed again without them (noisy-OR over what remains, SCADA certain), and
// they are returned with their meters, to be correlated again. Their meters are found among the
// outages' meters whose spans the restoration ended, meter by meter (see `join_outage!`), and only
// when there is such a source: a restoration in time reads the restored outages' sources once.
const LATER_POWER_OFFS: &str = r#"
WITH later_sources AS (
    DELETE FROM oms_event_sources es
    WHERE es.outage_event_id = ANY ($1) AND es.event_timestamp > $2 AND es.correlation_weight IS NOT NULL
      AND es.source_type <> 'scada'
    RETURNING es.outage_event_id, es.source_type, es.source_event_id, es.source_table
), reweighed AS (
    UPDATE oms_outage_events o SET confidence_score = w.confidence, last_updated_at = pg_catalog.now()
    FROM (SELECT s.outage_event_id AS id,
                 CASE WHEN bool_or(s.source_type = 'scada') THEN 1.0
                      ELSE round(1 - exp(sum(ln(greatest(1 - least(s.correlation_weight, 1), 1e-9)))), 2) END
                     AS confidence
          FROM oms_event_sources s
          WHERE s.outage_event_id IN (SELECT outage_event_id FROM later_sources)
            AND s.correlation_weight IS NOT NULL
            -- This statement still sees the rows it deleted.
            AND NOT (s.event_timestamp > $2 AND s.source_type <> 'scada')
          GROUP BY 1) AS w
    WHERE o.id = w.id
), candidates AS (
    SELECT om.meter_id FROM oms_outage_meters om
    WHERE om.outage_id = ANY ($1) AND om.on_at = $2 AND EXISTS (SELECT FROM later_sources)
    UNION
    SELECT unnest($3::uuid[])
)
SELECT s.source_type, s.source_event_id, s.source_table, e.event_timestamp, array_agg(DISTINCT c.meter_id)
FROM candidates c
CROSS JOIN LATERAL (SELECT e.source_type, e.source_event_id, e.event_timestamp FROM oms_meter_status_events e
                    WHERE e.meter_id = c.meter_id AND e.event_timestamp > $2 AND e.event_type = 'power_off'
                    OFFSET 0) AS e
JOIN (SELECT DISTINCT source_type, source_event_id, source_table FROM later_sources) AS s
  ON s.source_type = e.source_type AND s.source_event_id = e.source_event_id
GROUP BY 1, 2, 3, 4
ORDER BY 4, 1, 2
"#;

/// What a restoration at `at` of `restored` leaves to correlate again: the `detached` spans, and
/// every power-off told after it that joined a restored outage as a source, which leaves it
/// (`LATER_POWER_OFFS`; `detached_meters`: the meters of every span that left, also those the
/// caller replays otherwise), with all the meters it told of, in time order. A SCADA source is the
/// caller's to replay.
pub(crate) fn take_back_later_power_offs(
    client: &mut SpiClient<'_>,
    restored: &[Uuid],
    at: TimestampWithTimeZone,
    detached_meters: &[Uuid],
    detached: Vec<LaterSpans>,
) -> SpiResult<Vec<LaterSpans>> {
    if restored.is_empty() {
        return Ok(detached);
    }
    let mut told = read_later_spans(execute(
        client,
        LATER_POWER_OFFS,
        &[
            arg(restored.to_vec()),
            arg(at),
            arg(detached_meters.to_vec()),
        ],
    )?)?;
    for spans in detached {
        match told
            .iter_mut()
            .find(|t| t.source == spans.source && t.source_event_id == spans.source_event_id)
        {
            Some(same) => {
                for meter in spans.meters {
                    push_new(&mut same.meters, meter);
                }
            }
            None => told.push(spans),
        }
    }
    told.sort_by_key(|s| s.off_at.into_inner());
    Ok(told)
}

/// Rows of (source type, source event id, source table, time, meters).
fn read_later_spans(table: pgrx::spi::SpiTupleTable<'_>) -> SpiResult<Vec<LaterSpans>> {
    let mut spans = Vec::new();
    for row in table {
        let source = row.get::<String>(1)?.unwrap_or_default();
        let Some(parsed) = Source::parse(&source) else {
            pgrx::warning!(
                "oms_correlation: spans first told by source {source:?} are left in no outage"
            );
            continue;
        };
        spans.push(LaterSpans {
            source: parsed,
            source_event_id: row.get::<String>(2)?.unwrap_or_default(),
            source_table: row.get::<String>(3)?.unwrap_or_default(),
            off_at: row
                .get::<TimestampWithTimeZone>(4)?
                .expect("off_at and event_timestamp are NOT NULL"),
            meters: row.get::<Vec<Uuid>>(5)?.unwrap_or_default(),
        });
    }
    Ok(spans)
}

/// Correlates detached spans again, each as the power-off its source sent (not counted again for
/// storm mode). The caller holds the locks of the restored outages' device, which cover these
/// meters.
pub(crate) fn correlate_later_spans(
    client: &mut SpiClient<'_>,
    spans: Vec<LaterSpans>,
) -> SpiResult<()> {
    for spans in spans {
        let signal = Signal {
            power: Power::Off,
            source: spans.source,
            source_event_id: &spans.source_event_id,
            source_table: &spans.source_table,
            at: spans.off_at,
            meters: spans.meters,
        };
        correlate_counting(client, &signal, 0)?;
    }
    Ok(())
}
