//! `kaifa_events` and its children. The redelivery key is the non-empty `header.message_id`, else
//! `payload.event_id` (SPEC §6). One statement writes the event and every child row, and a
//! redelivery writes none of them, because each child insert reads the event insert's output.
//!
//! The unique index on `delivery_key` keeps one row per key. A legacy database's `kaifa_events`,
//! adopted in place, is hash-partitioned by `id`, where such an index cannot exist (README,
//! "Adopting a legacy database"); there deliveries of one key are serialized by an advisory lock
//! instead, and the insert skips a key already stored. A caller whose snapshot predates a
//! concurrent delivery of the key (REPEATABLE READ) gets a serialization failure, as the unique
//! index would give it.

use pgrx::datum::{DatumWithOid, TimestampWithTimeZone};
use pgrx::pg_sys::panic::ErrorReport;
use pgrx::prelude::{PgLogLevel, PgSqlErrorCode};
use pgrx::spi::{SpiClient, SpiResult};
use pgrx::Uuid;
use pgrx::{pg_sys, IntoDatum};
use serde_json::Value;

use super::{inserted_id, Stored};
use crate::db::jsonb::RawJsonb;
use crate::db::{arg, execute, timestamptz, transaction_snapshot_is_fixed};
use crate::payload::fields::time_value;
use crate::payload::kaifa::{DeliveryKey, KaifaEvent, Name, NamedObject};

/// A message stored before the extension, by a legacy database's old functions (no delivery key
/// was kept then), found by the same key: its header's message id, or else its payload's event id.
/// A redelivery of it is a redelivery, not a new message.
macro_rules! stored_before_the_extension {
    ($message_id:literal, $event_id:literal) => {
        concat!(
            "SELECT e.id FROM kaifa_event_headers h JOIN kaifa_events e ON e.id = h.event_id ",
            "WHERE h.message_id = ",
            $message_id,
            " AND e.delivery_key IS NULL ",
            "UNION ALL ",
            "SELECT e.id FROM kaifa_event_payloads p JOIN kaifa_events e ON e.id = p.event_id ",
            "WHERE p.event_id_value = ",
            $event_id,
            " AND e.delivery_key IS NULL"
        )
    };
}

// $51/$52: the key's message id or event id, whichever it is (the other NULL).
const INSERT: &str = concat!(
    r#"
WITH event AS (
    INSERT INTO kaifa_events (id, message_type, event_timestamp, delivery_key)
    SELECT oms_uuid_v7(), $1, $2, $3
    WHERE NOT EXISTS (SELECT FROM kaifa_events WHERE delivery_key = $3)
      AND NOT EXISTS ("#,
    stored_before_the_extension!("$51", "$52"),
    r#")
    ON CONFLICT DO NOTHING
    RETURNING id
), header AS (
    INSERT INTO kaifa_event_headers
        (event_id, verb, noun, revision, header_timestamp, source, async_reply_flag, ack_required,
         message_id, correlation_id, comment)
    SELECT id, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14 FROM event WHERE $4
    RETURNING id, event_id
), usr AS (
    INSERT INTO kaifa_event_users (header_id, event_id, user_id, organization)
    SELECT id, event_id, $16, $17 FROM header WHERE $15
), body AS (
    INSERT INTO kaifa_event_payloads
        (event_id, event_id_value, created_date_time, issuer_id, issuer_tracking_id, reason, severity,
         user_id, event_type_ref)
    SELECT id, $18, $19, $20, $21, $22, $23, $24, $25 FROM event
    RETURNING id, event_id
), assets AS (
    INSERT INTO kaifa_event_assets (payload_id, event_id, mrid, name, name_type, meter_id)
    SELECT body.id, body.event_id, a.mrid, a.name, a.name_type,
           (SELECT m.id FROM oms_meters m
             WHERE m.asset_mrid = a.mrid OR m.meter_number = a.mrid
             ORDER BY m.asset_mrid = a.mrid DESC NULLS LAST LIMIT 1)
    FROM body, unnest($26::text[], $27::text[], $28::text[]) AS a(mrid, name, name_type)
), usage_points AS (
    INSERT INTO kaifa_event_usage_points (payload_id, event_id, mrid, name, name_type, meter_id)
    SELECT body.id, body.event_id, u.mrid, u.name, u.name_type,
           (SELECT m.id FROM oms_meters m WHERE m.usage_point_mrid = u.mrid LIMIT 1)
    FROM body, unnest($29::text[], $30::text[], $31::text[]) AS u(mrid, name, name_type)
), details AS (
    INSERT INTO kaifa_event_details (payload_id, event_id, name, value, detail_order)
    SELECT body.id, body.event_id, d.name, d.value, d.position::int
    FROM body, unnest($32::text[], $33::text[]) WITH ORDINALITY AS d(name, value, position)
), names AS (
    INSERT INTO kaifa_event_names (payload_id, event_id, name, name_type, name_description)
    SELECT body.id, body.event_id, n.name, n.type_name, n.type_description
    FROM body, unnest($34::text[], $35::text[], $36::text[]) AS n(name, type_name, type_description)
), status AS (
    INSERT INTO kaifa_event_status (payload_id, event_id, date_time, reason, remark, value)
    SELECT id, event_id, $38, $39, $40, $41 FROM body WHERE $37
), meta AS (
    INSERT INTO kaifa_event_metadata (event_id, source, processed_at, metadata)
    SELECT id, $43, $44, $42 -> 'metadata' FROM event WHERE $45
), original AS (
    INSERT INTO kaifa_event_original_messages
        (event_id, original_timestamp, source, topic, processed_at, original_message)
    SELECT id, $46, $47, $48, $49, $42 -> 'original_message' FROM event WHERE $50
)
SELECT id FROM event
"#
);

// Taken before the insert (partitioned table only), whose snapshot then sees a concurrent delivery
// of the key once it has committed.
const SERIALIZE_DELIVERY_KEY: &str =
    "SELECT pg_catalog.pg_advisory_xact_lock(1801545062, pg_catalog.hashtext($1))";

const FIND_ORIGINAL: &str = concat!(
    "SELECT id FROM (SELECT id FROM kaifa_events WHERE delivery_key = $1 UNION ALL ",
    stored_before_the_extension!("$2", "$3"),
    ") AS original LIMIT 1"
);

/// `raw` is the payload as received: the metadata and original-message blocks are stored from it
/// as they came.
pub fn store(
    client: &mut SpiClient<'_>,
    event: &KaifaEvent,
    raw: RawJsonb,
) -> SpiResult<Stored<Uuid>> {
    let key = event.delivery_key.stored();
    let (legacy_message_id, legacy_event_id) = match &event.delivery_key {
        DeliveryKey::MessageId(id) => (Some(id.as_str()), None),
        DeliveryKey::EventId(id) => (None, Some(id.as_str())),
    };
    let header = event.header.clone().unwrap_or_default();
    let user = header.user.clone();
    let body = &event.payload;
    let status = body.status.clone().unwrap_or_default();
    let (assets, asset_names, asset_name_types) = columns_of(&body.assets);
    let (points, point_names, point_name_types) = columns_of(&body.usage_point);
    let (name_names, name_type_names, name_type_descriptions) = name_columns(&body.names);
    let (meta_source, meta_processed_at) = origin_fields(event.metadata.as_ref());
    let original = event.original_message.as_ref();
    let (original_source, original_processed_at) = origin_fields(original);

    let args: Vec<DatumWithOid> = vec![
        arg(event.message_type.as_deref()),
        arg(timestamptz(event.occurred_at)),
        arg(key.as_str()),
        // header and user
        arg(event.header.is_some()),
        arg(header.verb.as_deref()),
        arg(header.noun.as_deref()),
        arg(header.revision.as_deref()),
        arg(header.timestamp.and_then(timestamptz)),
        arg(header.source.as_deref()),
        arg(header.async_reply_flag),
        arg(header.ack_required),
        arg(header.message_id.as_deref()),
        arg(header.correlation_id.as_deref()),
        arg(header.comment.as_deref()),
        arg(user.is_some()),
        arg(user.as_ref().and_then(|u| u.user_id.clone())),
        arg(user.as_ref().and_then(|u| u.organization.clone())),
        // payload
        arg(body.event_id.as_deref()),
        arg(body.created_date_time.and_then(timestamptz)),
        arg(body.issuer_id.as_deref()),
        arg(body.issuer_tracking_id.as_deref()),
        arg(body.reason.as_deref()),
        arg(body.severity.as_deref()),
        arg(body.user_id.as_deref()),
        arg(body.event_type.as_ref().and_then(|t| t.code.clone())),
        // assets, usage points, details, names
        arg(assets),
        arg(asset_names),
        arg(asset_name_types),
        arg(points),
        arg(point_names),
        arg(point_name_types),
        arg(body
            .event_details
            .iter()
            .map(|d| d.name.clone())
            .collect::<Vec<_>>()),
        arg(body
            .event_details
            .iter()
            .map(|d| d.value.clone())
            .collect::<Vec<_>>()),
        arg(name_names),
        arg(name_type_names),
        arg(name_type_descriptions),
        // status
        arg(body.status.is_some()),
        arg(status.date_time.and_then(timestamptz)),
        arg(status.reason.as_deref()),
        arg(status.remark.as_deref()),
        arg(status.value.as_deref()),
        // metadata and original message
        arg(raw),
        arg(meta_source),
        arg(meta_processed_at),
        arg(event.metadata.is_some()),
        arg(original.and_then(|o| text_time(o.get("timestamp")))),
        arg(original_source),
        arg(original.and_then(|o| short_text(o.get("topic")))),
        arg(original_processed_at),
        arg(original.is_some()),
        arg(legacy_message_id),
        arg(legacy_event_id),
    ];
    if stored_in_partitions() {
        execute(client, SERIALIZE_DELIVERY_KEY, &[arg(key.as_str())])?;
        // Only a fixed snapshot can miss a delivery committed before the lock was granted.
        if transaction_snapshot_is_fixed()
            && stored_after_the_snapshot(client, &key, legacy_message_id, legacy_event_id)?
        {
            refuse_to_serialize();
        }
    }
    if let Some(id) = inserted_id::<Uuid>(execute(client, INSERT, &args)?)? {
        return Ok(Stored {
            id,
            duplicate: false,
            signalled: Vec::new(),
        });
    }
    let id = execute(
        client,
        FIND_ORIGINAL,
        &[
            arg(key.as_str()),
            arg(legacy_message_id),
            arg(legacy_event_id),
        ],
    )?
    .first()
    .get_one::<Uuid>()?
    .expect("the conflicting Kaifa event is visible once its inserter committed");
    Ok(Stored {
        id,
        duplicate: true,
        signalled: Vec::new(),
    })
}

thread_local! {
    /// FIND_ORIGINAL, prepared for running under the latest snapshot; kept for the backend's life.
    static FIND_ORIGINAL_PLAN: std::cell::Cell<pg_sys::SPIPlanPtr> =
        const { std::cell::Cell::new(std::ptr::null_mut()) };
}

/// Whether a delivery of the key was committed that the transaction's snapshot cannot see: the
/// latest snapshot finds it, the transaction's does not. This is how PostgreSQL's own foreign-key
/// checks look past a REPEATABLE READ snapshot; pgrx's SPI has no call that takes a snapshot, so
/// the plan is run through `SPI_execute_snapshot` directly (SPI is connected: `client`).
fn stored_after_the_snapshot(
    client: &mut SpiClient<'_>,
    key: &str,
    legacy_message_id: Option<&str>,
    legacy_event_id: Option<&str>,
) -> SpiResult<bool> {
    let found_by_latest = unsafe {
        let plan = FIND_ORIGINAL_PLAN.with(|kept| {
            if kept.get().is_null() {
                let sql = std::ffi::CString::new(FIND_ORIGINAL).expect("no NUL in the SQL");
                let mut types = [pg_sys::TEXTOID; 3];
                let plan = pg_sys::SPI_prepare(sql.as_ptr(), 3, types.as_mut_ptr());
                assert!(!plan.is_null(), "FIND_ORIGINAL did not prepare");
                pg_sys::SPI_keepplan(plan);
                kept.set(plan);
            }
            kept.get()
        });
        let args = [Some(key), legacy_message_id, legacy_event_id].map(|a| a.into_datum());
        let mut values = args.map(|a| a.unwrap_or(pg_sys::Datum::from(0)));
        let nulls = args.map(|a| if a.is_some() { b' ' } else { b'n' } as std::ffi::c_char);
        let status = pg_sys::SPI_execute_snapshot(
            plan,
            values.as_mut_ptr(),
            nulls.as_ptr(),
            pg_sys::GetLatestSnapshot(),
            std::ptr::null_mut(),
            true,
            false,
            1,
        );
        assert_eq!(
            status,
            pg_sys::SPI_OK_SELECT as i32,
            "FIND_ORIGINAL under the latest snapshot"
        );
        pg_sys::SPI_processed > 0
    };
    if !found_by_latest {
        return Ok(false);
    }
    let seen_by_the_snapshot = !execute(
        client,
        FIND_ORIGINAL,
        &[arg(key), arg(legacy_message_id), arg(legacy_event_id)],
    )?
    .is_empty();
    Ok(!seen_by_the_snapshot)
}
/// What PostgreSQL itself raises when ON CONFLICT meets a row the snapshot cannot see: the caller
/// retries, and the retry finds the original as a redelivery.
fn refuse_to_serialize() -> ! {
    ErrorReport::new(
        PgSqlErrorCode::ERRCODE_T_R_SERIALIZATION_FAILURE,
        "could not serialize access due to a concurrent delivery of the same Kaifa message",
        concat!(module_path!(), "::store"),
    )
    .set_hint("Retry the transaction: the retry finds the stored message as a redelivery.")
    .report(PgLogLevel::ERROR);
    unreachable!("ERROR does not return")
}

/// Whether `kaifa_events` (found on the pinned search_path) is a partitioned table. A catalog
/// cache lookup, so it costs no statement.
fn stored_in_partitions() -> bool {
    unsafe {
        let relid = pg_sys::RelnameGetRelid(c"kaifa_events".as_ptr());
        relid != pg_sys::InvalidOid
            && pg_sys::get_rel_relkind(relid) as u8 == pg_sys::RELKIND_PARTITIONED_TABLE
    }
}

type Column = Vec<Option<String>>;

fn columns_of(objects: &[NamedObject]) -> (Column, Column, Column) {
    let first_name = |o: &NamedObject| o.names.first().cloned().unwrap_or_default();
    (
        objects.iter().map(|o| o.mrid.clone()).collect(),
        objects.iter().map(|o| first_name(o).name).collect(),
        objects
            .iter()
            .map(|o| first_name(o).name_type.and_then(|t| t.name))
            .collect(),
    )
}

fn name_columns(names: &[Name]) -> (Column, Column, Column) {
    (
        names.iter().map(|n| n.name.clone()).collect(),
        names
            .iter()
            .map(|n| n.name_type.as_ref().and_then(|t| t.name.clone()))
            .collect(),
        names
            .iter()
            .map(|n| n.name_type.as_ref().and_then(|t| t.description.clone()))
            .collect(),
    )
}

/// `source` and `processed_at` of the consumer's metadata blocks. These blocks are kept whole as
/// JSON; the two columns are conveniences, so a value that does not read cleanly is left NULL
/// rather than rejecting the message.
fn origin_fields(block: Option<&Value>) -> (Option<String>, Option<TimestampWithTimeZone>) {
    match block {
        Some(b) => (
            short_text(b.get("source")),
            text_time(b.get("processed_at")),
        ),
        None => (None, None),
    }
}

fn short_text(value: Option<&Value>) -> Option<String> {
    value
        .and_then(|v| v.as_str())
        .filter(|s| !s.is_empty())
        .map(|s| s.chars().take(255).collect())
}

fn text_time(value: Option<&Value>) -> Option<TimestampWithTimeZone> {
    time_value(value?.clone())
        .ok()
        .flatten()
        .and_then(timestamptz)
}
