//! Settings (SPEC §8), all under `oms_correlation.*`, settable per session, per role or in
//! `postgresql.conf`.
//!
//! A database runs the library its schema is bound to: 0.3.0 installed `oms_correlation-0.3.0.so`,
//! and from 0.4.0 on it is `oms_correlation.so`. A backend that ran the previous release's functions
//! and then, after `ALTER EXTENSION UPDATE`, this release's, has both loaded. The first defined the settings; defining them again would be an ERROR in the middle of
//! an ingest call. This copy then reads them by name instead (the accessors below), and sees what
//! the session set.

use std::ffi::CStr;
use std::sync::atomic::{AtomicBool, Ordering};

use pgrx::guc::{GucContext, GucFlags, GucRegistry, GucSetting};
use pgrx::{pg_sys, PostgresGucEnum};

#[derive(PostgresGucEnum, Clone, Copy, PartialEq, Eq, Debug)]
pub enum ScadaScope {
    /// Only meters with evidence of being off are affected.
    #[name = c"evidence"]
    Evidence,
    /// Every meter in scope is affected: SCADA is authoritative.
    #[name = c"topology"]
    Topology,
}

#[derive(PostgresGucEnum, Clone, Copy, PartialEq, Eq, Debug)]
pub enum OnInvalidPayload {
    /// Keep the payload in `oms_rejected_events`, WARN, return NULL.
    #[name = c"quarantine"]
    Quarantine,
    /// Raise an ERROR with the payload's SQLSTATE.
    #[name = c"error"]
    Error,
}

/// Seconds without communication after which a meter counts as silent (default 15 min).
static COMM_FRESH_WINDOW: GucSetting<i32> = GucSetting::<i32>::new(15 * 60);
static SCADA_SCOPE: GucSetting<ScadaScope> = GucSetting::<ScadaScope>::new(ScadaScope::Evidence);
static ON_INVALID_PAYLOAD: GucSetting<OnInvalidPayload> =
    GucSetting::<OnInvalidPayload>::new(OnInvalidPayload::Quarantine);
static ALLOW_DROP_WITH_DATA: GucSetting<bool> = GucSetting::<bool>::new(false);
static CONFIDENCE_SCADA: GucSetting<f64> = GucSetting::<f64>::new(0.90);
static CONFIDENCE_ONU: GucSetting<f64> = GucSetting::<f64>::new(0.85);
static CONFIDENCE_KAIFA: GucSetting<f64> = GucSetting::<f64>::new(0.90);
static CONFIDENCE_CALL_CENTER: GucSetting<f64> = GucSetting::<f64>::new(0.60);

// The correlation engine (SPEC §5.2-5.4); windows in seconds.
static ROLLUP_WINDOW: GucSetting<i32> = GucSetting::<i32>::new(5 * 60);
static ROLLUP_MIN_METERS: GucSetting<i32> = GucSetting::<i32>::new(3);
static ROLLUP_DP_FRACTION: GucSetting<f64> = GucSetting::<f64>::new(0.5);
static ROLLUP_DP_MIN_SHARE: GucSetting<f64> = GucSetting::<f64>::new(0.25);
static ROLLUP_MIN_CHILDREN: GucSetting<i32> = GucSetting::<i32>::new(2);
static ROLLUP_FEEDER_FRACTION: GucSetting<f64> = GucSetting::<f64>::new(0.3);
static JOIN_WINDOW: GucSetting<i32> = GucSetting::<i32>::new(30 * 60);
static NESTED_WINDOW: GucSetting<i32> = GucSetting::<i32>::new(10 * 60);
static MISMAP_WINDOW: GucSetting<i32> = GucSetting::<i32>::new(10);
static DECLARATION_DELAY: GucSetting<i32> = GucSetting::<i32>::new(60);
static CALL_VERIFY_WINDOW: GucSetting<i32> = GucSetting::<i32>::new(900);
static CONFIRM_CONFIDENCE: GucSetting<f64> = GucSetting::<f64>::new(0.8);

// Reliability (SPEC §5.5, §5.7).
static MOMENTARY_WINDOW: GucSetting<i32> = GucSetting::<i32>::new(5 * 60);

/// When the outage records follow an ingest (SPEC §5): `deferred`, by the correlator within a
/// second; `immediate`, before the ingest call returns.
#[derive(PostgresGucEnum, Clone, Copy, PartialEq, Eq, Debug)]
pub enum Correlate {
    #[name = c"deferred"]
    Deferred,
    #[name = c"immediate"]
    Immediate,
}

static CORRELATE: GucSetting<Correlate> = GucSetting::<Correlate>::new(Correlate::Deferred);
static BATCH_SIZE: GucSetting<i32> = GucSetting::<i32>::new(50_000);
static WORKER_NAPTIME: GucSetting<i32> = GucSetting::<i32>::new(20);
static WORKER_DATABASE: GucSetting<Option<std::ffi::CString>> =
    GucSetting::<Option<std::ffi::CString>>::new(Some(c"postgres"));
static FLAP_THRESHOLD: GucSetting<i32> = GucSetting::<i32>::new(20);

/// Whether this copy of the library defined the settings (else another release's copy did).
static DEFINED_HERE: AtomicBool = AtomicBool::new(false);

/// Whether another release's library already defined the settings in this backend: a defined
/// setting, not the placeholder a SET before any library was loaded makes.
fn defined_elsewhere() -> bool {
    let name = c"oms_correlation.comm_fresh_window";
    unsafe {
        !pg_sys::GetConfigOption(name.as_ptr(), true, false).is_null()
            && pg_sys::GetConfigOptionFlags(name.as_ptr(), true)
                & pg_sys::GUC_CUSTOM_PLACEHOLDER as i32
                == 0
    }
}

/// A setting's value as text, read by name (for a copy that did not define it).
fn by_name(name: &CStr) -> String {
    unsafe {
        let value = pg_sys::GetConfigOption(name.as_ptr(), true, false);
        if value.is_null() {
            String::new()
        } else {
            CStr::from_ptr(value).to_string_lossy().into_owned()
        }
    }
}

fn defined_here() -> bool {
    DEFINED_HERE.load(Ordering::Relaxed)
}

pub fn comm_fresh_window() -> i32 {
    if defined_here() {
        return COMM_FRESH_WINDOW.get();
    }
    by_name(c"oms_correlation.comm_fresh_window")
        .parse()
        .unwrap_or(15 * 60)
}

pub fn scada_scope() -> ScadaScope {
    if defined_here() {
        return SCADA_SCOPE.get();
    }
    match by_name(c"oms_correlation.scada_scope").as_str() {
        "topology" => ScadaScope::Topology,
        _ => ScadaScope::Evidence,
    }
}

pub fn on_invalid_payload() -> OnInvalidPayload {
    if defined_here() {
        return ON_INVALID_PAYLOAD.get();
    }
    match by_name(c"oms_correlation.on_invalid_payload").as_str() {
        "error" => OnInvalidPayload::Error,
        _ => OnInvalidPayload::Quarantine,
    }
}

pub fn allow_drop_with_data() -> bool {
    if defined_here() {
        return ALLOW_DROP_WITH_DATA.get();
    }
    by_name(c"oms_correlation.allow_drop_with_data") == "on"
}

fn confidence(setting: &GucSetting<f64>, name: &CStr, default: f64) -> f64 {
    if defined_here() {
        return setting.get();
    }
    by_name(name).parse().unwrap_or(default)
}

fn int_setting(setting: &GucSetting<i32>, name: &CStr, default: i32) -> i32 {
    if defined_here() {
        return setting.get();
    }
    by_name(name).parse().unwrap_or(default)
}

/// `oms_correlation.call_verify_window` in seconds: ingest reads it to queue a called meter's
/// reports, the correlator to weigh them.
pub fn call_verify_window_seconds() -> i32 {
    int_setting(
        &CALL_VERIFY_WINDOW,
        c"oms_correlation.call_verify_window",
        900,
    )
}

/// The engine's settings of this session.
pub fn engine() -> EngineSettings {
    EngineSettings {
        rollup: crate::correlation::decide::rules::RollUp {
            window: i64::from(int_setting(
                &ROLLUP_WINDOW,
                c"oms_correlation.rollup_window",
                300,
            )) * 1_000_000,
            min_meters: int_setting(&ROLLUP_MIN_METERS, c"oms_correlation.rollup_min_meters", 3)
                .max(1) as usize,
            dp_min_share: confidence(
                &ROLLUP_DP_MIN_SHARE,
                c"oms_correlation.rollup_dp_min_share",
                0.25,
            ),
            dp_fraction: confidence(
                &ROLLUP_DP_FRACTION,
                c"oms_correlation.rollup_dp_fraction",
                0.5,
            ),
            min_children: int_setting(
                &ROLLUP_MIN_CHILDREN,
                c"oms_correlation.rollup_min_children",
                2,
            )
            .max(1) as usize,
            feeder_fraction: confidence(
                &ROLLUP_FEEDER_FRACTION,
                c"oms_correlation.rollup_feeder_fraction",
                0.3,
            ),
        },
        join_window_seconds: int_setting(&JOIN_WINDOW, c"oms_correlation.join_window", 1800),
        nested_window_seconds: int_setting(&NESTED_WINDOW, c"oms_correlation.nested_window", 600),
        mismap_window_seconds: int_setting(&MISMAP_WINDOW, c"oms_correlation.mismap_window", 10),
        declaration_delay_seconds: int_setting(
            &DECLARATION_DELAY,
            c"oms_correlation.declaration_delay",
            60,
        ),
        call_verify_window_seconds: call_verify_window_seconds(),
        confirm_confidence: confidence(
            &CONFIRM_CONFIDENCE,
            c"oms_correlation.confirm_confidence",
            0.8,
        ),
        momentary_window_seconds: int_setting(
            &MOMENTARY_WINDOW,
            c"oms_correlation.momentary_window",
            300,
        ),
        flap_threshold: int_setting(&FLAP_THRESHOLD, c"oms_correlation.flap_threshold", 20).max(1),
    }
}

/// What the correlation engine reads from the settings.
#[derive(Debug, Clone, Copy)]
pub struct EngineSettings {
    pub rollup: crate::correlation::decide::rules::RollUp,
    pub join_window_seconds: i32,
    pub nested_window_seconds: i32,
    /// A lone meter off this close to a DP outage elsewhere on its feeder joins it, suspected
    /// mis-mapped (0: never).
    pub mismap_window_seconds: i32,
    /// A service outage only its meter's own last gasp speaks for is held this long before it is
    /// declared; back on within it, it was a momentary interruption (0: declared at once).
    pub declaration_delay_seconds: i32,
    /// A call whose meter reports within this after it is no evidence of an outage (0: never);
    /// ingest queues such reports (issue 22).
    pub call_verify_window_seconds: i32,
    pub confirm_confidence: f64,
    /// An outage over within this of its start is momentary (IEEE 1366).
    pub momentary_window_seconds: i32,
    /// More power changes than this in an hour make a meter flapping.
    pub flap_threshold: i32,
}

pub fn correlate() -> Correlate {
    if defined_here() {
        return CORRELATE.get();
    }
    match by_name(c"oms_correlation.correlate").as_str() {
        "immediate" => Correlate::Immediate,
        _ => Correlate::Deferred,
    }
}

/// Signals a correlator batch takes at most.
pub fn batch_size() -> i64 {
    i64::from(int_setting(&BATCH_SIZE, c"oms_correlation.batch_size", 50_000).max(1))
}

/// How long the worker sleeps when the queue is empty, in milliseconds.
pub fn worker_naptime_ms() -> u64 {
    int_setting(&WORKER_NAPTIME, c"oms_correlation.worker_naptime", 20).max(1) as u64
}

/// The database the preloaded worker serves.
pub fn worker_database() -> String {
    if defined_here() {
        return WORKER_DATABASE
            .get()
            .and_then(|c| c.to_str().ok().map(str::to_string))
            .unwrap_or_else(|| "postgres".into());
    }
    let name = by_name(c"oms_correlation.database");
    if name.is_empty() {
        "postgres".into()
    } else {
        name
    }
}

pub fn confidence_scada() -> f64 {
    confidence(&CONFIDENCE_SCADA, c"oms_correlation.confidence_scada", 0.90)
}

pub fn confidence_onu() -> f64 {
    confidence(&CONFIDENCE_ONU, c"oms_correlation.confidence_onu", 0.85)
}

pub fn confidence_kaifa() -> f64 {
    confidence(&CONFIDENCE_KAIFA, c"oms_correlation.confidence_kaifa", 0.90)
}

pub fn confidence_call_center() -> f64 {
    confidence(
        &CONFIDENCE_CALL_CENTER,
        c"oms_correlation.confidence_call_center",
        0.60,
    )
}

pub fn register() {
    if defined_elsewhere() {
        return;
    }
    DEFINED_HERE.store(true, Ordering::Relaxed);
    GucRegistry::define_int_guc(
        c"oms_correlation.comm_fresh_window",
        c"How recently a meter must have communicated to count as online in a SCADA check.",
        c"A meter with no communication within this window before the SCADA event counts as offline (SPEC 4.1).",
        &COMM_FRESH_WINDOW,
        1,
        7 * 24 * 3600,
        GucContext::Userset,
        GucFlags::UNIT_S,
    );
    GucRegistry::define_enum_guc(
        c"oms_correlation.scada_scope",
        c"Which meters a SCADA outage affects: 'evidence' (offline ones) or 'topology' (all in scope).",
        c"",
        &SCADA_SCOPE,
        GucContext::Userset,
        GucFlags::default(),
    );
    GucRegistry::define_enum_guc(
        c"oms_correlation.on_invalid_payload",
        c"What an invalid payload does: 'quarantine' (keep it, WARN, return NULL) or 'error'.",
        c"",
        &ON_INVALID_PAYLOAD,
        GucContext::Userset,
        GucFlags::default(),
    );
    GucRegistry::define_bool_guc(
        c"oms_correlation.allow_drop_with_data",
        c"Let DROP EXTENSION oms_correlation delete tables that hold outage history.",
        c"Off: DROP EXTENSION refuses while the tables hold data; SELECT oms_keep_data_on_drop() keeps them instead.",
        &ALLOW_DROP_WITH_DATA,
        GucContext::Suset,
        GucFlags::default(),
    );
    for (name, short, setting) in [
        (
            c"oms_correlation.confidence_scada",
            c"Confidence of a SCADA-derived meter status event.",
            &CONFIDENCE_SCADA,
        ),
        (
            c"oms_correlation.confidence_onu",
            c"Confidence of an ONU-derived meter status event.",
            &CONFIDENCE_ONU,
        ),
        (
            c"oms_correlation.confidence_kaifa",
            c"Confidence of a Kaifa-derived meter status event.",
            &CONFIDENCE_KAIFA,
        ),
        (
            c"oms_correlation.confidence_call_center",
            c"Confidence of a call-center report in the audit trail.",
            &CONFIDENCE_CALL_CENTER,
        ),
    ] {
        GucRegistry::define_float_guc(
            name,
            short,
            c"",
            setting,
            0.0,
            1.0,
            GucContext::Userset,
            GucFlags::default(),
        );
    }
    for (name, short, setting, max) in [
        (
            c"oms_correlation.rollup_window",
            c"How close in time meters must go off to roll up into one DP or feeder outage.",
            &ROLLUP_WINDOW,
            24 * 3600,
        ),
        (
            c"oms_correlation.join_window",
            c"How long before an outage's start a power-off signal may be and still join it.",
            &JOIN_WINDOW,
            7 * 24 * 3600,
        ),
        (
            c"oms_correlation.nested_window",
            c"How soon after an outage's restoration a meter of it going off opens a nested outage.",
            &NESTED_WINDOW,
            7 * 24 * 3600,
        ),
        (
            c"oms_correlation.mismap_window",
            c"A meter alone off under its DP (or a caller's meter back on) this close to a DP outage elsewhere on its feeder (its meters) joins it, suspected mis-mapped (0: never).",
            &MISMAP_WINDOW,
            3600,
        ),
        (
            c"oms_correlation.declaration_delay",
            c"A service outage only a meter's own last gasp speaks for is declared after this; back on within it, it was a momentary interruption (0: at once).",
            &DECLARATION_DELAY,
            3600,
        ),
        (
            c"oms_correlation.call_verify_window",
            c"A call whose meter reports within this after it is no evidence of an outage (its meter had power); what rested on it is withdrawn (0: never).",
            &CALL_VERIFY_WINDOW,
            24 * 3600,
        ),
        (
            c"oms_correlation.momentary_window",
            c"An interruption over within this of its start is momentary (IEEE 1366); longer is sustained.",
            &MOMENTARY_WINDOW,
            24 * 3600,
        ),
    ] {
        GucRegistry::define_int_guc(name, short, c"", setting, 0, max, GucContext::Userset, GucFlags::UNIT_S);
    }
    for (name, short, setting) in [
        (
            c"oms_correlation.rollup_min_meters",
            c"Distinct meters of one DP off within the roll-up window that make a DP outage.",
            &ROLLUP_MIN_METERS,
        ),
        (
            c"oms_correlation.rollup_min_children",
            c"DPs of one feeder with outages within the roll-up window that make a feeder outage.",
            &ROLLUP_MIN_CHILDREN,
        ),
        (
            c"oms_correlation.flap_threshold",
            c"Power changes in an hour above which a meter is flapping: its signals open or join no outage.",
            &FLAP_THRESHOLD,
        ),
    ] {
        GucRegistry::define_int_guc(name, short, c"", setting, 1, 1_000_000, GucContext::Userset, GucFlags::default());
    }
    for (name, short, setting) in [
        (
            c"oms_correlation.rollup_dp_fraction",
            c"Fraction of a DP's active meters off within the roll-up window that makes a DP outage.",
            &ROLLUP_DP_FRACTION,
        ),
        (
            c"oms_correlation.rollup_dp_min_share",
            c"Share of a DP's active meters that rollup_min_meters must also reach to make a DP outage (0: any count).",
            &ROLLUP_DP_MIN_SHARE,
        ),
        (
            c"oms_correlation.rollup_feeder_fraction",
            c"Fraction of a feeder's active meters off within the roll-up window that makes a feeder outage.",
            &ROLLUP_FEEDER_FRACTION,
        ),
        (
            c"oms_correlation.confirm_confidence",
            c"Confidence at which a predicted outage is confirmed.",
            &CONFIRM_CONFIDENCE,
        ),
    ] {
        GucRegistry::define_float_guc(name, short, c"", setting, 0.0, 1.0, GucContext::Userset, GucFlags::default());
    }
    GucRegistry::define_enum_guc(
        c"oms_correlation.correlate",
        c"When outage records follow an ingest: 'deferred' (the correlator, within a second) or 'immediate' (before the call returns).",
        c"",
        &CORRELATE,
        GucContext::Userset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"oms_correlation.batch_size",
        c"Signals a correlator batch takes at most.",
        c"",
        &BATCH_SIZE,
        1,
        1_000_000,
        GucContext::Userset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"oms_correlation.worker_naptime",
        c"How long the correlator worker sleeps when the queue is empty.",
        c"",
        &WORKER_NAPTIME,
        1,
        60_000,
        GucContext::Sighup,
        GucFlags::UNIT_MS,
    );
    GucRegistry::define_string_guc(
        c"oms_correlation.database",
        c"The database the correlator worker started with the server serves (shared_preload_libraries).",
        c"Other databases get a worker when their first signal arrives.",
        &WORKER_DATABASE,
        // Not Postmaster: the library is also loaded after startup, where that is refused.
        GucContext::Sighup,
        GucFlags::default(),
    );
}

/// The session's confidence settings, for `canonical`.
pub fn confidences() -> crate::canonical::Confidences {
    crate::canonical::Confidences {
        onu: confidence_onu(),
        kaifa: confidence_kaifa(),
        call_center: confidence_call_center(),
    }
}
