//! The correlation queue (SPEC §5): ingest adds a power signal in its own transaction; the
//! correlator takes signals out in the transaction that correlates them. A row is deleted where it
//! is used, so nothing is skipped when transactions commit out of order, and nothing is correlated
//! twice across a crash: either the batch committed, or its rows are still queued.

use pgrx::datum::TimestampWithTimeZone;
use pgrx::spi::{SpiClient, SpiResult};

use super::load::{id, time, ts};
use super::model::{Id, Power, SourceKey, SourceKind, Time};
use crate::db::{arg, execute};

/// A queued power signal.
#[derive(Debug, Clone)]
pub struct Queued {
    pub id: i64,
    pub at: Time,
    pub power: Power,
    pub source: SourceKey,
    pub meters: Vec<Id>,
    pub enqueued_at: Time,
}

const TAKE: &str = r#"
DELETE FROM oms_correlation_queue q
WHERE q.id IN (SELECT id FROM oms_correlation_queue ORDER BY id LIMIT $1)
RETURNING q.id, q.at, q.power::text, q.source_type::text, q.source_event_id::text, q.meters, q.enqueued_at
"#;

/// Takes up to `limit` signals, oldest first.
pub fn take(client: &mut SpiClient<'_>, limit: i64) -> SpiResult<Vec<Queued>> {
    let mut taken = Vec::new();
    for row in execute(client, TAKE, &[arg(limit)])? {
        let source_type = row.get::<String>(4)?.unwrap_or_default();
        taken.push(Queued {
            id: row.get::<i64>(1)?.expect("id"),
            at: time(row.get::<TimestampWithTimeZone>(2)?.expect("at")),
            power: row
                .get::<String>(3)?
                .as_deref()
                .and_then(Power::parse)
                .unwrap_or(Power::Off),
            source: SourceKey::new(
                SourceKind::parse(&source_type).unwrap_or(SourceKind::CallCenter),
                row.get::<String>(5)?.unwrap_or_default(),
            ),
            meters: row
                .get::<Vec<pgrx::Uuid>>(6)?
                .unwrap_or_default()
                .into_iter()
                .map(id)
                .collect(),
            enqueued_at: time(row.get::<TimestampWithTimeZone>(7)?.expect("enqueued_at")),
        });
    }
    taken.sort_by_key(|q| q.id);
    Ok(taken)
}

const SET_ASIDE: &str = r#"
INSERT INTO oms_correlation_set_aside (at, power, source_type, source_event_id, meters, enqueued_at, sqlstate, error)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
"#;

/// Keeps a signal that cannot be correlated, with why (it has left the queue already).
pub fn set_aside(
    client: &mut SpiClient<'_>,
    signal: &Queued,
    sqlstate: Option<&str>,
    error: &str,
) -> SpiResult<()> {
    execute(
        client,
        SET_ASIDE,
        &[
            arg(ts(signal.at)),
            arg(signal.power.as_str()),
            arg(signal.source.kind.as_str()),
            arg(&*signal.source.event_id),
            arg(signal
                .meters
                .iter()
                .map(|m| super::load::pg(*m))
                .collect::<Vec<_>>()),
            arg(ts(signal.enqueued_at)),
            arg(sqlstate),
            arg(error),
        ],
    )?;
    Ok(())
}
