//! `callcenter_tickets` and its children. The redelivery key is `ticketId` (SPEC §6).

use pgrx::datum::TimestampWithTimeZone;
use pgrx::spi::{SpiClient, SpiResult};
use pgrx::{JsonB, Uuid};

use super::Stored;
use crate::canonical::MeterSignal;
use crate::db::jsonb::RawJsonb;
use crate::db::queue::enqueue;
use crate::db::registry::customer_report_audit;
use crate::db::{arg, execute};
use crate::error::Source;
use crate::payload::callcenter::Ticket;

// The customer is linked to the meter by number whatever the meter's status: the link records who
// called about which meter; the report (audited with the registry's rule) only for active meters.
//
// Parameters follow the report audit's numbering (`db::registry::customer_report_audit`): $1 the
// ticket's time, $2 source type, $3 ticket id, $4 confidence, $5 report metadata, $6 meter number,
// then $7 intake id, $8 OMS event id, $9 status, $10 source, $11 phone, $12 address, $13 notes,
// $14 the raw payload, $15 whether to record the report, $16 `call_verify_window` in seconds.
//
// A meter that spoke after the call's time, within the window, before the call came in (a call
// delayed on its way) is queued as a report dated at its last communication: the correlator then
// weighs it as it weighs a report that comes after the call (issue 22).
const INSERT: &str = concat!(
    r#"
WITH ticket AS (
    INSERT INTO callcenter_tickets
        (id, external_ticket_id, intake_id, oms_event_id, status, intake_timestamp, source)
    VALUES (oms_uuid_v7(), $3, $7, $8, $9, $1, $10)
    ON CONFLICT (external_ticket_id) DO NOTHING
    RETURNING id
), customer AS (
    INSERT INTO callcenter_customers (ticket_id, phone, meter_number, address, notes, meter_id)
    SELECT id, $11, $6, $12, $13, (SELECT m.id FROM oms_meters m WHERE m.meter_number = $6)
    FROM ticket
), history AS (
    INSERT INTO callcenter_ticket_status_history (ticket_id, status, changed_at, note)
    SELECT id, $9, $1, 'ticket received' FROM ticket
), raw AS (
    INSERT INTO callcenter_raw_messages (ticket_id, raw_payload)
    SELECT id, $14 FROM ticket
), reporting AS (
    SELECT id FROM ticket WHERE $15
),"#,
    customer_report_audit!(),
    ",",
    enqueue!("report", "'off'"),
    // FOR SHARE: a communication event of the meter being ingested meanwhile holds its row; this
    // waits for it and reads its `last_communication` (`db::registry::QUEUE_REPORT`, the other side).
    r#", spoke AS (
    SELECT m.id, m.last_communication FROM oms_meters m
    WHERE $15 AND m.meter_number = $6 AND m.status = 'active'
    FOR SHARE
), heard AS (
    INSERT INTO oms_correlation_queue (at, power, source_type, source_event_id, meters)
    SELECT s.last_communication, 'report', $2, $3, ARRAY[s.id]
    FROM report r JOIN spoke s ON s.id = r.meter_id
    WHERE s.last_communication > $1 AND s.last_communication <= $1 + $16 * interval '1 second'
)"#,
    "\nSELECT id, ARRAY(SELECT meter_id FROM report) FROM ticket"
);

const FIND_ORIGINAL: &str = "SELECT id FROM callcenter_tickets WHERE external_ticket_id = $1";

/// Stores the ticket; with a report signal (`canonical::from_ticket`), also audits the report.
pub fn store(
    client: &mut SpiClient<'_>,
    ticket: &Ticket,
    at: TimestampWithTimeZone,
    raw_payload: RawJsonb,
    report: Option<&MeterSignal>,
) -> SpiResult<Stored<Uuid>> {
    let customer = &ticket.customer;
    let inserted = execute(
        client,
        INSERT,
        &[
            arg(at),
            arg(Source::CallCenter.as_str()),
            arg(ticket.ticket_id.as_str()),
            arg(report.map(|r| r.confidence)),
            arg(report.map(|r| JsonB(r.metadata.clone()))),
            arg(customer.meter_number.as_deref()),
            arg(ticket.intake.intake_id.as_deref()),
            arg(ticket.intake.oms_event_id.as_deref()),
            arg(ticket.status.as_str()),
            arg(ticket.source.as_deref()),
            arg(customer.phone.as_deref()),
            arg(customer.address.as_deref()),
            arg(customer.notes.as_deref()),
            arg(raw_payload),
            arg(report.is_some()),
            arg(crate::gucs::call_verify_window_seconds()),
        ],
    )?;
    if !inserted.is_empty() {
        let (id, signalled) = inserted.first().get_two::<Uuid, Vec<Uuid>>()?;
        return Ok(Stored {
            id: id.expect("INSERT ... RETURNING id"),
            duplicate: false,
            signalled: signalled.unwrap_or_default(),
        });
    }
    let id = execute(client, FIND_ORIGINAL, &[arg(ticket.ticket_id.as_str())])?
        .first()
        .get_one::<Uuid>()?
        .expect("the conflicting ticket is visible once its inserter committed");
    Ok(Stored {
        id,
        duplicate: true,
        signalled: Vec::new(),
    })
}
