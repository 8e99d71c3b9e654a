//! The device locks that serialize outage work (SPEC §5.3, concurrency).
//!
//! Every ingest that can change outages takes, before it touches a meter, transaction-level
//! advisory locks on the devices its meters hang from, all in one statement, in the order of the
//! locks' identity, so nothing waits in a circle:
//! - each meter's DP and its service (its ONU's building, or itself), exclusively: opening,
//!   joining, rolling up and restoring a service or DP outage happen one transaction at a time;
//! - each meter's feeder (else its substation), shared: signals on different DPs of one feeder run
//!   side by side, and everything that changes a feeder as a whole (a SCADA alarm, a feeder
//!   roll-up) takes the feeder exclusively and waits for them.
//!
//! Two things a shared feeder lock leaves open are closed here too. Outages wider than a DP, which
//! signals from many DPs join and restore at once, are locked row by row before they are changed
//! (`lock_outages`). And the feeder roll-up check takes the feeder's check lock, so of two signals
//! that each add a child to a feeder, the second sees the first's. A roll-up found due takes the
//! feeder exclusively when no other transaction holds it (`try_take_feeder_exclusively`); else the
//! ingest runs again from the start waiting for it (`escalate`), because a held shared lock cannot
//! be upgraded while others hold it without two holders waiting for each other.
//!
//! Under REPEATABLE READ or SERIALIZABLE a transaction cannot see what it waited for, so there every
//! lock is exclusive, as if escalated from the start.

use std::cell::{Cell, RefCell};

use pgrx::spi::{SpiClient, SpiResult};
use pgrx::Uuid;

use super::rules::DeviceKey;
use crate::canonical::MeterSelector;
use crate::db::{arg, execute, transaction_snapshot_is_fixed};

/// The advisory lock class of outage devices (`pg_locks.classid`).
const DEVICE_LOCK_CLASS: i32 = 1869440367;
/// The class of the feeder roll-up check locks: taken after row locks, so never to be confused with
/// a device lock whose key hashes alike.
const FEEDER_CHECK_LOCK_CLASS: i32 = 1869440368;

/// A meter's place in the topology, for statements that name their meters in a CTE `target(id)`:
/// its feeder as SPEC §3 scopes it (its own column, else the mapping tables), else its DP's
/// feeder; its substation (its own column, else its feeder's, else the mapping table). Columns: meter_id, customer_key (the customer, or the meter when it has
/// none), customer_id, dp_id, onu_id, last_event_at (of its newest applied event), feeder_id,
/// substation_id.
macro_rules! located_meters {
    () => {
        r#"
SELECT m.id AS meter_id, coalesce(m.customer_id, m.id) AS customer_key, m.customer_id, m.dp_id, m.onu_id,
       m.last_event_at, t.feeder_id, t.substation_id
FROM target s
JOIN oms_meters m ON m.id = s.id
LEFT JOIN network_distribution_points dp ON dp.id = m.dp_id
CROSS JOIN LATERAL (
    SELECT coalesce(m.feeder_id,
                    (SELECT fm.feeder_id FROM network_feeder_meters fm WHERE fm.meter_id = m.id
                     ORDER BY fm.priority NULLS LAST, fm.feeder_id LIMIT 1),
                    (SELECT sm.feeder_id FROM network_substation_meters sm
                     WHERE sm.meter_id = m.id AND sm.feeder_id IS NOT NULL
                     ORDER BY sm.priority NULLS LAST, sm.feeder_id LIMIT 1),
                    dp.feeder_id) AS feeder_id) AS f0
LEFT JOIN network_feeders f ON f.id = f0.feeder_id
CROSS JOIN LATERAL (
    SELECT f0.feeder_id,
           coalesce(m.substation_id, f.substation_id,
                    (SELECT sm.substation_id FROM network_substation_meters sm WHERE sm.meter_id = m.id
                     ORDER BY sm.priority NULLS LAST, sm.substation_id LIMIT 1)) AS substation_id) AS t
"#
    };
}
pub(crate) use located_meters;

// Takes the advisory locks of `$source` (rows of `key text, exclusive bool`) in lock class
// `$class`, in the order of their identity, the key's hash: two sessions can then never hold each
// other's next lock, even when two keys hash alike (they are one lock, exclusive if either is).
// The lock calls run after the sort (PostgreSQL evaluates a volatile target list after ORDER BY).
macro_rules! lock_in_identity_order {
    ($class:literal, $source:literal) => {
        concat!(
            "SELECT CASE WHEN exclusive THEN pg_catalog.pg_advisory_xact_lock(",
            $class,
            ", h) ELSE pg_catalog.pg_advisory_xact_lock_shared(",
            $class,
            ", h) END\nFROM (SELECT pg_catalog.hashtext(key) AS h, bool_or(exclusive) AS exclusive FROM ",
            $source,
            " GROUP BY 1) AS keys\nORDER BY h\n"
        )
    };
}

// Locks the devices of the meters a source event names ($1 ONU, $2 meter numbers, $3 asset mRIDs,
// $4 usage-point mRIDs), in lock class $5, in one statement: the DP and the service exclusively,
// the feeder (else the substation) shared, unless every lock is to be exclusive ($6) or the feeder
// is among the escalated ones ($7, which are locked whether or not the meters name them).
const LOCK_METER_DEVICES: &str = concat!(
    r#"
WITH target AS (
    SELECT id FROM oms_meters WHERE onu_id = $1
    UNION SELECT id FROM oms_meters WHERE meter_number = ANY ($2)
    UNION SELECT id FROM oms_meters WHERE asset_mrid = ANY ($3)
    UNION SELECT id FROM oms_meters WHERE usage_point_mrid = ANY ($4)
), located AS ("#,
    located_meters!(),
    r#"), wanted AS (
    SELECT k.key, k.exclusive OR $6 OR k.key = ANY ($7) AS exclusive
    FROM located l
    CROSS JOIN LATERAL (VALUES
        (coalesce('feeder:' || l.feeder_id, 'substation:' || l.substation_id), false),
        ('dp:' || l.dp_id, true),
        (CASE WHEN l.onu_id IS NOT NULL THEN 'service:onu:' || l.onu_id ELSE 'service:meter:' || l.meter_id END, true)
    ) AS k(key, exclusive)
    WHERE k.key IS NOT NULL
    UNION ALL
    SELECT unnest($7), true
)
"#,
    lock_in_identity_order!("$5", "wanted")
);

// A SCADA device's lock keys: the substation and each of its feeders, or the one feeder.
const SCADA_LOCK_KEYS: &str = r#"
SELECT 'substation:' || $1::uuid WHERE $2::uuid IS NULL AND $1::uuid IS NOT NULL
UNION ALL
SELECT 'feeder:' || f.id FROM network_feeders f WHERE $2::uuid IS NULL AND f.substation_id = $1
UNION ALL
SELECT 'feeder:' || $2::uuid WHERE $2::uuid IS NOT NULL
"#;

// The locks of keys ($2; $3 whether each is exclusive) in class $1.
const LOCK_ALL: &str = lock_in_identity_order!(
    "$1",
    "unnest($2::text[], $3::bool[]) AS wanted(key, exclusive)"
);

// Outages ($1) locked for a change, in id order: their ids and whether each is still open.
const LOCK_OUTAGES: &str = r#"
SELECT o.id, o.status IN ('detected', 'confirmed', 'in_progress')
FROM oms_outage_events o WHERE o.id = ANY ($1)
ORDER BY o.id
FOR NO KEY UPDATE
"#;

thread_local! {
    /// Feeders this ingest has found a roll-up due on, to lock exclusively when it runs again.
    static EXCLUSIVE_FEEDERS: RefCell<Vec<Uuid>> = const { RefCell::new(Vec::new()) };
    /// An escalation was asked for by the error now unwinding.
    static ESCALATING: Cell<bool> = const { Cell::new(false) };
    /// The transaction (its local id) in which an ingest of this backend last kept its locks.
    static LOCKS_KEPT_IN: Cell<Option<u32>> = const { Cell::new(None) };
    /// The current attempt of an ingest took device locks.
    static LOCKED_IN_ATTEMPT: Cell<bool> = const { Cell::new(false) };
}

/// An attempt of an ingest begins (its subtransaction holds no lock yet).
pub fn attempt_begins() {
    LOCKED_IN_ATTEMPT.with(|l| l.set(false));
}

fn local_transaction_id() -> u32 {
    unsafe { (*pgrx::pg_sys::MyProc).lxid }
}

/// An ingest ended with its writes: the device locks it took stay until the transaction ends.
pub fn ingest_kept_its_writes() {
    if LOCKED_IN_ATTEMPT.with(|l| l.replace(false)) {
        LOCKS_KEPT_IN.with(|t| t.set(Some(local_transaction_id())));
    }
}

/// Whether an earlier ingest of this transaction holds device locks. Such an ingest cannot take a
/// feeder exclusively: another transaction doing the same would hold the feeder shared from its
/// own earlier ingest, and each would wait for the other.
pub fn earlier_ingest_holds_locks() -> bool {
    LOCKS_KEPT_IN.with(|t| t.get() == Some(local_transaction_id()))
}

/// Whether this ingest holds the feeder's lock exclusively.
pub fn holds_feeder_exclusively(feeder: Uuid) -> bool {
    transaction_snapshot_is_fixed() || EXCLUSIVE_FEEDERS.with(|f| f.borrow().contains(&feeder))
}

// A device lock (key $2, class $1), exclusively, if no other transaction holds it.
const TRY_EXCLUSIVELY: &str =
    "SELECT pg_catalog.pg_try_advisory_xact_lock($1, pg_catalog.hashtext($2))";

/// Takes the feeder's lock exclusively when no other transaction holds it (this one may hold it
/// shared): a feeder roll-up due under the shared lock then goes ahead at once.
pub fn try_take_feeder_exclusively(client: &mut SpiClient<'_>, feeder: Uuid) -> SpiResult<bool> {
    let key = DeviceKey::Feeder(feeder.to_string()).to_string();
    let taken = execute(
        client,
        TRY_EXCLUSIVELY,
        &[arg(DEVICE_LOCK_CLASS), arg(key.as_str())],
    )?
    .first()
    .get_one::<bool>()?
    .unwrap_or(false);
    if taken {
        EXCLUSIVE_FEEDERS.with(|f| f.borrow_mut().push(feeder));
    }
    Ok(taken)
}

/// A feeder roll-up is due under a shared lock: ends the attempt with an error, to be run again
/// from the start holding the feeder exclusively (the caller's subtransaction takes back what the
/// attempt wrote, and its locks).
pub fn escalate(feeder: Uuid) -> ! {
    EXCLUSIVE_FEEDERS.with(|f| f.borrow_mut().push(feeder));
    ESCALATING.with(|e| e.set(true));
    pgrx::ereport!(
        pgrx::PgLogLevel::ERROR,
        pgrx::PgSqlErrorCode::ERRCODE_T_R_SERIALIZATION_FAILURE,
        "a feeder roll-up is due: the ingest runs again with the feeder locked exclusively"
    );
    unreachable!("ereport(ERROR) does not return")
}

/// Whether the error that just ended an attempt was an escalation (and forgets that it was).
pub fn escalation_requested() -> bool {
    ESCALATING.with(|e| e.replace(false))
}

/// Forgets the escalations of an ingest that is over.
pub fn end_of_ingest() {
    EXCLUSIVE_FEEDERS.with(|f| f.borrow_mut().clear());
    ESCALATING.with(|e| e.set(false));
}

/// Takes the device locks of the meters a signal names, before it touches them.
pub fn lock_devices_of(client: &mut SpiClient<'_>, selector: &MeterSelector) -> SpiResult<()> {
    let none: &[String] = &[];
    let (onu, meter_numbers, asset_mrids, usage_point_mrids) = match selector {
        MeterSelector::BehindOnu {
            onu_id,
            meter_numbers,
        } => (Some(*onu_id), &meter_numbers[..], none, none),
        MeterSelector::ByMrid {
            asset_mrids,
            usage_point_mrids,
        } => {
            // A meter number equal to an asset mRID names the meter too (SPEC §4.3).
            (
                None,
                &asset_mrids[..],
                &asset_mrids[..],
                &usage_point_mrids[..],
            )
        }
        MeterSelector::ReportedMeter(number) => (None, std::slice::from_ref(number), none, none),
    };
    let escalated: Vec<String> = EXCLUSIVE_FEEDERS.with(|f| {
        f.borrow()
            .iter()
            .map(|id| DeviceKey::Feeder(id.to_string()).to_string())
            .collect()
    });
    LOCKED_IN_ATTEMPT.with(|l| l.set(true));
    execute(
        client,
        LOCK_METER_DEVICES,
        &[
            arg(onu),
            arg(meter_numbers.to_vec()),
            arg(asset_mrids.to_vec()),
            arg(usage_point_mrids.to_vec()),
            arg(DEVICE_LOCK_CLASS),
            arg(transaction_snapshot_is_fixed()),
            arg(escalated),
        ],
    )?;
    Ok(())
}

/// Takes the device locks of a SCADA alarm's device, exclusively.
pub fn lock_scada_device(
    client: &mut SpiClient<'_>,
    substation: Option<Uuid>,
    feeder: Option<Uuid>,
) -> SpiResult<()> {
    let mut keys = Vec::new();
    for row in execute(client, SCADA_LOCK_KEYS, &[arg(substation), arg(feeder)])? {
        if let Some(key) = row.get::<String>(1)? {
            keys.push(key);
        }
    }
    let exclusive = vec![true; keys.len()];
    lock_all(client, &keys, &exclusive)
}

/// Takes the roll-up check locks of feeders: the check that follows sees every child that a
/// transaction checking before it added (a feeder may be reached through a DP without being held).
pub fn lock_feeder_checks(client: &mut SpiClient<'_>, feeders: &[Uuid]) -> SpiResult<()> {
    let keys: Vec<String> = feeders
        .iter()
        .map(|f| format!("feeder-check:{f}"))
        .collect();
    let exclusive = vec![true; keys.len()];
    lock_all_in(client, FEEDER_CHECK_LOCK_CLASS, &keys, &exclusive)
}

/// Locks outages that signals from other DPs may be changing at the same time (the caller holds
/// their feeder shared), in id order; returns those still open.
pub fn lock_outages(client: &mut SpiClient<'_>, outages: &[Uuid]) -> SpiResult<Vec<Uuid>> {
    let mut open = Vec::new();
    if outages.is_empty() {
        return Ok(open);
    }
    for row in execute(client, LOCK_OUTAGES, &[arg(outages.to_vec())])? {
        if let (Some(id), Some(true)) = (row.get::<Uuid>(1)?, row.get::<bool>(2)?) {
            open.push(id);
        }
    }
    Ok(open)
}

fn lock_all(client: &mut SpiClient<'_>, keys: &[String], exclusive: &[bool]) -> SpiResult<()> {
    lock_all_in(client, DEVICE_LOCK_CLASS, keys, exclusive)
}

fn lock_all_in(
    client: &mut SpiClient<'_>,
    class: i32,
    keys: &[String],
    exclusive: &[bool],
) -> SpiResult<()> {
    if !keys.is_empty() {
        if class == DEVICE_LOCK_CLASS {
            LOCKED_IN_ATTEMPT.with(|l| l.set(true));
        }
        execute(
            client,
            LOCK_ALL,
            &[arg(class), arg(keys.to_vec()), arg(exclusive.to_vec())],
        )?;
    }
    Ok(())
}
