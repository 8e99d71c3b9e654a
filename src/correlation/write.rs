//! What a batch writes (SPI): the decided differences of every area, a few set-based statements
//! per table (arrays through `unnest`), in an order that keeps every key and index true between
//! statements: what closes goes before what opens.

use std::collections::{BTreeMap, BTreeSet};

use pgrx::datum::{DatumWithOid, TimestampWithTimeZone};
use pgrx::spi::{SpiClient, SpiResult};
use pgrx::JsonB;

use super::decide::reconcile::{Decision, OutageRow, Retired};
use super::load::{self, customer_columns, pg, source_columns, span_columns, ts};
use super::model::{Id, SourceKey, SourceKind, StoredCustomer, StoredSource, StoredSpan, Time};
use crate::db::{arg, execute};

/// A write statement as written, and the same returning what it wrote (`$returning`): the worker
/// keeps the rows (`outage_cache`), any other correlator does not ask for them.
macro_rules! plain_and_returning {
    ($statement:ident, $returning:expr) => {
        [
            $statement!(),
            concat!($statement!(), "RETURNING ", $returning),
        ]
    };
}

fn uuids(list: impl IntoIterator<Item = Id>) -> Vec<pgrx::Uuid> {
    list.into_iter().map(pg).collect()
}

fn opt_uuids<'a>(list: impl IntoIterator<Item = Option<Id>>) -> DatumWithOid<'a> {
    arg(list.into_iter().map(|id| id.map(pg)).collect::<Vec<_>>())
}

fn times<'a>(list: impl IntoIterator<Item = i64>) -> DatumWithOid<'a> {
    arg(list
        .into_iter()
        .map(ts)
        .collect::<Vec<TimestampWithTimeZone>>())
}

fn opt_times<'a>(list: impl IntoIterator<Item = Option<i64>>) -> DatumWithOid<'a> {
    arg(list.into_iter().map(|t| t.map(ts)).collect::<Vec<_>>())
}

fn texts<'a>(list: impl IntoIterator<Item = String>) -> DatumWithOid<'a> {
    arg(list.into_iter().collect::<Vec<String>>())
}

fn opt_texts<'a>(list: impl IntoIterator<Item = Option<String>>) -> DatumWithOid<'a> {
    arg(list.into_iter().collect::<Vec<Option<String>>>())
}

const OUTAGE_EVENTS: &str = "SELECT 'oms_outage_events'::regclass::oid";

/// Every membership, source, timeline and customer row a batch writes has its outage checked by
/// a foreign key, whose plan this backend made once, when `oms_outage_events` was small: a
/// sequential scan, and in a long transaction (a backlog drained in one call) over every row
/// version the transaction wrote, 45 µs a check. A relation cache invalidation makes the checks
/// plan again for the table as it is now (an index scan); at most once a batch, it costs a few
/// plannings.
fn replan_outage_key_checks(client: &mut SpiClient<'_>) -> SpiResult<()> {
    if let Some(oid) = execute(client, OUTAGE_EVENTS, &[])?
        .first()
        .get_one::<pgrx::pg_sys::Oid>()?
    {
        unsafe { pgrx::pg_sys::CacheInvalidateRelcacheByRelid(oid) };
    }
    Ok(())
}

// New outages ($1...$21, one array each).
const INSERT_OUTAGES: &str = r#"
INSERT INTO oms_outage_events
    (id, event_id, event_type, status, severity, confidence_score, affected_customers_count, customers_out,
     root_cause, description, substation_id, feeder_id, dp_id, first_detected_at, scope, device_key,
     merged_into, merged_at, parent_outage_id, opened_at, actual_restoration_time, placement,
     event_latitude, event_longitude)
SELECT i.id, i.event_id, 'outage', i.status, coalesce(i.severity, 'medium'), i.confidence, i.affected, i.customers_out,
       i.cause, i.description, i.substation, i.feeder, i.dp, i.start, i.scope, i.device_key,
       i.merged_into, i.merged_at, i.parent, i.opened_at, i.restored_at, i.placement, i.latitude, i.longitude
FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::float8[], $6::int4[], $7::int4[], $8::text[],
            $9::text[], $10::uuid[], $11::uuid[], $12::uuid[], $13::timestamptz[], $14::text[], $15::text[],
            $16::uuid[], $17::timestamptz[], $18::uuid[], $19::timestamptz[], $20::timestamptz[], $21::text[],
            $22::float8[], $23::float8[])
    AS i(id, event_id, status, severity, confidence, affected, customers_out, cause, description, substation,
         feeder, dp, start, scope, device_key, merged_into, merged_at, parent, opened_at, restored_at, placement,
         latitude, longitude)
"#;

// Changed outages: their new state. An operator's in_progress stays while the outage is open.
const UPDATE_OUTAGES: &str = r#"
UPDATE oms_outage_events o SET
    status = CASE WHEN o.status = 'in_progress' AND u.status IN ('detected', 'confirmed') THEN 'in_progress'
                  ELSE u.status END,
    confidence_score = u.confidence, affected_customers_count = u.affected, customers_out = u.customers_out,
    first_detected_at = u.start, opened_at = u.opened_at, actual_restoration_time = u.restored_at,
    merged_into = u.merged_into, merged_at = u.merged_at, parent_outage_id = u.parent,
    severity = coalesce(o.severity, u.severity), root_cause = coalesce(o.root_cause, u.cause),
    placement = CASE WHEN u.placement = 'stored' THEN o.placement ELSE u.placement END,
    last_updated_at = pg_catalog.now()
FROM unnest($1::uuid[], $2::text[], $3::float8[], $4::int4[], $5::int4[], $6::timestamptz[], $7::timestamptz[],
            $8::timestamptz[], $9::uuid[], $10::timestamptz[], $11::uuid[], $12::text[], $13::text[], $14::text[])
    AS u(id, status, confidence, affected, customers_out, start, opened_at, restored_at, merged_into, merged_at,
         parent, severity, cause, placement)
WHERE o.id = u.id
"#;

// Stored outages a replay did not make again ($1): merged into the outage that holds their meters
// now ($2, $3 true), or withdrawn (cancelled) when none does. Crews and notifications follow a merge.
const RETIRE_OUTAGES: &str = r#"
WITH retired AS (
    UPDATE oms_outage_events o SET
        status = CASE WHEN r.merged THEN 'merged' ELSE 'cancelled' END,
        merged_into = r.target, merged_at = CASE WHEN r.merged THEN coalesce(o.opened_at, o.first_detected_at) END,
        actual_restoration_time = CASE WHEN r.merged THEN o.actual_restoration_time
                                       ELSE coalesce(o.actual_restoration_time, o.first_detected_at) END,
        affected_customers_count = CASE WHEN r.merged THEN o.affected_customers_count ELSE 0 END,
        customers_out = 0, last_updated_at = pg_catalog.now()
    FROM unnest($1::uuid[], $2::uuid[], $3::bool[]) AS r(id, target, merged)
    WHERE o.id = r.id
    RETURNING o.id, r.target
), crews AS (
    UPDATE oms_crew_assignments c SET outage_event_id = r.target
    FROM retired r WHERE r.target IS NOT NULL AND c.outage_event_id = r.id
)
UPDATE oms_customer_notifications n SET outage_event_id = r.target
FROM retired r WHERE r.target IS NOT NULL AND n.outage_event_id = r.id
"#;

macro_rules! delete_spans {
    () => {
        r#"
DELETE FROM oms_outage_meters om
USING unnest($1::uuid[], $2::uuid[], $3::timestamptz[]) AS d(outage, meter, off_at)
WHERE om.outage_id = d.outage AND om.meter_id = d.meter AND om.off_at = d.off_at
"#
    };
}
const DELETE_SPANS: [&str; 2] =
    plain_and_returning!(delete_spans, "om.outage_id, om.meter_id, om.off_at");

macro_rules! update_spans {
    () => {
        r#"
UPDATE oms_outage_meters om SET outage_id = u.outage, origin_outage_id = u.origin, on_at = u.on_at,
       first_source = u.source_type, first_source_event_id = u.source_event_id, suspected_mismapped = u.suspected
FROM unnest($1::uuid[], $2::uuid[], $3::timestamptz[], $4::uuid[], $5::uuid[], $6::timestamptz[], $7::text[], $8::text[],
            $9::bool[])
    AS u(stored_outage, meter, off_at, outage, origin, on_at, source_type, source_event_id, suspected)
WHERE om.outage_id = u.stored_outage AND om.meter_id = u.meter AND om.off_at = u.off_at
"#
    };
}
const UPDATE_SPANS: [&str; 2] = plain_and_returning!(update_spans, span_columns!());

macro_rules! insert_spans {
    () => {
        r#"
INSERT INTO oms_outage_meters AS om
    (outage_id, meter_id, off_at, on_at, customer_key, customer_id, dp_id, feeder_id, substation_id,
     first_source, first_source_event_id, origin_outage_id, suspected_mismapped)
SELECT i.outage, i.meter, i.off_at, i.on_at, coalesce(i.customer, i.meter), i.customer, i.dp, i.feeder, i.substation,
       i.source_type, i.source_event_id, i.origin, i.suspected
FROM unnest($1::uuid[], $2::uuid[], $3::timestamptz[], $4::timestamptz[], $5::uuid[], $6::uuid[], $7::uuid[],
            $8::uuid[], $9::text[], $10::text[], $11::uuid[], $12::bool[])
    AS i(outage, meter, off_at, on_at, customer, dp, feeder, substation, source_type, source_event_id, origin,
         suspected)
"#
    };
}
const INSERT_SPANS: [&str; 2] = plain_and_returning!(insert_spans, span_columns!());

macro_rules! delete_sources {
    () => {
        r#"
DELETE FROM oms_event_sources es
USING unnest($1::uuid[], $2::text[], $3::text[]) AS d(outage, source_type, source_event_id)
WHERE es.outage_event_id = d.outage AND es.source_type = d.source_type AND es.source_event_id = d.source_event_id
"#
    };
}
const DELETE_SOURCES: [&str; 2] = plain_and_returning!(
    delete_sources,
    "es.outage_event_id, es.source_type::text, es.source_event_id::text"
);

macro_rules! update_sources {
    () => {
        r#"
UPDATE oms_event_sources es SET outage_event_id = u.outage, origin_outage_id = u.origin,
       detected_at = u.at, event_timestamp = u.at, correlation_weight = u.weight, confidence_weight = u.weight
FROM unnest($1::uuid[], $2::text[], $3::text[], $4::uuid[], $5::uuid[], $6::timestamptz[], $7::float8[])
    AS u(stored_outage, source_type, source_event_id, outage, origin, at, weight)
WHERE es.outage_event_id = u.stored_outage AND es.source_type = u.source_type AND es.source_event_id = u.source_event_id
"#
    };
}
const UPDATE_SOURCES: [&str; 2] = plain_and_returning!(update_sources, source_columns!());

// A source's table is its type's; its event data says whether it is evidence of the outage.
macro_rules! insert_sources {
    () => {
        r#"
INSERT INTO oms_event_sources AS es
    (outage_event_id, source_type, source_event_id, source_table, correlation_weight, detected_at,
     event_timestamp, confidence_weight, event_data, origin_outage_id)
SELECT i.outage, i.source_type, i.source_event_id,
       CASE i.source_type WHEN 'scada' THEN 'scada_events' WHEN 'onu' THEN 'onu_events'
                          WHEN 'kaifa' THEN 'kaifa_events' ELSE 'callcenter_tickets' END,
       i.weight, i.at, i.at, i.weight,
       pg_catalog.jsonb_build_object('power', CASE WHEN i.weight IS NULL THEN 'on' ELSE 'off' END),
       i.origin
FROM unnest($1::uuid[], $2::text[], $3::text[], $4::timestamptz[], $5::float8[], $6::uuid[])
    AS i(outage, source_type, source_event_id, at, weight, origin)
ON CONFLICT (outage_event_id, source_type, source_event_id) DO NOTHING
"#
    };
}
const INSERT_SOURCES: [&str; 2] = plain_and_returning!(insert_sources, source_columns!());

macro_rules! delete_customers {
    () => {
        r#"
DELETE FROM oms_outage_customers c USING unnest($1::uuid[], $2::uuid[]) AS d(outage, customer)
WHERE c.outage_id = d.outage AND c.customer_id = d.customer
"#
    };
}
const DELETE_CUSTOMERS: [&str; 2] =
    plain_and_returning!(delete_customers, "c.outage_id, c.customer_id");

macro_rules! upsert_customers {
    () => {
        r#"
INSERT INTO oms_outage_customers AS c (outage_id, customer_id, linked_at, restored_at)
SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::timestamptz[], $4::timestamptz[])
ON CONFLICT (outage_id, customer_id) DO UPDATE SET restored_at = EXCLUDED.restored_at
"#
    };
}
const UPSERT_CUSTOMERS: [&str; 2] = plain_and_returning!(upsert_customers, customer_columns!());

const INSERT_TIMELINE: &str = r#"
INSERT INTO oms_event_timeline
    (outage_event_id, event_type, status, description, source, "timestamp", metadata, event_description,
     event_timestamp, created_by)
SELECT t.outage, t.event_type, t.status, t.description, t.source, t.at, t.metadata, t.description, t.at,
       'oms_correlation'
FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::timestamptz[], $7::jsonb[])
    AS t(outage, event_type, status, description, source, at, metadata)
WHERE EXISTS (SELECT FROM oms_outage_events o WHERE o.id = t.outage)
"#;

/// What a batch wrote, as the tables hold it now (for `outage_cache`).
#[derive(Default)]
pub struct Written {
    /// Every outage row inserted or changed, and which of them are new.
    pub outages: BTreeSet<Id>,
    pub new_outages: BTreeSet<Id>,
    /// Rows gone (deleted, or moved to another key), then rows as written.
    pub spans_gone: Vec<(Id, Id, Time)>,
    pub spans: Vec<StoredSpan>,
    pub sources_gone: Vec<(Id, SourceKey)>,
    pub sources: Vec<StoredSource>,
    pub customers_gone: Vec<(Id, Id)>,
    pub customers: Vec<StoredCustomer>,
}

/// Writes every area's decision of a batch.
/// `alarm_locked`: the batch is a SCADA alarm's, whose check locked every meter of its area.
/// `returning`: what it wrote is returned (else an empty `Written`).
pub fn write(
    client: &mut SpiClient<'_>,
    decisions: &[Decision],
    alarm_locked: bool,
    returning: bool,
) -> SpiResult<Written> {
    let k = usize::from(returning);
    let mut written = Written::default();
    replan_outage_key_checks(client)?;
    // Outage rows: closes first (restored, merged, retired), then new rows, then opens, so that
    // "one open outage per device" holds between statements. A close that points at a new row
    // (merged into it, nested in it) points there once the row exists.
    let mut rows: BTreeMap<Id, &OutageRow> = BTreeMap::new();
    for d in decisions {
        for row in &d.outages {
            rows.entry(row.id).or_insert(row);
        }
    }
    let retired: Vec<Retired> = decisions
        .iter()
        .flat_map(|d| d.retired.iter().copied())
        .collect();
    let is_open = |row: &OutageRow| matches!(row.status, "detected" | "confirmed" | "in_progress");
    let (new, existing): (Vec<&OutageRow>, Vec<&OutageRow>) = rows.values().partition(|r| r.is_new);
    let fresh: BTreeSet<Id> = new.iter().map(|r| r.id).collect();
    if returning {
        written.outages = rows
            .keys()
            .chain(retired.iter().map(|r| &r.id))
            .copied()
            .collect();
        written.new_outages = fresh.clone();
    }
    let points_at_new = |id: Option<Id>| id.is_some_and(|id| fresh.contains(&id));
    let (opening, closing): (Vec<&OutageRow>, Vec<&OutageRow>) =
        existing.into_iter().partition(|r| is_open(r));
    let deferred: Vec<OutageRow> = closing
        .iter()
        .filter(|r| points_at_new(r.merged_into) || points_at_new(r.parent))
        .map(|r| OutageRow {
            merged_into: r.merged_into.filter(|id| !fresh.contains(id)),
            parent: r.parent.filter(|id| !fresh.contains(id)),
            ..(*r).clone()
        })
        .collect();
    let closing_now: Vec<&OutageRow> = closing
        .iter()
        .map(|r| deferred.iter().find(|d| d.id == r.id).unwrap_or(r))
        .collect();
    retire(client, &retired, &|into| {
        into.filter(|id| !fresh.contains(id))
    })?;
    update_outages(client, &closing_now)?;
    insert_outages(client, &new)?;
    let repointed: Vec<&OutageRow> = closing
        .iter()
        .copied()
        .filter(|r| points_at_new(r.merged_into) || points_at_new(r.parent))
        .collect();
    update_outages(client, &repointed)?;
    let late: Vec<Retired> = retired
        .iter()
        .copied()
        .filter(|r| points_at_new(r.into))
        .collect();
    retire(client, &late, &|into| into)?;
    update_outages(client, &opening)?;

    // Spans: deletes, then closing updates, then opening ones, then inserts.
    let deletes: Vec<_> = decisions
        .iter()
        .flat_map(|d| d.span_deletes.iter())
        .collect();
    if !deletes.is_empty() {
        let gone = execute(
            client,
            DELETE_SPANS[k],
            &[
                arg(uuids(deletes.iter().map(|d| d.0))),
                arg(uuids(deletes.iter().map(|d| d.1))),
                times(deletes.iter().map(|d| d.2)),
            ],
        )?;
        if returning {
            for row in gone {
                written.spans_gone.push((
                    load::id(row.get::<pgrx::Uuid>(1)?.expect("outage_id")),
                    load::id(row.get::<pgrx::Uuid>(2)?.expect("meter_id")),
                    load::time(row.get::<TimestampWithTimeZone>(3)?.expect("off_at")),
                ));
            }
        }
    }
    let updates: Vec<_> = decisions
        .iter()
        .flat_map(|d| d.span_updates.iter())
        .collect();
    let (closing, opening): (Vec<_>, Vec<_>) =
        updates.into_iter().partition(|u| u.row.on.is_some());
    for group in [closing, opening] {
        if group.is_empty() {
            continue;
        }
        if returning {
            written.spans_gone.extend(
                group
                    .iter()
                    .map(|u| (u.stored_outage, u.row.meter, u.row.off)),
            );
        }
        let rows = execute(
            client,
            UPDATE_SPANS[k],
            &[
                arg(uuids(group.iter().map(|u| u.stored_outage))),
                arg(uuids(group.iter().map(|u| u.row.meter))),
                times(group.iter().map(|u| u.row.off)),
                arg(uuids(group.iter().map(|u| u.row.outage))),
                arg(uuids(group.iter().map(|u| u.row.origin))),
                opt_times(group.iter().map(|u| u.row.on)),
                texts(
                    group
                        .iter()
                        .map(|u| u.row.first_source.kind.as_str().to_string()),
                ),
                texts(
                    group
                        .iter()
                        .map(|u| u.row.first_source.event_id.to_string()),
                ),
                arg(group.iter().map(|u| u.row.suspected).collect::<Vec<bool>>()),
            ],
        )?;
        if returning {
            for row in rows {
                written.spans.push(load::span(&row)?);
            }
        }
    }
    let inserts: Vec<_> = decisions
        .iter()
        .flat_map(|d| d.span_inserts.iter())
        .collect();
    if !inserts.is_empty() {
        let mut inserted = Vec::new();
        let mut insert = |client: &mut SpiClient<'_>| -> SpiResult<()> {
            let rows = execute(
                client,
                INSERT_SPANS[k],
                &[
                    arg(uuids(inserts.iter().map(|r| r.outage))),
                    arg(uuids(inserts.iter().map(|r| r.meter))),
                    times(inserts.iter().map(|r| r.off)),
                    opt_times(inserts.iter().map(|r| r.on)),
                    opt_uuids(inserts.iter().map(|r| r.place.customer)),
                    opt_uuids(inserts.iter().map(|r| r.place.dp)),
                    opt_uuids(inserts.iter().map(|r| r.place.feeder)),
                    opt_uuids(inserts.iter().map(|r| r.place.substation)),
                    texts(
                        inserts
                            .iter()
                            .map(|r| r.first_source.kind.as_str().to_string()),
                    ),
                    texts(inserts.iter().map(|r| r.first_source.event_id.to_string())),
                    arg(uuids(inserts.iter().map(|r| r.origin))),
                    arg(inserts.iter().map(|r| r.suspected).collect::<Vec<bool>>()),
                ],
            )?;
            if returning {
                for row in rows {
                    inserted.push(load::span(&row)?);
                }
            }
            Ok(())
        };
        if alarm_locked {
            crate::db::scada_check::without_fk_triggers(client, inserts.len(), insert)?;
        } else {
            insert(client)?;
        }
        written.spans.extend(inserted);
    }

    // Sources.
    let deletes: Vec<_> = decisions
        .iter()
        .flat_map(|d| d.source_deletes.iter())
        .collect();
    if !deletes.is_empty() {
        let gone = execute(
            client,
            DELETE_SOURCES[k],
            &[
                arg(uuids(deletes.iter().map(|d| d.0))),
                texts(deletes.iter().map(|d| d.1.kind.as_str().to_string())),
                texts(deletes.iter().map(|d| d.1.event_id.to_string())),
            ],
        )?;
        if returning {
            for row in gone {
                let Some(kind) = row.get::<String>(2)?.as_deref().and_then(SourceKind::parse)
                else {
                    continue;
                };
                written.sources_gone.push((
                    load::id(row.get::<pgrx::Uuid>(1)?.expect("outage_event_id")),
                    SourceKey::new(kind, row.get::<String>(3)?.unwrap_or_default()),
                ));
            }
        }
    }
    let updates: Vec<_> = decisions
        .iter()
        .flat_map(|d| d.source_updates.iter())
        .collect();
    if !updates.is_empty() {
        if returning {
            written
                .sources_gone
                .extend(updates.iter().map(|u| (u.stored_outage, u.row.key.clone())));
        }
        let rows = execute(
            client,
            UPDATE_SOURCES[k],
            &[
                arg(uuids(updates.iter().map(|u| u.stored_outage))),
                texts(updates.iter().map(|u| u.row.key.kind.as_str().to_string())),
                texts(updates.iter().map(|u| u.row.key.event_id.to_string())),
                arg(uuids(updates.iter().map(|u| u.row.outage))),
                arg(uuids(updates.iter().map(|u| u.row.origin))),
                times(updates.iter().map(|u| u.row.at)),
                arg(updates.iter().map(|u| u.row.weight).collect::<Vec<_>>()),
            ],
        )?;
        if returning {
            for row in rows {
                written.sources.extend(load::source(&row)?);
            }
        }
    }
    let inserts: Vec<_> = decisions
        .iter()
        .flat_map(|d| d.source_inserts.iter())
        .collect();
    if !inserts.is_empty() {
        let rows = execute(
            client,
            INSERT_SOURCES[k],
            &[
                arg(uuids(inserts.iter().map(|r| r.outage))),
                texts(inserts.iter().map(|r| r.key.kind.as_str().to_string())),
                texts(inserts.iter().map(|r| r.key.event_id.to_string())),
                times(inserts.iter().map(|r| r.at)),
                arg(inserts.iter().map(|r| r.weight).collect::<Vec<_>>()),
                arg(uuids(inserts.iter().map(|r| r.origin))),
            ],
        )?;
        if returning {
            for row in rows {
                written.sources.extend(load::source(&row)?);
            }
        }
    }

    // Customers.
    let deletes: Vec<_> = decisions
        .iter()
        .flat_map(|d| d.customer_deletes.iter())
        .collect();
    if !deletes.is_empty() {
        let gone = execute(
            client,
            DELETE_CUSTOMERS[k],
            &[
                arg(uuids(deletes.iter().map(|d| d.0))),
                arg(uuids(deletes.iter().map(|d| d.1))),
            ],
        )?;
        if returning {
            for row in gone {
                written.customers_gone.push((
                    load::id(row.get::<pgrx::Uuid>(1)?.expect("outage_id")),
                    load::id(row.get::<pgrx::Uuid>(2)?.expect("customer_id")),
                ));
            }
        }
    }
    let mut seen = BTreeSet::new();
    let upserts: Vec<_> = decisions
        .iter()
        .flat_map(|d| d.customer_upserts.iter())
        .filter(|c| seen.insert((c.outage, c.customer)))
        .collect();
    if !upserts.is_empty() {
        let rows = execute(
            client,
            UPSERT_CUSTOMERS[k],
            &[
                arg(uuids(upserts.iter().map(|c| c.outage))),
                arg(uuids(upserts.iter().map(|c| c.customer))),
                times(upserts.iter().map(|c| c.linked_at)),
                opt_times(upserts.iter().map(|c| c.restored_at)),
            ],
        )?;
        if returning {
            for row in rows {
                written.customers.push(load::customer(&row)?);
            }
        }
    }

    // The story.
    let timeline: Vec<_> = decisions.iter().flat_map(|d| d.timeline.iter()).collect();
    if !timeline.is_empty() {
        execute(
            client,
            INSERT_TIMELINE,
            &[
                arg(uuids(timeline.iter().map(|t| t.outage))),
                texts(timeline.iter().map(|t| t.event_type.to_string())),
                texts(timeline.iter().map(|t| t.status.to_string())),
                texts(timeline.iter().map(|t| t.description.clone())),
                texts(timeline.iter().map(|t| t.source.clone())),
                times(timeline.iter().map(|t| t.at)),
                arg(timeline
                    .iter()
                    .map(|t| JsonB(t.metadata.clone()))
                    .collect::<Vec<_>>()),
            ],
        )?;
    }
    Ok(written)
}

fn retire(
    client: &mut SpiClient<'_>,
    retired: &[Retired],
    into: &dyn Fn(Option<Id>) -> Option<Id>,
) -> SpiResult<()> {
    if retired.is_empty() {
        return Ok(());
    }
    execute(
        client,
        RETIRE_OUTAGES,
        &[
            arg(uuids(retired.iter().map(|r| r.id))),
            opt_uuids(retired.iter().map(|r| into(r.into))),
            arg(retired
                .iter()
                .map(|r| r.into.is_some())
                .collect::<Vec<bool>>()),
        ],
    )?;
    Ok(())
}

fn insert_outages(client: &mut SpiClient<'_>, rows: &[&OutageRow]) -> SpiResult<()> {
    if rows.is_empty() {
        return Ok(());
    }
    execute(
        client,
        INSERT_OUTAGES,
        &[
            arg(uuids(rows.iter().map(|r| r.id))),
            texts(rows.iter().map(|r| r.event_id.clone().unwrap_or_default())),
            texts(rows.iter().map(|r| r.status.to_string())),
            opt_texts(rows.iter().map(|r| r.severity.clone())),
            arg(rows.iter().map(|r| r.confidence).collect::<Vec<f64>>()),
            arg(rows
                .iter()
                .map(|r| r.affected_customers)
                .collect::<Vec<i32>>()),
            arg(rows.iter().map(|r| r.customers_out).collect::<Vec<i32>>()),
            opt_texts(rows.iter().map(|r| r.cause.clone())),
            opt_texts(rows.iter().map(|r| r.description.clone())),
            opt_uuids(rows.iter().map(|r| r.substation)),
            opt_uuids(rows.iter().map(|r| r.feeder)),
            opt_uuids(rows.iter().map(|r| r.dp)),
            times(rows.iter().map(|r| r.start)),
            texts(rows.iter().map(|r| r.device.scope().as_str().to_string())),
            texts(rows.iter().map(|r| r.device.to_string())),
            opt_uuids(rows.iter().map(|r| r.merged_into)),
            opt_times(rows.iter().map(|r| r.merged_at)),
            opt_uuids(rows.iter().map(|r| r.parent)),
            times(rows.iter().map(|r| r.opened_at)),
            opt_times(rows.iter().map(|r| r.restored_at)),
            texts(rows.iter().map(|r| r.placement.as_str().to_string())),
            arg(rows
                .iter()
                .map(|r| r.latitude)
                .collect::<Vec<Option<f64>>>()),
            arg(rows
                .iter()
                .map(|r| r.longitude)
                .collect::<Vec<Option<f64>>>()),
        ],
    )?;
    Ok(())
}

fn update_outages(client: &mut SpiClient<'_>, rows: &[&OutageRow]) -> SpiResult<()> {
    if rows.is_empty() {
        return Ok(());
    }
    execute(
        client,
        UPDATE_OUTAGES,
        &[
            arg(uuids(rows.iter().map(|r| r.id))),
            texts(rows.iter().map(|r| r.status.to_string())),
            arg(rows.iter().map(|r| r.confidence).collect::<Vec<f64>>()),
            arg(rows
                .iter()
                .map(|r| r.affected_customers)
                .collect::<Vec<i32>>()),
            arg(rows.iter().map(|r| r.customers_out).collect::<Vec<i32>>()),
            times(rows.iter().map(|r| r.start)),
            times(rows.iter().map(|r| r.opened_at)),
            opt_times(rows.iter().map(|r| r.restored_at)),
            opt_uuids(rows.iter().map(|r| r.merged_into)),
            opt_times(rows.iter().map(|r| r.merged_at)),
            opt_uuids(rows.iter().map(|r| r.parent)),
            opt_texts(rows.iter().map(|r| r.severity.clone())),
            opt_texts(rows.iter().map(|r| r.cause.clone())),
            texts(rows.iter().map(|r| r.placement.as_str().to_string())),
        ],
    )?;
    Ok(())
}
