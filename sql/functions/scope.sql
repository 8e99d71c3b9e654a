-- Which meters belong to a feeder or substation (SPEC §3): through the meter's own column or a
-- mapping row, and, for a substation, also through any of its feeders. The SCADA check and the
-- helper functions share this one definition. Inactive meters are included; callers filter.
CREATE FUNCTION @extschema@.oms_meter_scope(p_substation uuid, p_feeder uuid)
RETURNS SETOF uuid
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = @extschema@, pg_catalog, pg_temp
AS $$
    SELECT id FROM oms_meters WHERE p_feeder IS NOT NULL AND feeder_id = p_feeder
    UNION SELECT meter_id FROM network_feeder_meters WHERE p_feeder IS NOT NULL AND feeder_id = p_feeder
    UNION SELECT meter_id FROM network_substation_meters WHERE p_feeder IS NOT NULL AND feeder_id = p_feeder
    UNION SELECT id FROM oms_meters WHERE p_feeder IS NULL AND substation_id = p_substation
    UNION SELECT meter_id FROM network_substation_meters WHERE p_feeder IS NULL AND substation_id = p_substation
    UNION SELECT m.id FROM oms_meters m JOIN network_feeders f ON f.id = m.feeder_id
          WHERE p_feeder IS NULL AND f.substation_id = p_substation
    UNION SELECT fm.meter_id FROM network_feeder_meters fm JOIN network_feeders f ON f.id = fm.feeder_id
          WHERE p_feeder IS NULL AND f.substation_id = p_substation
$$;
