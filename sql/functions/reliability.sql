-- Reliability (SPEC §5.5, §5.7, §5.10): what a utility reports to its regulator, computed from the
-- outage records at read time.

-- The momentary window (setting oms_correlation.momentary_window; 5 minutes before the library is
-- loaded in the session).
CREATE FUNCTION @extschema@.oms_momentary_window() RETURNS interval
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = @extschema@, pg_catalog, pg_temp
AS $$
    SELECT coalesce(nullif(current_setting('oms_correlation.momentary_window', true), '')::interval,
                    interval '5 minutes')
$$;

-- An outage's class under IEEE 1366 (SPEC §5.5), right at read time: momentary when all its meters
-- were back within the window of its start, sustained once it has lasted longer, pending until
-- then. Merged and cancelled outages are none: they are not interruptions of their own.
CREATE FUNCTION @extschema@.oms_outage_class(p_status text, p_started timestamptz, p_ended timestamptz,
                                            p_window interval DEFAULT NULL)
RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = @extschema@, pg_catalog, pg_temp
AS $$
    SELECT CASE
        WHEN p_status IN ('merged', 'cancelled') THEN NULL
        WHEN p_ended IS NOT NULL AND p_status IN ('restored', 'cleared')
            THEN CASE WHEN p_ended - p_started <= coalesce(p_window, oms_momentary_window()) THEN 'momentary'
                      ELSE 'sustained' END
        WHEN now() - p_started > coalesce(p_window, oms_momentary_window()) THEN 'sustained'
        ELSE 'pending' END
$$;

-- Every interruption with its class, duration and device: the outages that are not merged into
-- another or cancelled.
CREATE VIEW @extschema@.oms_outage_interruptions AS
SELECT o.id, o.event_id, o.scope, o.device_key, o.status,
       @extschema@.oms_outage_class(o.status, o.first_detected_at, o.actual_restoration_time) AS interruption_class,
       o.first_detected_at AS started_at, o.actual_restoration_time AS ended_at,
       coalesce(o.actual_restoration_time, now()) - o.first_detected_at AS duration,
       o.affected_customers_count, o.customers_out, o.substation_id, o.feeder_id, o.dp_id, o.parent_outage_id
FROM @extschema@.oms_outage_events o
WHERE o.status NOT IN ('merged', 'cancelled');

-- Storm mode in one place (SPEC §5.6): whether it is on, since when (in event time), the rate at
-- the newest signal's time, the thresholds and the switches so far (each a row of
-- oms_storm_mode_log).
CREATE VIEW @extschema@.oms_storm_mode AS
SELECT c.is_active AS active, c.activated_at, c.deactivated_at,
       round((SELECT coalesce(sum(r.signals), 0) FROM @extschema@.oms_signal_rate r
               WHERE r.bucket > s.newest_event_at - make_interval(secs => c.rate_window_seconds)
                 AND r.bucket <= s.newest_event_at)
             * 60.0 / c.rate_window_seconds, 2) AS rate_per_minute,
       c.auto_activation_threshold AS enter_per_minute, c.deactivation_threshold_per_minute AS exit_per_minute,
       c.cooldown_seconds, c.rate_window_seconds, c.window_multiplier,
       (SELECT count(*) FROM @extschema@.oms_storm_mode_log) AS switches,
       (SELECT max(l.switched_at) FROM @extschema@.oms_storm_mode_log l) AS last_switch_at,
       s.newest_event_at
FROM @extschema@.oms_storm_mode_config c, @extschema@.oms_correlation_state s
WHERE c.config_name = 'default' AND s.id = 1;

-- Whether a meter is flapping at p_at (SPEC §5.7): more than p_threshold power changes within an
-- hour, and no quiet hour (an hour without a change) since. A change at p_at counts. It looks back
-- a day: a meter whose last burst is older than that counts again. The engine asks it for every
-- meter of a power-off signal, and the view below for every meter that changed in the last hour.
-- It reads at most the day's last 24 x (p_threshold + 1) + 1 changes: that many changes in a day
-- hold an hour of more than p_threshold, so a meter with more is flapping whatever came before.
CREATE FUNCTION @extschema@.oms_meter_is_flapping(p_meter uuid, p_at timestamptz, p_threshold integer)
RETURNS boolean
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = @extschema@, pg_catalog, pg_temp
AS $$
BEGIN
    RETURN coalesce((
        SELECT bool_or(c.burst AND c.at >= coalesce(c.run_start, '-infinity')) AND max(c.at) > p_at - interval '1 hour'
        FROM (SELECT b.at, b.burst, max(b.at) FILTER (WHERE b.after_quiet_hour) OVER () AS run_start
              FROM (SELECT r.at,
                           -- this change and the p_threshold before it, all within an hour
                           r.at - lag(r.at, p_threshold) OVER w < interval '1 hour' AS burst,
                           r.at - lag(r.at) OVER w >= interval '1 hour' AS after_quiet_hour
                    FROM (SELECT e.event_timestamp AS at FROM oms_meter_status_events e
                          WHERE e.meter_id = p_meter AND e.event_type IN ('power_on', 'power_off')
                            AND e.event_timestamp > p_at - interval '1 day' AND e.event_timestamp <= p_at
                          ORDER BY e.event_timestamp DESC
                          LIMIT 24 * (p_threshold + 1) + 1) AS r
                    WINDOW w AS (ORDER BY r.at)) AS b) AS c), false);
END
$$;

-- Meters flapping now (oms_meter_is_flapping() under oms_correlation.flap_threshold): their
-- signals are stored and audited, and open or join no outage. With their changes of the last hour.
CREATE VIEW @extschema@.oms_flapping_meters AS
SELECT m.id AS meter_id, m.meter_number, changes.power_changes, changes.first_change, changes.last_change
FROM @extschema@.oms_meters m
CROSS JOIN LATERAL (
    SELECT count(*) AS power_changes, min(e.event_timestamp) AS first_change, max(e.event_timestamp) AS last_change
    FROM @extschema@.oms_meter_status_events e
    WHERE e.meter_id = m.id AND e.event_type IN ('power_on', 'power_off')
      AND e.event_timestamp > now() - interval '1 hour' AND e.event_timestamp <= now()
) AS changes
WHERE m.last_event_at > now() - interval '1 hour'
  AND @extschema@.oms_meter_is_flapping(m.id, now(),
        coalesce(nullif(current_setting('oms_correlation.flap_threshold', true), '')::int, 20));

-- IEEE 1366 indices over [p_from, p_to) (SPEC §5.10), for the system or per feeder or substation:
-- SAIFI, SAIDI (minutes), CAIDI (minutes), MAIFI_E, CEMI-n and CELID (customers whose sustained
-- interruptions in the period add up to more than p_celid_hours).
-- - Each customer's span in an outage runs from its first meter off to its last meter back on
--   (still out: until p_to or now), clipped to the period for minutes (step restoration); an
--   interruption counts in the period it began in.
-- - Customers served: the distinct customers of the active meters in scope (a meter without a
--   customer is one).
-- - Merged outages hold no meters (their survivors do), so nothing counts twice; cancelled ones
--   count nowhere. Interruptions that were never outages (oms_momentary_interruptions: back
--   within the declaration delay) count in MAIFI_E.
-- - With p_exclude_major_event_days, days whose system SAIDI exceeds T_MED = exp(α + 2.5 β) (α, β:
--   mean and standard deviation of ln(daily SAIDI) over the five years before p_from, IEEE 1366's
--   history "ending on the last day of the last complete reporting period": the period's own days
--   would raise the threshold they are judged by) are left out.
CREATE FUNCTION @extschema@.oms_reliability_indices(
    p_from timestamptz, p_to timestamptz, p_level text DEFAULT 'system', p_cemi_n integer DEFAULT 3,
    p_celid_hours numeric DEFAULT 8, p_exclude_major_event_days boolean DEFAULT false)
RETURNS TABLE(level text, device text, customers_served bigint, customers_interrupted bigint,
              customer_minutes numeric, saifi numeric, saidi numeric, caidi numeric, maifi_e numeric,
              cemi numeric, celid numeric, major_event_days date[])
LANGUAGE plpgsql STABLE
SET search_path = @extschema@, pg_catalog, pg_temp
-- A year of history is a few hundred thousand memberships to group: in memory, not spilled to disk.
SET work_mem = '128MB'
AS $$
#variable_conflict use_column
DECLARE
    cut timestamptz := least(p_to, now());
    momentary interval := oms_momentary_window();
    med date[] := '{}';
BEGIN
    IF p_level NOT IN ('system', 'feeder', 'substation') THEN
        RAISE EXCEPTION 'oms_reliability_indices: p_level must be system, feeder or substation, not %', p_level
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_to <= p_from THEN
        RAISE EXCEPTION 'oms_reliability_indices: the period is empty (p_to % is not after p_from %)', p_to, p_from
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_exclude_major_event_days THEN
        WITH served AS (
            SELECT count(DISTINCT coalesce(m.customer_id, m.id))::numeric AS n FROM oms_meters m WHERE m.status = 'active'
        ), spans AS (
            SELECT om.outage_id, om.customer_key, min(om.off_at) AS off_at,
                   CASE WHEN bool_or(om.on_at IS NULL) THEN cut ELSE max(om.on_at) END AS on_at
            FROM oms_outage_meters om JOIN oms_outage_events o ON o.id = om.outage_id
            WHERE o.status NOT IN ('merged', 'cancelled')
              -- sustained, as oms_outage_class says (see spans below)
              AND (CASE WHEN o.actual_restoration_time IS NOT NULL AND o.status IN ('restored', 'cleared')
                        THEN o.actual_restoration_time - o.first_detected_at > momentary
                        ELSE now() - o.first_detected_at > momentary END)
              AND om.off_at >= p_from - interval '5 years' AND om.off_at < p_to
            GROUP BY 1, 2
        ), daily AS (
            SELECT (s.off_at AT TIME ZONE 'UTC')::date AS day,
                   sum(date_part('epoch', s.on_at - s.off_at) / 60)::numeric / (SELECT n FROM served) AS daily_saidi
            FROM spans s GROUP BY 1
        ), beta AS MATERIALIZED (  -- once, not once per day; from the history before the period only
            SELECT exp(avg(ln(daily_saidi)) + 2.5 * stddev_samp(ln(daily_saidi))) AS t_med
            FROM daily WHERE daily_saidi > 0 AND day < (p_from AT TIME ZONE 'UTC')::date
        )
        SELECT coalesce(array_agg(day ORDER BY day), '{}') INTO med
        FROM daily, beta
        WHERE beta.t_med IS NOT NULL AND daily.daily_saidi > beta.t_med
          AND day >= (p_from AT TIME ZONE 'UTC')::date AND day < (p_to AT TIME ZONE 'UTC')::date + 1;
    END IF;

    RETURN QUERY
    WITH feeder_mapped AS (
        SELECT DISTINCT ON (fm.meter_id) fm.meter_id, fm.feeder_id FROM network_feeder_meters fm
        ORDER BY fm.meter_id, fm.priority NULLS LAST, fm.feeder_id
    ), substation_mapped AS (
        SELECT DISTINCT ON (sm.meter_id) sm.meter_id, sm.substation_id FROM network_substation_meters sm
        ORDER BY sm.meter_id, sm.priority NULLS LAST, sm.substation_id
    ), substation_mapped_feeder AS (
        SELECT DISTINCT ON (sm.meter_id) sm.meter_id, sm.feeder_id FROM network_substation_meters sm
        WHERE sm.feeder_id IS NOT NULL
        ORDER BY sm.meter_id, sm.priority NULLS LAST, sm.feeder_id
    ), meters AS (
        -- Each meter where the engine places its interruptions (SPEC §3, src/correlation/locks.rs
        -- `located_meters!`): its own feeder, else the mapping tables', else its DP's; its own
        -- substation, else its feeder's, else the mapping table's.
        SELECT coalesce(m.customer_id, m.id) AS customer_key,
               CASE p_level WHEN 'feeder' THEN pf.feeder_id
                            WHEN 'substation' THEN coalesce(m.substation_id, f.substation_id, smap.substation_id)
               END AS device_id
        FROM oms_meters m
        LEFT JOIN network_distribution_points dp ON dp.id = m.dp_id
        LEFT JOIN feeder_mapped fmap ON fmap.meter_id = m.id
        LEFT JOIN substation_mapped_feeder sfmap ON sfmap.meter_id = m.id
        LEFT JOIN substation_mapped smap ON smap.meter_id = m.id
        CROSS JOIN LATERAL (SELECT coalesce(m.feeder_id, fmap.feeder_id, sfmap.feeder_id, dp.feeder_id) AS feeder_id) AS pf
        LEFT JOIN network_feeders f ON f.id = pf.feeder_id
        WHERE m.status = 'active'
    ), served AS (
        SELECT device_id, count(DISTINCT customer_key) AS n FROM meters GROUP BY 1
    ), spans AS (
        -- A customer's span in an outage, per device (a customer with meters on two feeders is
        -- interrupted on each, as it is served by each).
        SELECT om.outage_id, om.customer_key,
               CASE p_level WHEN 'feeder' THEN om.feeder_id WHEN 'substation' THEN om.substation_id END AS device_id,
               min(om.off_at) AS off_at,
               CASE WHEN bool_or(om.on_at IS NULL) THEN cut ELSE max(om.on_at) END AS on_at
        FROM oms_outage_meters om
        WHERE om.off_at < p_to AND coalesce(om.on_at, 'infinity') > p_from
        GROUP BY 1, 2, 3
    ), classes AS (
        -- oms_outage_class, inlined: a function with a pinned search_path is never inlined, and a
        -- call per row was three quarters of the time on a year of history.
        SELECT o.id,
               CASE WHEN o.actual_restoration_time IS NOT NULL AND o.status IN ('restored', 'cleared')
                    THEN CASE WHEN o.actual_restoration_time - o.first_detected_at <= momentary THEN 'momentary'
                              ELSE 'sustained' END
                    WHEN now() - o.first_detected_at > momentary THEN 'sustained'
                    ELSE 'pending' END AS class
        FROM oms_outage_events o
        WHERE o.status NOT IN ('merged', 'cancelled')
    ), per_customer AS (
        SELECT s.device_id, s.customer_key,
               count(*) FILTER (WHERE c.class = 'sustained' AND s.off_at >= p_from) AS sustained,
               -- float8 minutes (date_part): numeric (extract) doubled the cost of this step
               coalesce(sum(greatest(date_part('epoch', least(s.on_at, p_to) - greatest(s.off_at, p_from)) / 60, 0))
                            FILTER (WHERE c.class = 'sustained'), 0)::numeric AS minutes,
               count(*) FILTER (WHERE c.class = 'momentary' AND s.off_at >= p_from) AS momentary
        FROM spans s JOIN classes c ON c.id = s.outage_id
        WHERE NOT ((s.off_at AT TIME ZONE 'UTC')::date = ANY (med))
        GROUP BY 1, 2
        UNION ALL
        -- Interruptions that were never outages (the declaration delay): each one momentary, once a
        -- customer however many of its meters it took (a building's go together).
        SELECT CASE p_level WHEN 'feeder' THEN mi.feeder_id WHEN 'substation' THEN mi.substation_id END,
               coalesce(mi.customer_id, mi.meter_id), 0, 0::numeric, count(DISTINCT mi.interrupted_at)
        FROM oms_momentary_interruptions mi
        WHERE mi.interrupted_at >= p_from AND mi.interrupted_at < p_to
          AND NOT ((mi.interrupted_at AT TIME ZONE 'UTC')::date = ANY (med))
        GROUP BY 1, 2
    ), per_device AS (
        SELECT device_id, sum(sustained)::bigint AS interrupted, sum(minutes) AS minutes,
               sum(momentary)::bigint AS momentary,
               count(*) FILTER (WHERE sustained > p_cemi_n) AS cemi,
               count(*) FILTER (WHERE minutes > p_celid_hours * 60) AS celid
        FROM per_customer GROUP BY 1
    )
    SELECT p_level,
           CASE p_level WHEN 'feeder' THEN (SELECT nf.feeder_id::text FROM network_feeders nf WHERE nf.id = sv.device_id)
                        WHEN 'substation' THEN (SELECT ns.substation_id::text FROM network_substations ns
                                                WHERE ns.id = sv.device_id) END,
           sv.n,
           coalesce(d.interrupted, 0),
           round(coalesce(d.minutes, 0)::numeric, 2),
           round(coalesce(d.interrupted, 0)::numeric / sv.n, 6),
           round(coalesce(d.minutes, 0)::numeric / sv.n, 6),
           CASE WHEN coalesce(d.interrupted, 0) > 0 THEN round(d.minutes::numeric / d.interrupted, 6) END,
           round(coalesce(d.momentary, 0)::numeric / sv.n, 6),
           round(coalesce(d.cemi, 0)::numeric / sv.n, 6),
           round(coalesce(d.celid, 0)::numeric / sv.n, 6),
           med
    FROM served sv
    LEFT JOIN per_device d ON d.device_id IS NOT DISTINCT FROM sv.device_id
    WHERE sv.n > 0 AND (p_level = 'system' OR sv.device_id IS NOT NULL)
    ORDER BY 2;
END
$$;
