//! Storm mode (SPEC §5.6): it switches on by itself when power-off signals come faster than
//! `oms_storm_mode_config.auto_activation_threshold` a minute, and off when they have stayed below
//! `deactivation_threshold_per_minute` for `cooldown_seconds`. While it is on, the engine's windows
//! are `window_multiplier` times wider and a signal that only repeats what an open outage already
//! knows skips the timeline and the stream.
//!
//! The rate is counted in `oms_signal_rate`, one row per second and per shard of backends, so that
//! concurrent sessions add to different rows: there is no single hot row. The configuration row is
//! written only when the mode switches; each switch is a row of `oms_storm_mode_log`, the
//! operations API's key `storm_mode_active`, and a message on channel `oms_outage`.

use std::cell::Cell;

use pgrx::datum::TimestampWithTimeZone;
use pgrx::spi::{SpiClient, SpiResult};

use crate::db::{arg, execute};

/// Backends spread their counts over this many rows per second: each backend its own row (by its
/// backend slot, which no two live backends share) for up to this many sessions.
const SHARDS: i32 = 64;

// Counts $2 power-off signals in this second's row of shard $1, and reads the mode, its settings,
// and the signals of the last rate window (this call's included: the CTE's row is not visible to
// the SELECT of its own statement).
const COUNT_AND_READ: &str = r#"
WITH counted AS (
    INSERT INTO oms_signal_rate (bucket, shard, signals)
    SELECT pg_catalog.date_trunc('second', pg_catalog.clock_timestamp()), $1, $2 WHERE $2 > 0
    ON CONFLICT (bucket, shard) DO UPDATE SET signals = oms_signal_rate.signals + EXCLUDED.signals
)
SELECT coalesce(c.is_active, false), c.auto_activation_threshold, c.deactivation_threshold_per_minute,
       coalesce(c.window_multiplier, 1)::float8, greatest(coalesce(c.rate_window_seconds, 60), 1),
       coalesce(c.cooldown_seconds, 600), c.activated_at,
       (SELECT coalesce(sum(r.signals), 0) FROM oms_signal_rate r
         WHERE r.bucket > pg_catalog.clock_timestamp()
                          - pg_catalog.make_interval(secs => greatest(coalesce(c.rate_window_seconds, 60), 1)))::int8 + $2
FROM oms_storm_mode_config c
WHERE c.config_name = 'default'
"#;

// The last second at whose end the rate over the window ($1 seconds) was at or above $2 signals,
// looking back over the cool-down ($3 seconds).
const LAST_HIGH: &str = r#"
WITH seconds AS (
    SELECT bucket, sum(signals) AS signals FROM oms_signal_rate
    WHERE bucket > pg_catalog.clock_timestamp() - pg_catalog.make_interval(secs => $1 + $3)
    GROUP BY bucket
)
SELECT max(s.bucket) FROM seconds s
WHERE (SELECT sum(w.signals) FROM seconds w
        WHERE w.bucket > s.bucket - pg_catalog.make_interval(secs => $1) AND w.bucket <= s.bucket) >= $2
"#;

// Switches the mode ($1 on or off) unless another session already did, and records it.
const SWITCH: &str = r#"
WITH switched AS (
    UPDATE oms_storm_mode_config SET is_active = $1,
        activated_at = CASE WHEN $1 THEN pg_catalog.now() ELSE activated_at END,
        deactivated_at = CASE WHEN $1 THEN deactivated_at ELSE pg_catalog.now() END,
        updated_at = pg_catalog.now()
    WHERE config_name = 'default' AND is_active IS DISTINCT FROM $1
    RETURNING 1
), logged AS (
    INSERT INTO oms_storm_mode_log (active, rate_per_minute, threshold_per_minute)
    SELECT $1, $2, $3 FROM switched
), api_key AS (
    INSERT INTO oms_storm_mode_config (config_key, config_value, description, updated_at)
    SELECT 'storm_mode_active', $1::text, 'Whether storm mode is on (written by the correlation engine)', pg_catalog.now()
    FROM switched
    ON CONFLICT (config_key) DO UPDATE SET config_value = EXCLUDED.config_value, updated_at = EXCLUDED.updated_at
), announced AS (
    SELECT pg_catalog.pg_notify('oms_outage', pg_catalog.json_build_object(
        'change', CASE WHEN $1 THEN 'storm_mode_on' ELSE 'storm_mode_off' END, 'storm_mode', $1,
        'rate_per_minute', $2, 'threshold_per_minute', $3, 'at', pg_catalog.now())::text)
    FROM switched
)
SELECT count(*)::int4 FROM switched, (SELECT count(*) FROM announced) AS a
"#;

// Old rate rows go, a little at a time.
const PRUNE: &str =
    "DELETE FROM oms_signal_rate WHERE bucket < pg_catalog.clock_timestamp() - interval '1 day' AND shard = $1";

thread_local! {
    /// When this backend last looked for the end of a storm, and how many calls it has made.
    static LAST_COOLDOWN_CHECK: Cell<i64> = const { Cell::new(i64::MIN) };
    static CALLS: Cell<u64> = const { Cell::new(0) };
}

/// What a signal sees of storm mode.
#[derive(Debug, Clone, Copy, Default)]
pub struct Storm {
    pub active: bool,
    /// How much wider the engine's windows are while it is on.
    pub window_multiplier: f64,
}

/// Counts a signal's power-offs (none for a power-on), switches the mode when the rate says so,
/// and returns the mode the signal is correlated under.
pub fn observe(client: &mut SpiClient<'_>, power_offs: i32) -> SpiResult<Storm> {
    observe_rate(client, power_offs, true)
}

/// Switches the mode when the rate says so, without a signal (`oms_storm_mode_refresh()`): with no
/// signal coming after a storm, nothing else would end it.
pub fn refresh(client: &mut SpiClient<'_>) -> SpiResult<Storm> {
    observe_rate(client, 0, false)
}

/// `throttled`: look back over the cool-down at most once a second in this backend (signals come
/// by the thousand; a refresh comes by itself).
fn observe_rate(client: &mut SpiClient<'_>, power_offs: i32, throttled: bool) -> SpiResult<Storm> {
    let shard = (unsafe { pgrx::pg_sys::MyBackendId } % SHARDS).abs();
    let calls = CALLS.with(|c| {
        c.set(c.get() + 1);
        c.get()
    });
    if calls.is_multiple_of(1000) {
        execute(client, PRUNE, &[arg(shard)])?;
    }
    let table = execute(client, COUNT_AND_READ, &[arg(shard), arg(power_offs)])?;
    if table.is_empty() {
        return Ok(Storm {
            active: false,
            window_multiplier: 1.0,
        });
    }
    let row = table.first();
    let active = row.get::<bool>(1)?.unwrap_or(false);
    let enter = row.get::<i32>(2)?;
    let exit = row.get::<i32>(3)?;
    let multiplier = row.get::<f64>(4)?.unwrap_or(1.0).max(1.0);
    let window = row.get::<i32>(5)?.unwrap_or(60).max(1);
    let cooldown = row.get::<i32>(6)?.unwrap_or(600).max(0);
    let activated_at = row.get::<TimestampWithTimeZone>(7)?;
    let recent = row.get::<i64>(8)?.unwrap_or(0);
    let per_minute = recent as f64 * 60.0 / f64::from(window);

    let now = unsafe { pgrx::pg_sys::GetCurrentTimestamp() };
    if !active {
        if let Some(enter) = enter.filter(|t| *t > 0) {
            if per_minute >= f64::from(enter) && switch(client, true, per_minute, enter)? {
                return Ok(Storm {
                    active: true,
                    window_multiplier: multiplier,
                });
            }
        }
        return Ok(Storm {
            active: false,
            window_multiplier: 1.0,
        });
    }
    let exit = exit.unwrap_or(0).max(0);
    let on_long_enough = activated_at
        .is_none_or(|at| now.saturating_sub(at.into_inner()) >= i64::from(cooldown) * 1_000_000);
    // Looking back over the cool-down costs a scan of its seconds: at most once a second a backend.
    let due = !throttled
        || LAST_COOLDOWN_CHECK.with(|last| {
            if now.saturating_sub(last.get()) >= 1_000_000 {
                last.set(now);
                true
            } else {
                false
            }
        });
    if per_minute < f64::from(exit) && on_long_enough && due {
        let exit_count = (f64::from(exit) * f64::from(window) / 60.0).ceil() as i64;
        let last_high = execute(
            client,
            LAST_HIGH,
            &[arg(window), arg(exit_count.max(1)), arg(cooldown)],
        )?
        .first()
        .get_one::<TimestampWithTimeZone>()?;
        let quiet_since_long = last_high.is_none_or(|at| {
            now.saturating_sub(at.into_inner()) >= i64::from(cooldown) * 1_000_000
        });
        if quiet_since_long && switch(client, false, per_minute, exit)? {
            return Ok(Storm {
                active: false,
                window_multiplier: 1.0,
            });
        }
    }
    Ok(Storm {
        active: true,
        window_multiplier: multiplier,
    })
}

fn switch(
    client: &mut SpiClient<'_>,
    on: bool,
    per_minute: f64,
    threshold: i32,
) -> SpiResult<bool> {
    let rate = (per_minute * 100.0).round() / 100.0;
    Ok(
        execute(client, SWITCH, &[arg(on), arg(rate), arg(threshold)])?
            .first()
            .get_one::<i32>()?
            .unwrap_or(0)
            > 0,
    )
}
