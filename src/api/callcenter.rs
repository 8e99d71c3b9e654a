//! Call center: `insert_callcenter_ticket_from_json` and
//! `insert_callcenter_ticket_from_json_with_meter_link` (SPEC §4.4).

use pgrx::prelude::*;
use pgrx::Uuid;

use super::{after_signal, before_signal, event_time, ingest, IngestError, Payload};
use crate::canonical;
use crate::db::jsonb::RawJsonb;
use crate::db::store::callcenter::store;
use crate::error::Source;
use crate::gucs;
use crate::payload::callcenter::{self as payload, Ticket};

/// Stores the ticket, customer, status history and raw message; links the customer to the meter.
#[pg_extern(volatile, parallel_unsafe, security_definer)]
#[search_path(@extschema@, pg_catalog, pg_temp)]
pub fn insert_callcenter_ticket_from_json(json_data: Option<RawJsonb>) -> Option<Uuid> {
    ingest(
        "insert_callcenter_ticket_from_json",
        Source::CallCenter,
        json_data,
        |client, received| {
            let (ticket, at) = decode(received)?;
            Ok(store(client, &ticket, at, received.raw, None)?.id)
        },
    )
}

/// Stores the ticket and records the customer's report against the meter as a `power_off` status
/// event (confidence 0.60 by default), queued for the correlator like any power-off signal. The
/// report does not change the meter's `power_status`.
#[pg_extern(volatile, parallel_unsafe, security_definer)]
#[search_path(@extschema@, pg_catalog, pg_temp)]
pub fn insert_callcenter_ticket_from_json_with_meter_link(
    json_data: Option<RawJsonb>,
) -> Option<Uuid> {
    ingest(
        "insert_callcenter_ticket_from_json_with_meter_link",
        Source::CallCenter,
        json_data,
        |client, received| {
            let (ticket, at) = decode(received)?;
            let report = canonical::from_ticket(&ticket, &gucs::confidences());
            if report.is_some() {
                before_signal(client)?;
            }
            let stored = store(client, &ticket, at, received.raw, report.as_ref())?;
            if report.is_some() && !stored.duplicate {
                after_signal(client)?;
            }
            Ok(stored.id)
        },
    )
}

/// The validated ticket and its time.
fn decode(received: &Payload) -> Result<(Ticket, TimestampWithTimeZone), IngestError> {
    let ticket = payload::decode(&received.value)?;
    let at = event_time(Source::CallCenter, "timestamp", ticket.timestamp)?;
    Ok((ticket, at))
}
