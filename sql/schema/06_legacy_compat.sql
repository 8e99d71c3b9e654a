-- The rest of the legacy surface (../shared/LEGACY_SCHEMA.md): two device tables the legacy scripts
-- created and DBAs' scripts still load, the legacy trigger functions with the triggers they drive,
-- and the behaviour that keeps legacy loads valid where the extension stores things its own way.

CREATE TABLE @extschema@.oms_smart_meters (
    id                  uuid PRIMARY KEY DEFAULT @extschema@.oms_uuid_v7(),
    meter_number        varchar(64) NOT NULL UNIQUE,
    customer_id         uuid REFERENCES @extschema@.oms_customers (id),
    asset_mrid          varchar(100),
    usage_point_mrid    varchar(100),
    dp_id               uuid REFERENCES @extschema@.network_distribution_points (id),
    location_lat        numeric,
    location_lng        numeric,
    meter_type          varchar(50) DEFAULT 'kaifa',
    status              varchar(20) DEFAULT 'active',
    last_communication  timestamptz,
    created_at          timestamptz DEFAULT pg_catalog.now(),
    updated_at          timestamptz DEFAULT pg_catalog.now()
);

CREATE TABLE @extschema@.oms_onu_devices (
    id                  uuid PRIMARY KEY DEFAULT @extschema@.oms_uuid_v7(),
    onu_id              integer NOT NULL UNIQUE,
    onu_serial_no       varchar(100) UNIQUE,
    customer_id         uuid REFERENCES @extschema@.oms_customers (id),
    dp_id               uuid REFERENCES @extschema@.network_distribution_points (id),
    fibertech_id        varchar(50),
    olt_name            varchar(200),
    location_lat        numeric,
    location_lng        numeric,
    power_status        boolean DEFAULT true,
    last_power_change   timestamptz,
    status              varchar(20) DEFAULT 'active',
    created_at          timestamptz DEFAULT pg_catalog.now(),
    updated_at          timestamptz DEFAULT pg_catalog.now()
);

-- The legacy scripts' four updated_at trigger functions, under their own names. The triggers fire
-- only when the statement left updated_at as it was: the extension's own statements set it, so a
-- status update of a whole feeder pays a comparison per row, not a function call.
CREATE FUNCTION @extschema@.oms_update_updated_at() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$ BEGIN NEW.updated_at := now(); RETURN NEW; END $$;

CREATE FUNCTION @extschema@.onu_update_updated_at() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$ BEGIN NEW.updated_at := now(); RETURN NEW; END $$;

CREATE FUNCTION @extschema@.cc_update_updated_at() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$ BEGIN NEW.updated_at := now(); RETURN NEW; END $$;

CREATE FUNCTION @extschema@.update_updated_at_column() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$ BEGIN NEW.updated_at := now(); RETURN NEW; END $$;

CREATE TRIGGER oms_network_substations_updated_at BEFORE UPDATE ON @extschema@.network_substations
    FOR EACH ROW WHEN (NEW.updated_at IS NOT DISTINCT FROM OLD.updated_at)
    EXECUTE FUNCTION @extschema@.oms_update_updated_at();
CREATE TRIGGER oms_network_feeders_updated_at BEFORE UPDATE ON @extschema@.network_feeders
    FOR EACH ROW WHEN (NEW.updated_at IS NOT DISTINCT FROM OLD.updated_at)
    EXECUTE FUNCTION @extschema@.oms_update_updated_at();
CREATE TRIGGER oms_network_dp_updated_at BEFORE UPDATE ON @extschema@.network_distribution_points
    FOR EACH ROW WHEN (NEW.updated_at IS NOT DISTINCT FROM OLD.updated_at)
    EXECUTE FUNCTION @extschema@.oms_update_updated_at();
CREATE TRIGGER oms_customers_updated_at BEFORE UPDATE ON @extschema@.oms_customers
    FOR EACH ROW WHEN (NEW.updated_at IS NOT DISTINCT FROM OLD.updated_at)
    EXECUTE FUNCTION @extschema@.oms_update_updated_at();
CREATE TRIGGER oms_meters_updated_at BEFORE UPDATE ON @extschema@.oms_meters
    FOR EACH ROW WHEN (NEW.updated_at IS NOT DISTINCT FROM OLD.updated_at)
    EXECUTE FUNCTION @extschema@.oms_update_updated_at();
CREATE TRIGGER oms_onu_devices_updated_at BEFORE UPDATE ON @extschema@.oms_onu_devices
    FOR EACH ROW WHEN (NEW.updated_at IS NOT DISTINCT FROM OLD.updated_at)
    EXECUTE FUNCTION @extschema@.oms_update_updated_at();
CREATE TRIGGER oms_smart_meters_updated_at BEFORE UPDATE ON @extschema@.oms_smart_meters
    FOR EACH ROW WHEN (NEW.updated_at IS NOT DISTINCT FROM OLD.updated_at)
    EXECUTE FUNCTION @extschema@.oms_update_updated_at();
CREATE TRIGGER onu_onus_updated_at BEFORE UPDATE ON @extschema@.onus
    FOR EACH ROW WHEN (NEW.updated_at IS NOT DISTINCT FROM OLD.updated_at)
    EXECUTE FUNCTION @extschema@.onu_update_updated_at();
CREATE TRIGGER cc_tickets_updated_at BEFORE UPDATE ON @extschema@.callcenter_tickets
    FOR EACH ROW WHEN (NEW.updated_at IS NOT DISTINCT FROM OLD.updated_at)
    EXECUTE FUNCTION @extschema@.cc_update_updated_at();
CREATE TRIGGER update_kaifa_events_updated_at BEFORE UPDATE ON @extschema@.kaifa_events
    FOR EACH ROW WHEN (NEW.updated_at IS NOT DISTINCT FROM OLD.updated_at)
    EXECUTE FUNCTION @extschema@.update_updated_at_column();

-- A registry row may name an ONU the fibre NMS has not reported yet (the MDM export is loaded
-- first). The legacy schema had no key there and took the row; so does this one, and the ONU gets
-- a stub row, as an event naming an unknown ONU does, which the NMS load later fills in.
CREATE FUNCTION @extschema@.oms_stub_unknown_onu() RETURNS trigger
LANGUAGE plpgsql
SET search_path = @extschema@, pg_catalog, pg_temp
AS $$
BEGIN
    INSERT INTO onus (id, stub) SELECT NEW.onu_id, true WHERE NOT EXISTS (SELECT FROM onus WHERE id = NEW.onu_id)
    ON CONFLICT (id) DO NOTHING;
    RETURN NULL;
END
$$;

CREATE TRIGGER oms_meters_stub_unknown_onu AFTER INSERT OR UPDATE OF onu_id ON @extschema@.oms_meters
    FOR EACH ROW WHEN (NEW.onu_id IS NOT NULL)
    EXECUTE FUNCTION @extschema@.oms_stub_unknown_onu();

-- A row for an ONU that has a stub replaces the stub, instead of failing on its key as it would
-- not have on the legacy schema: the INSERT becomes an UPDATE of the stub (so it reports no row
-- inserted). A value the NMS leaves out keeps what events taught the stub (its serial, its place).
-- pg_restore relies on it too: restoring oms_meters before onus makes stubs, which the restored
-- onus rows then replace exactly. The extension's own stub inserts skip a known ONU beforehand, so
-- this fires for new ONUs only.
CREATE FUNCTION @extschema@.oms_fill_onu_stub() RETURNS trigger
LANGUAGE plpgsql
SET search_path = @extschema@, pg_catalog, pg_temp
AS $$
BEGIN
    UPDATE onus o SET
        onu_serial_no = coalesce(NEW.onu_serial_no, o.onu_serial_no), name = NEW.name, model = NEW.model,
        fibertech_id = NEW.fibertech_id, building_id = NEW.building_id, region_code = NEW.region_code,
        olt_name = NEW.olt_name, area_fibertech = NEW.area_fibertech, onu_power_flag = NEW.onu_power_flag,
        onu_power_flag_date = NEW.onu_power_flag_date,
        location_lat = coalesce(NEW.location_lat, o.location_lat),
        location_lng = coalesce(NEW.location_lng, o.location_lng),
        status = NEW.status, created_at = NEW.created_at, updated_at = NEW.updated_at, stub = NEW.stub
    WHERE o.id = NEW.id AND o.stub;
    IF FOUND THEN
        RETURN NULL;
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER onus_fill_stub BEFORE INSERT ON @extschema@.onus
    FOR EACH ROW EXECUTE FUNCTION @extschema@.oms_fill_onu_stub();

-- The operations API reads sources and timeline entries under its own column names and writes
-- timeline entries under them alone. The extension's statements write both spellings, so this
-- fires only for rows written under one: it fills in the other, and a timeline entry's status
-- (NOT NULL in the legacy schema, which the API never sets) from its outage.
CREATE FUNCTION @extschema@.oms_fill_api_columns() RETURNS trigger
LANGUAGE plpgsql
SET search_path = @extschema@, pg_catalog, pg_temp
AS $$
BEGIN
    IF TG_TABLE_NAME = 'oms_event_timeline' THEN
        IF TG_OP = 'UPDATE' AND NEW.event_description IS DISTINCT FROM OLD.event_description
           AND NEW.description IS NOT DISTINCT FROM OLD.description THEN
            NEW.description := NEW.event_description;
        ELSIF TG_OP = 'UPDATE' AND NEW.description IS DISTINCT FROM OLD.description
           AND NEW.event_description IS NOT DISTINCT FROM OLD.event_description THEN
            NEW.event_description := NEW.description;
        END IF;
        NEW.description := coalesce(NEW.description, NEW.event_description);
        NEW.event_description := coalesce(NEW.event_description, NEW.description);
        -- "timestamp" defaults to now(): an API row that gave only event_timestamp takes that.
        IF NEW.event_timestamp IS NOT NULL AND (TG_OP = 'INSERT' AND NEW."timestamp" = now()
                                               OR TG_OP = 'UPDATE' AND NEW."timestamp" = OLD."timestamp") THEN
            NEW."timestamp" := NEW.event_timestamp;
        END IF;
        NEW.event_timestamp := coalesce(NEW.event_timestamp, NEW."timestamp");
        IF NEW.status IS NULL THEN
            NEW.status := (SELECT o.status FROM oms_outage_events o WHERE o.id = NEW.outage_event_id);
        END IF;
    ELSE
        NEW.event_timestamp := coalesce(NEW.event_timestamp, NEW.detected_at);
        NEW.confidence_weight := coalesce(NEW.confidence_weight, NEW.correlation_weight);
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER oms_event_timeline_api_columns BEFORE INSERT OR UPDATE ON @extschema@.oms_event_timeline
    FOR EACH ROW WHEN (NEW.event_description IS DISTINCT FROM NEW.description
                       OR NEW.event_timestamp IS DISTINCT FROM NEW."timestamp" OR NEW.status IS NULL)
    EXECUTE FUNCTION @extschema@.oms_fill_api_columns();
CREATE TRIGGER oms_event_sources_api_columns BEFORE INSERT OR UPDATE ON @extschema@.oms_event_sources
    FOR EACH ROW WHEN (NEW.event_timestamp IS NULL OR NEW.confidence_weight IS NULL)
    EXECUTE FUNCTION @extschema@.oms_fill_api_columns();

-- The legacy great-circle distance, in meters (oms_correlate_events places external reports by it).
CREATE FUNCTION @extschema@.haversine_distance_meters(lat1 numeric, lon1 numeric, lat2 numeric, lon2 numeric)
RETURNS double precision
LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT 2 * 6371000 * asin(sqrt(
        power(sin(radians((lat2 - lat1)::float8) / 2), 2)
        + cos(radians(lat1::float8)) * cos(radians(lat2::float8)) * power(sin(radians((lon2 - lon1)::float8) / 2), 2)))
$$;
