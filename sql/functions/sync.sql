-- oms_sync_meter_registry() (issue 6): builds or refreshes the meter registry from what the legacy
-- sources already know, and links their rows to it. Set-based: one statement per step, whatever
-- the number of meters; idempotent: a second call creates and links nothing.
--
--   * the ONU `meters` table: meter id as meter number, its ONU;
--   * Kaifa assets: the asset mRID (as meter number when no meter has it), with the usage point
--     reported in the same message;
--   * call-center tickets: the meter number the customer gave.
CREATE FUNCTION @extschema@.oms_sync_meter_registry()
RETURNS TABLE(meters_created int, meters_refreshed int, onu_meters_linked int, kaifa_assets_linked int,
              kaifa_usage_points_linked int, callcenter_customers_linked int)
LANGUAGE plpgsql VOLATILE
SET search_path = @extschema@, pg_catalog, pg_temp
AS $$
DECLARE
    created_onu int;
    created_kaifa int;
    created_callcenter int;
    refreshed_onu int;
    refreshed_kaifa int;
BEGIN
    -- ONU meters: new meters, then the ONU link on meters that lack it.
    INSERT INTO oms_meters (meter_number, meter_type, onu_id, location_lat, location_lng, status)
    SELECT m.meter_id, coalesce(m.meter_type, 'smart'), m.onu_id, m.location_lat, m.location_lng,
           CASE WHEN m.status IN ('active', 'inactive', 'decommissioned') THEN m.status ELSE 'active' END
    FROM meters m
    WHERE m.meter_id IS NOT NULL AND m.meter_id <> ''
    ON CONFLICT (meter_number) DO NOTHING;
    GET DIAGNOSTICS created_onu = ROW_COUNT;

    UPDATE oms_meters o SET onu_id = m.onu_id, updated_at = now()
    FROM meters m
    WHERE o.meter_number = m.meter_id AND m.onu_id IS NOT NULL AND o.onu_id IS DISTINCT FROM m.onu_id;
    GET DIAGNOSTICS refreshed_onu = ROW_COUNT;

    -- Kaifa assets: a meter per asset mRID nobody knows yet; the mRIDs on meters known by number.
    INSERT INTO oms_meters (meter_number, asset_mrid)
    SELECT DISTINCT a.mrid, a.mrid
    FROM kaifa_event_assets a
    WHERE a.mrid IS NOT NULL AND a.mrid <> ''
      AND NOT EXISTS (SELECT 1 FROM oms_meters o WHERE o.asset_mrid = a.mrid)
    ON CONFLICT (meter_number) DO NOTHING;
    GET DIAGNOSTICS created_kaifa = ROW_COUNT;

    WITH pairs AS (
        SELECT DISTINCT ON (a.mrid) a.mrid AS asset_mrid, u.mrid AS usage_point_mrid
        FROM kaifa_event_assets a
        LEFT JOIN kaifa_event_usage_points u ON u.payload_id = a.payload_id AND u.mrid IS NOT NULL AND u.mrid <> ''
        WHERE a.mrid IS NOT NULL AND a.mrid <> ''
        ORDER BY a.mrid, u.mrid NULLS LAST
    )
    UPDATE oms_meters o
    SET asset_mrid = coalesce(o.asset_mrid, p.asset_mrid),
        usage_point_mrid = coalesce(o.usage_point_mrid, p.usage_point_mrid),
        updated_at = now()
    FROM pairs p
    WHERE (o.meter_number = p.asset_mrid OR o.asset_mrid = p.asset_mrid)
      AND (o.asset_mrid IS NULL OR (o.usage_point_mrid IS NULL AND p.usage_point_mrid IS NOT NULL));
    GET DIAGNOSTICS refreshed_kaifa = ROW_COUNT;

    -- Call-center meter numbers.
    INSERT INTO oms_meters (meter_number)
    SELECT DISTINCT c.meter_number FROM callcenter_customers c
    WHERE c.meter_number IS NOT NULL AND c.meter_number <> ''
    ON CONFLICT (meter_number) DO NOTHING;
    GET DIAGNOSTICS created_callcenter = ROW_COUNT;

    meters_created := created_onu + created_kaifa + created_callcenter;
    meters_refreshed := refreshed_onu + refreshed_kaifa;

    -- Links, for the rows that have none yet.
    UPDATE meters m SET oms_meter_id = o.id
    FROM oms_meters o WHERE o.meter_number = m.meter_id AND m.oms_meter_id IS NULL;
    GET DIAGNOSTICS onu_meters_linked = ROW_COUNT;

    UPDATE kaifa_event_assets a SET meter_id = o.id
    FROM oms_meters o WHERE o.asset_mrid = a.mrid AND a.meter_id IS NULL;
    GET DIAGNOSTICS kaifa_assets_linked = ROW_COUNT;

    UPDATE kaifa_event_usage_points u SET meter_id = o.id
    FROM oms_meters o WHERE o.usage_point_mrid = u.mrid AND u.meter_id IS NULL;
    GET DIAGNOSTICS kaifa_usage_points_linked = ROW_COUNT;

    UPDATE callcenter_customers c SET meter_id = o.id
    FROM oms_meters o WHERE o.meter_number = c.meter_number AND c.meter_id IS NULL;
    GET DIAGNOSTICS callcenter_customers_linked = ROW_COUNT;

    RETURN NEXT;
END
$$;
