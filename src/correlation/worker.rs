//! The correlator's background worker (SPEC §5): it drains a database's queue a batch per
//! transaction, so each batch is visible as soon as it is decided.
//!
//! - With `shared_preload_libraries = 'oms_correlation'` one starts with the server for the
//!   database `oms_correlation.database` (as pg_cron's `cron.database_name`), and the postmaster
//!   starts it again a second after it dies, `pg_terminate_backend` included.
//! - Without it (or for another database), the first ingest call in deferred mode that finds no
//!   worker for its database registers one (`ensure_running`); ingest calls look again every few
//!   seconds, so a worker that died is back within that. Such a worker leaves after a while with
//!   nothing to do, and is never restarted by the postmaster: a database it served may have been
//!   dropped (and while it is connected, a plain DROP DATABASE waits for no one and fails).
//! - One per database: a worker takes a session lock of its database first. If another holds it,
//!   one an ingest call registered leaves; the one started with the server waits for the lock
//!   (leaving with exit code 0 would unregister it). `DROP EXTENSION` stops it (the DROP guard
//!   terminates it first); the one started with the server then waits, idle, for the extension
//!   to be created again.

use std::cell::Cell;
use std::time::Duration;

use pgrx::bgworkers::{BackgroundWorker, BackgroundWorkerBuilder, SignalWakeFlags};
use pgrx::prelude::*;

use super::run::{self, By};
use crate::gucs;

/// What pg_stat_activity shows for it (application_name, and backend_type).
pub const NAME: &str = "oms_correlation worker";

/// The advisory lock class of "this database has its worker" (`pg_locks.classid`; the view
/// `oms_correlation_status` looks for it).
const WORKER_LOCK_CLASS: i32 = 1869440369;

/// Registers the worker of `oms_correlation.database`, from `_PG_init` under preload.
pub fn register_static() {
    if unsafe { !pg_sys::process_shared_preload_libraries_in_progress } {
        return;
    }
    BackgroundWorkerBuilder::new(NAME)
        .set_type(NAME)
        .set_library("oms_correlation")
        .set_function("oms_correlation_worker_main")
        .set_argument(0i32.into_datum())
        .enable_spi_access()
        .set_restart_time(Some(Duration::from_secs(1)))
        .load();
}

thread_local! {
    /// When this backend last saw its database's worker running (µs since 2000).
    static SEEN_AT: Cell<i64> = const { Cell::new(i64::MIN) };
}

/// How often an ingest call looks again for its database's worker.
const LOOK_AGAIN_MICROS: i64 = 5_000_000;

const RUNNING: &str = "SELECT EXISTS (SELECT FROM pg_catalog.pg_stat_activity \
     WHERE datid = (SELECT oid FROM pg_catalog.pg_database WHERE datname = pg_catalog.current_database()) \
       AND application_name = 'oms_correlation worker')";

/// Makes sure the database has a worker, registering one when none runs: the deferred mode's
/// promise that outages follow within a second holds without preload too.
pub fn ensure_running(client: &mut pgrx::spi::SpiClient<'_>) -> pgrx::spi::SpiResult<()> {
    let now = unsafe { pg_sys::GetCurrentTimestamp() };
    if SEEN_AT.with(|seen| now.saturating_sub(seen.get()) < LOOK_AGAIN_MICROS) {
        return Ok(());
    }
    let running = crate::db::execute(client, RUNNING, &[])?
        .first()
        .get_one::<bool>()?
        .unwrap_or(false);
    if !running {
        let database = unsafe { pg_sys::MyDatabaseId };
        let registered = BackgroundWorkerBuilder::new(NAME)
            .set_type(NAME)
            .set_library("oms_correlation")
            .set_function("oms_correlation_worker_main")
            // The oid's bits (the worker reads them back as u32): an oid above i32::MAX is not the
            // server's worker's 0.
            .set_argument((database.to_u32() as i32).into_datum())
            .enable_spi_access()
            .set_restart_time(None)
            .load_dynamic();
        if registered.is_err() {
            pgrx::warning!(
                "oms_correlation: no background worker slot is free for the correlator (max_worker_processes); \
                 outages follow only on SCADA alarms, oms_correlate_pending() or oms_correlation.correlate = 'immediate'"
            );
        }
    }
    SEEN_AT.with(|seen| seen.set(now));
    Ok(())
}

// The database's workers, stopped and waited for (five seconds at most each).
const STOP: &str =
    "SELECT pg_catalog.pg_terminate_backend(pid, 5000) FROM pg_catalog.pg_stat_activity \
     WHERE datname = pg_catalog.current_database() AND application_name = 'oms_correlation worker' \
       AND pid <> pg_catalog.pg_backend_pid()";

/// Stops the database's worker before the extension is dropped (the DROP guard calls it): a batch
/// in flight would otherwise hold locks the DROP needs while it waits for the DROP's.
pub fn stop() {
    Spi::run(STOP)
        .unwrap_or_else(|e| pgrx::warning!("oms_correlation: could not stop the worker: {e}"));
}

const EXTENSION: &str =
    "SELECT extversion::text FROM pg_catalog.pg_extension WHERE extname = 'oms_correlation'";
const TAKE_DATABASE: &str = "SELECT pg_catalog.pg_try_advisory_lock($1, 0)";
const SEARCH_PATH: &str = "SELECT pg_catalog.set_config('search_path', \
     (SELECT pg_catalog.quote_ident(n.nspname) FROM pg_catalog.pg_extension e \
      JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'oms_correlation') \
     || ', pg_catalog, pg_temp', true)";
// The database's own settings of the correlator (ALTER DATABASE ... SET oms_correlation.*), read
// again at every batch: a worker connects once, and must not need a restart to follow them.
const DATABASE_SETTINGS: &str = r#"
SELECT pg_catalog.set_config(split_part(s.setting, '=', 1), substr(s.setting, strpos(s.setting, '=') + 1), true)
FROM pg_catalog.pg_db_role_setting d, unnest(d.setconfig) AS s(setting)
WHERE d.setdatabase = (SELECT oid FROM pg_catalog.pg_database WHERE datname = pg_catalog.current_database())
  AND d.setrole = 0 AND s.setting LIKE 'oms_correlation.%'
"#;

/// A worker registered by an ingest call leaves after this long with an empty queue; the next
/// ingest call registers another.
const IDLE_EXIT: Duration = Duration::from_secs(10);

/// What one turn of the worker found.
enum Turn {
    /// It correlated a batch: look again at once.
    Busy,
    /// Another correlator holds the lock (a SCADA alarm's call, `oms_correlate_pending()`, or a
    /// session holding the state row): not idle, since the queue may be waiting behind it.
    Blocked,
    /// Nothing to do now, but outages held by the declaration delay are waiting for the wall
    /// clock: not idle, someone must write them.
    Holding,
    Idle,
    /// The database's schema is at another version than this library.
    Waiting(String),
    /// The extension is gone from the database: leave for good.
    Gone,
}

unsafe extern "C-unwind" {
    /// PostgreSQL's SIGTERM handler of a backend (`tcop/postgres.c`), itself: pgrx's `pg_sys::die`
    /// wraps it for calls from Rust, which a signal handler must not be.
    #[link_name = "die"]
    fn postgres_die(postgres_signal_arg: std::ffi::c_int);
}

#[pg_guard]
#[unsafe(no_mangle)]
pub extern "C-unwind" fn oms_correlation_worker_main(argument: pg_sys::Datum) {
    // SIGTERM (pg_terminate_backend, DROP DATABASE ... WITH (FORCE), a fast shutdown) stops a batch
    // at its next interrupt check (a statement, a lock wait), as it stops any backend: PostgreSQL's
    // own handler, which ends the process and rolls the batch back. Flagged only, a batch of 50,000
    // signals ran on for seconds, and one waiting for a lock waited on. Installed before signals
    // are unblocked, so that none arrives to a handler nothing reads.
    unsafe {
        pg_sys::pqsignal(pg_sys::SIGTERM as i32, Some(postgres_die));
    }
    BackgroundWorker::attach_signal_handlers(SignalWakeFlags::SIGHUP);
    let database = argument.value() as u32;
    if database == 0 {
        BackgroundWorker::connect_worker_to_spi(Some(&gucs::worker_database()), None);
    } else {
        BackgroundWorker::connect_worker_to_spi_by_oid(Some(pg_sys::Oid::from(database)), None);
    }
    unsafe {
        pg_sys::SetConfigOption(
            c"application_name".as_ptr(),
            c"oms_correlation worker".as_ptr(),
            pg_sys::GucContext::PGC_USERSET,
            pg_sys::GucSource::PGC_S_SESSION,
        );
    }
    let take_database = || {
        BackgroundWorker::transaction(|| {
            Spi::connect_mut(|client| {
                crate::db::execute(client, TAKE_DATABASE, &[crate::db::arg(WORKER_LOCK_CLASS)])?
                    .first()
                    .get_one::<bool>()
            })
        }) == Ok(Some(true))
    };
    if !take_database() {
        // Another worker serves this database. One an ingest call registered leaves. The server's
        // own waits for it to go: it finds one when an ingest call came while it was being
        // started again after it died, and leaving (exit code 0) would unregister it until the
        // server restarts.
        if database != 0 {
            return;
        }
        loop {
            nap(Duration::from_secs(1));
            if take_database() {
                break;
            }
        }
    }
    super::kept::keep_between_drains();
    let version = env!("CARGO_PKG_VERSION");
    let mut told_of_version = false;
    let mut idle_since = std::time::Instant::now();
    loop {
        let turn = BackgroundWorker::transaction(|| {
            Spi::connect_mut(|client| -> pgrx::spi::SpiResult<Turn> {
                let installed = crate::db::execute(client, EXTENSION, &[])?;
                let installed = if installed.is_empty() {
                    None
                } else {
                    installed.first().get_one::<String>()?
                };
                let Some(installed) = installed else {
                    return Ok(Turn::Gone);
                };
                if installed != version {
                    return Ok(Turn::Waiting(installed));
                }
                crate::db::execute(client, SEARCH_PATH, &[])?;
                crate::db::execute(client, DATABASE_SETTINGS, &[])?;
                if !run::try_lock(client)? {
                    return Ok(Turn::Blocked);
                }
                let drained = run::drain(client, By::Worker, None, gucs::batch_size(), true)?;
                Ok(if drained.batches > 0 {
                    Turn::Busy
                } else if super::declaration::any_held(client)? {
                    Turn::Holding
                } else {
                    Turn::Idle
                })
            })
        });
        match turn {
            // A worker an ingest call registered leaves; the one started with the server (it serves
            // its database for good) waits for the extension to be created again.
            Ok(Turn::Gone) if database != 0 => return,
            Ok(Turn::Gone) => {
                if !BackgroundWorker::wait_latch(Some(Duration::from_secs(5))) {
                    unsafe { pg_sys::proc_exit(1) };
                }
                continue;
            }
            Ok(Turn::Busy) => {
                // SIGTERM between two batches.
                pgrx::check_for_interrupts!();
                idle_since = std::time::Instant::now();
                continue;
            }
            Ok(Turn::Blocked | Turn::Holding) => idle_since = std::time::Instant::now(),
            Ok(Turn::Idle) if database != 0 && idle_since.elapsed() >= IDLE_EXIT => return,
            Ok(Turn::Idle) => {}
            Ok(Turn::Waiting(installed)) => {
                if !told_of_version {
                    pgrx::log!(
                        "oms_correlation worker: the database is at {installed}, this library is {version}; \
                         waiting for ALTER EXTENSION oms_correlation UPDATE"
                    );
                    told_of_version = true;
                }
            }
            Err(e) => pgrx::warning!("oms_correlation worker: {e}"),
        }
        nap(Duration::from_millis(gucs::worker_naptime_ms()));
    }
}

/// Waits for `timeout` or a wake-up, then applies a reloaded configuration. A SIGTERM while
/// waiting ends the process in the wait's own interrupt check (FATAL, exit 1, which the postmaster
/// answers by starting the worker again a second later, unless the server is stopping); so does
/// the postmaster's death.
fn nap(timeout: Duration) {
    if !BackgroundWorker::wait_latch(Some(timeout)) {
        unsafe { pg_sys::proc_exit(1) };
    }
    if BackgroundWorker::sighup_received() {
        unsafe {
            pg_sys::ConfigReloadPending = 0;
            pg_sys::ProcessConfigFile(pg_sys::GucContext::PGC_SIGHUP);
        }
    }
}
