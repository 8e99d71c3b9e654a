//! When what the correlator keeps in a backend between batches (`registry_cache`,
//! `outage_cache`) must go: after any aborted transaction or subtransaction, whose uncommitted
//! changes it may hold, and at the end of each drain in any backend but the worker's.

use std::cell::Cell;

use pgrx::pg_sys;

thread_local! {
    // Moved by the abort callbacks, which must not touch the caches: an abort may come while one
    // is borrowed. Each cache remembers the count it was filled under.
    static ABORTS: Cell<u64> = const { Cell::new(0) };
    static CALLBACKS: Cell<bool> = const { Cell::new(false) };
    static LONG_LIVED: Cell<bool> = const { Cell::new(false) };
}

/// The worker keeps what it read for as long as it runs; any other backend only for one drain, so
/// that a pool of ingest connections in immediate mode does not each keep a copy.
pub fn keep_between_drains() {
    LONG_LIVED.with(|l| l.set(true));
}

pub fn between_drains() -> bool {
    LONG_LIVED.with(Cell::get)
}

/// How many (sub)transactions have aborted in this backend since it began keeping anything.
pub fn aborts() -> u64 {
    register_callbacks();
    ABORTS.with(Cell::get)
}

fn forget() {
    ABORTS.with(|a| a.set(a.get() + 1));
}

/// Registers, once per backend, the callbacks that count aborted (or prepared) transactions and
/// aborted subtransactions.
fn register_callbacks() {
    if CALLBACKS.with(|c| c.replace(true)) {
        return;
    }
    unsafe {
        pg_sys::RegisterXactCallback(Some(on_xact), std::ptr::null_mut());
        pg_sys::RegisterSubXactCallback(Some(on_subxact), std::ptr::null_mut());
    }
}

unsafe extern "C-unwind" fn on_xact(event: pg_sys::XactEvent::Type, _: *mut std::ffi::c_void) {
    // A prepared transaction may still be rolled back, from any session.
    if matches!(
        event,
        pg_sys::XactEvent::XACT_EVENT_ABORT
            | pg_sys::XactEvent::XACT_EVENT_PARALLEL_ABORT
            | pg_sys::XactEvent::XACT_EVENT_PREPARE
    ) {
        forget();
    }
}

unsafe extern "C-unwind" fn on_subxact(
    event: pg_sys::SubXactEvent::Type,
    _: pg_sys::SubTransactionId,
    _: pg_sys::SubTransactionId,
    _: *mut std::ffi::c_void,
) {
    if event == pg_sys::SubXactEvent::SUBXACT_EVENT_ABORT_SUB {
        forget();
    }
}
