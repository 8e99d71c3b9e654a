//! `callcenter_tickets` and its children. The redelivery key is `ticketId` (SPEC §6).

use pgrx::datum::TimestampWithTimeZone;
use pgrx::spi::{SpiClient, SpiResult};
use pgrx::Uuid;

use super::{inserted_id, Stored};
use crate::api::jsonb::RawJsonb;
use crate::db::{arg, execute};
use crate::payload::callcenter::Ticket;

// The customer is linked to the meter by number whatever the meter's status: the link records who
// called about which meter; only the audit (in `registry`) is limited to active meters.
const INSERT: &str = r#"
WITH ticket AS (
    INSERT INTO callcenter_tickets
        (id, external_ticket_id, intake_id, oms_event_id, status, intake_timestamp, source)
    VALUES (oms_uuid_v7(), $1, $2, $3, $4, $5, $6)
    ON CONFLICT (external_ticket_id) DO NOTHING
    RETURNING id
), customer AS (
    INSERT INTO callcenter_customers (ticket_id, phone, meter_number, address, notes, meter_id)
    SELECT id, $7, $8, $9, $10, (SELECT m.id FROM oms_meters m WHERE m.meter_number = $8)
    FROM ticket
), history AS (
    INSERT INTO callcenter_ticket_status_history (ticket_id, status, changed_at, note)
    SELECT id, $4, $5, 'ticket received' FROM ticket
), raw AS (
    INSERT INTO callcenter_raw_messages (ticket_id, raw_payload)
    SELECT id, $11 FROM ticket
)
SELECT id FROM ticket
"#;

const FIND_ORIGINAL: &str = "SELECT id FROM callcenter_tickets WHERE external_ticket_id = $1";

pub fn store(
    client: &mut SpiClient<'_>,
    ticket: &Ticket,
    at: TimestampWithTimeZone,
    raw_payload: RawJsonb,
) -> SpiResult<Stored<Uuid>> {
    let customer = &ticket.customer;
    let inserted = inserted_id::<Uuid>(execute(
        client,
        INSERT,
        &[
            arg(ticket.ticket_id.as_str()),
            arg(ticket.intake.intake_id.as_deref()),
            arg(ticket.intake.oms_event_id.as_deref()),
            arg(ticket.status.as_str()),
            arg(at),
            arg(ticket.source.as_deref()),
            arg(customer.phone.as_deref()),
            arg(customer.meter_number.as_deref()),
            arg(customer.address.as_deref()),
            arg(customer.notes.as_deref()),
            arg(raw_payload),
        ],
    )?)?;
    if let Some(id) = inserted {
        return Ok(Stored {
            id,
            duplicate: false,
        });
    }
    let id = execute(client, FIND_ORIGINAL, &[arg(ticket.ticket_id.as_str())])?
        .first()
        .get_one::<Uuid>()?
        .expect("the conflicting ticket is visible once its inserter committed");
    Ok(Stored {
        id,
        duplicate: true,
    })
}
