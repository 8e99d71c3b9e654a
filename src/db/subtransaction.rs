//! Runs work in an internal subtransaction, as a PL/pgSQL `EXCEPTION` block does: an event's
//! writes (a database error takes every row of the event back, and the caller's transaction stays
//! usable for the quarantine row, SPEC §6), or a correlator batch (a signal whose correlation fails
//! is set aside, and the queue moves on).

use std::panic::AssertUnwindSafe;

use pgrx::pg_sys;
use pgrx::pg_sys::panic::CaughtError;
use pgrx::prelude::*;

use crate::db::transaction_snapshot_is_fixed;

/// How often a deadlock victim is run again before its error reaches the caller. Under READ
/// COMMITTED each attempt takes a fresh snapshot, so the winner's commit is visible to the retry.
const DEADLOCK_ATTEMPTS: usize = 3;

/// Runs `work` in a subtransaction: committed into the caller's transaction on success, rolled
/// back on error, and retried when it was chosen as a deadlock victim.
pub fn run<T>(mut work: impl FnMut() -> T) -> Result<T, CaughtError> {
    let mut attempt = 1;
    loop {
        let outcome = once(&mut work);
        match outcome {
            Err(CaughtError::PostgresError(report))
                if report.sql_error_code() == PgSqlErrorCode::ERRCODE_T_R_DEADLOCK_DETECTED
                    && attempt < DEADLOCK_ATTEMPTS
                    && !transaction_snapshot_is_fixed() =>
            {
                attempt += 1;
            }
            outcome => return outcome,
        }
    }
}

fn once<T>(work: &mut impl FnMut() -> T) -> Result<T, CaughtError> {
    unsafe {
        let caller_context = pg_sys::CurrentMemoryContext;
        let caller_owner = pg_sys::CurrentResourceOwner;
        pg_sys::BeginInternalSubTransaction(std::ptr::null());
        // Results are allocated where the caller can still read them after the release.
        pg_sys::MemoryContextSwitchTo(caller_context);
        let outcome = PgTryBuilder::new(AssertUnwindSafe(|| Ok(work())))
            .catch_others(Err)
            .execute();
        match outcome {
            Ok(_) => pg_sys::ReleaseCurrentSubTransaction(),
            Err(_) => pg_sys::RollbackAndReleaseCurrentSubTransaction(),
        }
        pg_sys::MemoryContextSwitchTo(caller_context);
        pg_sys::CurrentResourceOwner = caller_owner;
        outcome
    }
}
