//! Storm mode (SPEC §5.6), in event time: the correlator counts the power-off signals it takes in
//! per second of their own time (`oms_signal_rate`), and storm mode is on while that rate, over
//! `rate_window_seconds`, has reached `auto_activation_threshold` a minute and not yet stayed below
//! `deactivation_threshold_per_minute` for `cooldown_seconds`. Decided from the signals' times, it
//! is the same in a replay as it was the first time, and no ingest session writes a counter.
//!
//! While it is on, the roll-up and join windows are `window_multiplier` times wider, and word about
//! meters already out is recorded without a timeline row or an announcement. Each switch, at the
//! time the newest signal has reached, is a row of `oms_storm_mode_log`, the operations API's key
//! `storm_mode_active`, and a message on channel `oms_outage`.

use std::collections::BTreeMap;

use pgrx::datum::TimestampWithTimeZone;
use pgrx::spi::{SpiClient, SpiResult};

use super::decide::rules::{storm_intervals, Storm, StormThresholds};
use super::load::{time, ts};
use super::model::{Time, HOUR, SECOND};
use crate::db::{arg, execute};

const COUNT: &str = r#"
INSERT INTO oms_signal_rate (bucket, shard, signals)
SELECT * FROM unnest($1::timestamptz[], $2::int2[], $3::int4[])
ON CONFLICT (bucket, shard) DO UPDATE SET signals = oms_signal_rate.signals + EXCLUDED.signals
"#;

const CONFIG: &str = r#"
SELECT coalesce(c.auto_activation_threshold, 0)::float8, coalesce(c.deactivation_threshold_per_minute, 0)::float8,
       coalesce(c.window_multiplier, 1)::float8, greatest(coalesce(c.rate_window_seconds, 60), 1),
       greatest(coalesce(c.cooldown_seconds, 600), 0), coalesce(c.is_active, false)
FROM oms_storm_mode_config c WHERE c.config_name = 'default'
"#;

const COUNTS: &str = r#"
SELECT r.bucket, sum(r.signals)::int8 FROM oms_signal_rate r
WHERE r.bucket >= $1 AND r.bucket <= $2 GROUP BY r.bucket ORDER BY r.bucket
"#;

// Switches the mode ($1 on or off, $4 when in event time) unless it already is, and records it.
const SWITCH: &str = r#"
WITH switched AS (
    UPDATE oms_storm_mode_config SET is_active = $1,
        activated_at = CASE WHEN $1 THEN $4 ELSE activated_at END,
        deactivated_at = CASE WHEN $1 THEN deactivated_at ELSE $4 END,
        updated_at = pg_catalog.now()
    WHERE config_name = 'default' AND is_active IS DISTINCT FROM $1
    RETURNING 1
), logged AS (
    INSERT INTO oms_storm_mode_log (active, rate_per_minute, threshold_per_minute, event_at)
    SELECT $1, $2, $3, $4 FROM switched
), api_key AS (
    INSERT INTO oms_storm_mode_config (config_key, config_value, description, updated_at)
    SELECT 'storm_mode_active', $1::text, 'Whether storm mode is on (written by the correlator)', pg_catalog.now()
    FROM switched
    ON CONFLICT (config_key) DO UPDATE SET config_value = EXCLUDED.config_value, updated_at = EXCLUDED.updated_at
), announced AS (
    SELECT pg_catalog.pg_notify('oms_outage', pg_catalog.json_build_object(
        'change', CASE WHEN $1 THEN 'storm_mode_on' ELSE 'storm_mode_off' END, 'storm_mode', $1,
        'rate_per_minute', $2, 'threshold_per_minute', $3, 'at', $4)::text)
    FROM switched
)
SELECT count(*)::int4 FROM switched, (SELECT count(*) FROM announced) AS a
"#;

/// A storm that began more than this before a batch's earliest signal is read as beginning then.
const HISTORY: Time = 6 * HOUR;

/// Storm mode's settings, and whether it is on as recorded.
pub struct Config {
    pub thresholds: StormThresholds,
    pub enter_per_minute: f64,
    pub exit_per_minute: f64,
    pub multiplier: f64,
    pub recorded_on: bool,
}

pub fn config(client: &mut SpiClient<'_>) -> SpiResult<Config> {
    let table = execute(client, CONFIG, &[])?;
    if table.is_empty() {
        return Ok(Config {
            thresholds: StormThresholds::per_minute(0.0, 0.0, 60 * SECOND, 600 * SECOND),
            enter_per_minute: 0.0,
            exit_per_minute: 0.0,
            multiplier: 1.0,
            recorded_on: false,
        });
    }
    let row = table.first();
    let enter = row.get::<f64>(1)?.unwrap_or(0.0);
    let exit = row.get::<f64>(2)?.unwrap_or(0.0);
    let window = i64::from(row.get::<i32>(4)?.unwrap_or(60)) * SECOND;
    let cooldown = i64::from(row.get::<i32>(5)?.unwrap_or(600)) * SECOND;
    Ok(Config {
        thresholds: StormThresholds::per_minute(enter, exit, window, cooldown),
        enter_per_minute: enter,
        exit_per_minute: exit,
        multiplier: row.get::<f64>(3)?.unwrap_or(1.0).max(1.0),
        recorded_on: row.get::<bool>(6)?.unwrap_or(false),
    })
}

/// Counts power-off signals (their times, one per meter).
pub fn count(client: &mut SpiClient<'_>, power_offs: &[(Time, usize)]) -> SpiResult<()> {
    let mut by_second: BTreeMap<Time, i64> = BTreeMap::new();
    for &(at, meters) in power_offs {
        *by_second.entry(at - at.rem_euclid(SECOND)).or_default() += meters as i64;
    }
    if by_second.is_empty() {
        return Ok(());
    }
    execute(
        client,
        COUNT,
        &[
            arg(by_second.keys().map(|&s| ts(s)).collect::<Vec<_>>()),
            arg(vec![0i16; by_second.len()]),
            arg(by_second
                .values()
                .map(|&n| i32::try_from(n).unwrap_or(i32::MAX))
                .collect::<Vec<_>>()),
        ],
    )?;
    Ok(())
}

/// Storm mode's intervals around `[from, until]` of event time.
pub fn storm(
    client: &mut SpiClient<'_>,
    config: &Config,
    from: Time,
    until: Time,
) -> SpiResult<Storm> {
    if config.thresholds.enter == 0 {
        return Ok(Storm::default());
    }
    let mut counts = Vec::new();
    for row in execute(
        client,
        COUNTS,
        &[
            arg(ts(from - HISTORY)),
            arg(ts(until + config.thresholds.window)),
        ],
    )? {
        let second = time(row.get::<TimestampWithTimeZone>(1)?.expect("bucket"));
        counts.push((second, row.get::<i64>(2)?.unwrap_or(0).max(0) as u64));
    }
    Ok(Storm {
        multiplier: config.multiplier,
        intervals: storm_intervals(&counts, &config.thresholds),
    })
}

/// Records a switch when storm mode at `now` (event time) is not what was last recorded.
/// Returns whether it is on.
pub fn record(
    client: &mut SpiClient<'_>,
    config: &Config,
    storm: &Storm,
    now: Time,
) -> SpiResult<bool> {
    let on = storm.active_at(now);
    if on == config.recorded_on {
        return Ok(on);
    }
    let interval = storm
        .intervals
        .iter()
        .rev()
        .find(|&&(from, _)| from <= now)
        .copied();
    let (switched_at, threshold) = match (on, interval) {
        (true, Some((from, _))) => (from, config.enter_per_minute),
        (false, Some((_, Some(until)))) => (until, config.exit_per_minute),
        _ => (
            now,
            if on {
                config.enter_per_minute
            } else {
                config.exit_per_minute
            },
        ),
    };
    let rate = rate_per_minute(client, config, switched_at)?;
    execute(
        client,
        SWITCH,
        &[
            arg(on),
            arg(rate),
            arg(threshold.round() as i32),
            arg(ts(switched_at)),
        ],
    )?;
    Ok(on)
}

const RATE: &str = r#"
SELECT coalesce(sum(r.signals), 0)::float8 FROM oms_signal_rate r WHERE r.bucket > $1 AND r.bucket <= $2
"#;

fn rate_per_minute(client: &mut SpiClient<'_>, config: &Config, at: Time) -> SpiResult<f64> {
    let window = config.thresholds.window;
    let signals = execute(client, RATE, &[arg(ts(at - window)), arg(ts(at))])?
        .first()
        .get_one::<f64>()?
        .unwrap_or(0.0);
    Ok((signals * 60.0 * SECOND as f64 / window as f64 * 100.0).round() / 100.0)
}

/// Applies the switching rule at `now` without a signal (`oms_storm_mode_refresh()`): after a
/// storm's last signal, event time moves on only by the clock.
pub fn refresh(client: &mut SpiClient<'_>, now: Time) -> SpiResult<bool> {
    let config = config(client)?;
    let storm = storm(client, &config, now, now)?;
    record(client, &config, &storm, now)
}
