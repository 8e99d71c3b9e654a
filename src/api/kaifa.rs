//! Kaifa: `insert_kaifa_event_from_json` and `insert_kaifa_event_from_json_with_meter_sync`
//! (SPEC §4.3).

use pgrx::datum::TimestampWithTimeZone;
use pgrx::prelude::*;
use pgrx::spi::SpiClient;
use pgrx::Uuid;

use super::{after_signal, before_signal, event_time, ingest, IngestError, Payload};
use crate::canonical;
use crate::db::jsonb::RawJsonb;
use crate::db::registry;
use crate::db::store::kaifa::store;
use crate::db::store::Stored;
use crate::error::Source;
use crate::gucs;
use crate::payload::kaifa::{self as payload, KaifaEvent};

/// Stores the message: the event, header, user, payload, assets, usage points, details, names,
/// status, metadata and original message that are present; links assets and usage points to
/// meters.
#[pg_extern(volatile, parallel_unsafe, security_definer)]
#[search_path(@extschema@, pg_catalog, pg_temp)]
pub fn insert_kaifa_event_from_json(json_data: Option<RawJsonb>) -> Option<Uuid> {
    ingest(
        "insert_kaifa_event_from_json",
        Source::Kaifa,
        json_data,
        |client, received| Ok(decode_and_store(client, received)?.1.id),
    )
}

/// Stores the message and applies what it says to its meter: power off or restored by CIM code,
/// else by severity, else a communication refresh; power signals, and the reports of meters a customer
/// called about, are queued for the correlator.
#[pg_extern(volatile, parallel_unsafe, security_definer)]
#[search_path(@extschema@, pg_catalog, pg_temp)]
pub fn insert_kaifa_event_from_json_with_meter_sync(json_data: Option<RawJsonb>) -> Option<Uuid> {
    ingest(
        "insert_kaifa_event_from_json_with_meter_sync",
        Source::Kaifa,
        json_data,
        |client, received| {
            let (event, at) = decode(received)?;
            let signal = canonical::from_kaifa(&event, &gucs::confidences());
            // A communication event is queued only as the report of a meter a customer called
            // about (issue 22); in immediate mode, one likely to be takes the correlator's lock
            // first, as a power signal does, and drains it. The lock comes before anything is
            // written: a call waiting for it while holding its event's key could close a cycle
            // with a redelivered copy waiting for that key (a deadlock).
            let report = signal
                .as_ref()
                .filter(|s| s.change == canonical::StatusChange::CommunicationSeen);
            let drains = match (&signal, report) {
                (Some(s), _) if s.change.new_power_status().is_some() => true,
                (_, Some(s)) if gucs::correlate() == gucs::Correlate::Immediate => {
                    registry::called_about(client, s, at)?
                }
                _ => false,
            };
            if drains {
                before_signal(client)?;
            }
            let stored = store(client, &event, received.raw)?;
            if !stored.duplicate {
                registry::learn_mrids(client, &event.asset_mrids(), &event.usage_point_mrids())?;
                if let Some(signal) = &signal {
                    registry::apply(client, signal, at)?;
                }
                // A report queued without the lock: in deferred mode the worker takes it in (made
                // sure of as for any signal); in immediate mode (a call came in meanwhile), the next
                // drain does.
                let queued = match report {
                    Some(s) => registry::queue_report(client, s, at)?,
                    None => false,
                };
                if queued && !drains && gucs::correlate() == gucs::Correlate::Deferred {
                    before_signal(client)?;
                }
                if drains {
                    after_signal(client)?;
                }
            }
            Ok(stored.id)
        },
    )
}

fn decode_and_store(
    client: &mut SpiClient<'_>,
    received: &Payload,
) -> Result<(KaifaEvent, Stored<Uuid>), IngestError> {
    let (event, _) = decode(received)?;
    let stored = store(client, &event, received.raw)?;
    Ok((event, stored))
}

/// The validated message and its time.
fn decode(received: &Payload) -> Result<(KaifaEvent, TimestampWithTimeZone), IngestError> {
    let event = payload::decode(&received.value)?;
    let at = event_time(Source::Kaifa, "timestamp", event.occurred_at)?;
    Ok((event, at))
}
