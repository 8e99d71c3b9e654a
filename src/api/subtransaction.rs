//! Runs an event's writes in an internal subtransaction, as a PL/pgSQL `EXCEPTION` block does.
//!
//! Payloads are validated before anything is written, so a database error here is exceptional;
//! when one happens, the subtransaction takes every row of the event back with it, and the
//! caller's transaction stays usable for the quarantine row (SPEC §6: nothing half-written).

use std::panic::AssertUnwindSafe;

use pgrx::pg_sys;
use pgrx::pg_sys::panic::CaughtError;
use pgrx::prelude::*;

use crate::correlation::locks;
use crate::db::transaction_snapshot_is_fixed;

/// How often a deadlock victim is run again before its error reaches the caller. Under READ
/// COMMITTED each attempt takes a fresh snapshot, so the winner's commit is visible to the retry.
const DEADLOCK_ATTEMPTS: usize = 3;

/// How often an ingest runs again to take a feeder's lock exclusively (`locks::escalate`): once
/// per feeder its signal rolls up, and a signal reaches very few feeders.
const ESCALATIONS: usize = 8;

/// Runs `work` in a subtransaction: committed into the caller's transaction on success, rolled
/// back on error, and retried when it was chosen as a deadlock victim or found a feeder roll-up
/// due under a shared lock.
pub fn run<T>(work: impl FnMut() -> T) -> Result<T, CaughtError> {
    let outcome = run_attempts(work);
    locks::end_of_ingest();
    if outcome.is_ok() {
        locks::ingest_kept_its_writes();
    }
    outcome
}

fn run_attempts<T>(mut work: impl FnMut() -> T) -> Result<T, CaughtError> {
    let mut attempt = 1;
    let mut escalations = 0;
    loop {
        locks::attempt_begins();
        let outcome = once(&mut work);
        if outcome.is_err() && locks::escalation_requested() && escalations < ESCALATIONS {
            escalations += 1;
            continue;
        }
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
