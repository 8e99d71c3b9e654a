-- Which meters belong to a feeder or substation (SPEC §3): through the meter's own column or a
-- mapping row, and, for a substation, also through any of its feeders. Inactive meters are
-- included; callers filter.
--
-- The condition is written as one scan of oms_meters whose alternatives are each indexable
-- (PostgreSQL combines them with a BitmapOr), so each meter comes out once without a
-- de-duplicating step. The SCADA check (src/db/scada_check.rs) states the same condition inline
-- in its statement, where the planner can see it; a #[pg_test] keeps the two in agreement.
CREATE FUNCTION @extschema@.oms_meter_scope(p_substation uuid, p_feeder uuid)
RETURNS SETOF uuid
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = @extschema@, pg_catalog, pg_temp
AS $$
    SELECT m.id FROM oms_meters m
    WHERE m.feeder_id = ANY (CASE WHEN p_feeder IS NOT NULL THEN ARRAY[p_feeder]
                                  ELSE ARRAY(SELECT f.id FROM network_feeders f WHERE f.substation_id = p_substation) END)
       OR m.substation_id = CASE WHEN p_feeder IS NULL THEN p_substation END
       OR m.id = ANY (ARRAY(SELECT fm.meter_id FROM network_feeder_meters fm
                            WHERE fm.feeder_id = ANY (CASE WHEN p_feeder IS NOT NULL THEN ARRAY[p_feeder]
                                                           ELSE ARRAY(SELECT f.id FROM network_feeders f
                                                                      WHERE f.substation_id = p_substation) END)))
       OR m.id = ANY (ARRAY(SELECT sm.meter_id FROM network_substation_meters sm
                            WHERE (p_feeder IS NOT NULL AND sm.feeder_id = p_feeder)
                               OR (p_feeder IS NULL AND sm.substation_id = p_substation)))
$$;
