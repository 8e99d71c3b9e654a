//! Everything that talks to PostgreSQL through SPI.
//!
//! Statements are `&'static str` constants, prepared once per backend on first use and kept
//! (STYLE practice 3); payload values only ever travel as bound parameters (SPEC §7). All names
//! are unqualified: every entry point pins `search_path` to the extension's schema first.

pub mod jsonb;
pub mod queue;
pub mod registry;
pub mod scada_check;
pub mod store;
pub mod subtransaction;
pub mod topology;

use std::cell::{Cell, RefCell};
use std::collections::HashMap;

use pgrx::datum::{DatumWithOid, Timestamp, TimestampWithTimeZone};
use pgrx::pg_sys::PgOid;
use pgrx::spi::{OwnedPreparedStatement, SpiClient, SpiResult, SpiTupleTable};

use crate::payload::EventTime;

thread_local! {
    /// Plans kept for the life of the backend, keyed by the address of their SQL text.
    static PREPARED: RefCell<HashMap<usize, OwnedPreparedStatement>> = RefCell::new(HashMap::new());
}

/// Runs one of the extension's statements with bound arguments, preparing it on first use.
///
/// The argument types of the first call fix the plan's parameter types, so each statement must
/// always be called with the same Rust types (typed NULLs included).
pub fn execute<'conn>(
    client: &mut SpiClient<'conn>,
    sql: &'static str,
    args: &[DatumWithOid<'_>],
) -> SpiResult<SpiTupleTable<'conn>> {
    let key = sql.as_ptr() as usize;
    let cached = PREPARED.with(|p| p.borrow().contains_key(&key));
    if !cached {
        let types: Vec<PgOid> = args.iter().map(|a| PgOid::from(a.oid())).collect();
        let plan = client.prepare_mut(sql, &types)?.keep();
        PREPARED.with(|p| p.borrow_mut().insert(key, plan));
    }
    PREPARED.with(|p| {
        let plans = p.borrow();
        let plan = plans.get(&key).expect("plan was just prepared");
        client.update(plan, None, args)
    })
}

thread_local! {
    /// Ingest calls made by this backend, and the one at which its plans are made again.
    static INGEST_CALLS: Cell<u64> = const { Cell::new(0) };
    static NEXT_REPLAN: Cell<u64> = const { Cell::new(FIRST_REPLAN) };
}

/// A generic plan fits the tables as they were when it was made. Made on a fresh install's empty
/// outage tables, it reads them whole once a storm has filled them (the flapping check and the
/// locate went from 0.1 ms to 20-90 ms, and up to 5 s, within 20,000 events), until autovacuum's
/// ANALYZE invalidates it. So at its 64th, 128th, 256th... ingest call a backend drops its cached
/// plans, ours and those of the PL/pgSQL functions the statements call, and they are made again
/// for the tables as they have grown with the events it wrote.
const FIRST_REPLAN: u64 = 64;

/// Counts an ingest call of this backend, dropping its cached plans when it is time (`FIRST_REPLAN`).
pub fn count_ingest_call() {
    let calls = INGEST_CALLS.with(|c| {
        c.set(c.get() + 1);
        c.get()
    });
    if calls >= NEXT_REPLAN.with(Cell::get) {
        NEXT_REPLAN.with(|n| n.set(n.get().saturating_mul(2)));
        // Marks every cached plan of the backend invalid: each is made again at its next use.
        unsafe { pgrx::pg_sys::ResetPlanCache() };
    }
}

/// Runs a statement planned for these argument values, every time. For the few statements whose
/// best plan depends on the values (a SCADA check over 150 meters or 100,000), where planning
/// costs little next to running.
pub fn execute_planned_for_values<'conn>(
    client: &mut SpiClient<'conn>,
    sql: &'static str,
    args: &[DatumWithOid<'_>],
) -> SpiResult<SpiTupleTable<'conn>> {
    client.update(sql, None, args)
}

/// Microseconds between the Unix epoch and PostgreSQL's (2000-01-01).
const POSTGRES_EPOCH_OFFSET_MICROS: i64 = 946_684_800_000_000;

/// Turns a parsed event time into a `timestamptz`. A time without an offset is read in the
/// session's `TimeZone`, as `'...'::timestamptz` would read it (SPEC §4).
pub fn timestamptz(time: EventTime) -> Option<TimestampWithTimeZone> {
    match time {
        EventTime::Absolute { unix_micros } => {
            TimestampWithTimeZone::try_from(unix_micros - POSTGRES_EPOCH_OFFSET_MICROS).ok()
        }
        EventTime::Local(naive) => {
            let micros = naive.and_utc().timestamp_micros() - POSTGRES_EPOCH_OFFSET_MICROS;
            Timestamp::try_from(micros)
                .ok()
                .map(TimestampWithTimeZone::from)
        }
    }
}

/// A time-ordered UUID (RFC 9562 version 7), for keys chosen before their row is written.
pub fn new_uuid_v7() -> pgrx::Uuid {
    pgrx::Uuid::from_bytes(*uuid::Uuid::now_v7().as_bytes())
}

/// Whether the caller's transaction reads through one snapshot (REPEATABLE READ, SERIALIZABLE)
/// rather than a new one per statement (READ COMMITTED).
pub fn transaction_snapshot_is_fixed() -> bool {
    unsafe { pgrx::pg_sys::XactIsoLevel >= pgrx::pg_sys::XACT_REPEATABLE_READ as i32 }
}

/// The five-character SQLSTATE of an error code (PostgreSQL packs it six bits a character).
pub fn sqlstate(code: pgrx::PgSqlErrorCode) -> String {
    let packed = code as isize as u32;
    (0..5)
        .map(|i| char::from(((packed >> (6 * i)) & 0x3F) as u8 + b'0'))
        .collect()
}

/// A typed SQL NULL or value, for optional arguments.
pub fn arg<'a, T: pgrx::IntoDatum>(value: T) -> DatumWithOid<'a> {
    DatumWithOid::from(value)
}
