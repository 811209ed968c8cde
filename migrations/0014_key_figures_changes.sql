-- A woken /sync answered from memory takes the device's key figures (one-time key counts,
-- unused fallback key types) from a cache (src/sync/key-figures-cache.ts). Every change to them,
-- an upload, a claim by another user, a device deleted, is announced on prat_key_figures with
-- the device (["user", "device"]) at commit, so every process drops its cached entry. The
-- triggers run once per statement: a claim or an upload of many keys sends one notification
-- per device (PostgreSQL folds identical ones of a transaction into one).
CREATE FUNCTION prat_key_figures_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('prat_key_figures', 'db|' || json_build_array(user_id, device_id)::text)
     FROM (SELECT DISTINCT user_id, device_id FROM changed) c;
  RETURN NULL;
END
$$;

CREATE TRIGGER e2e_one_time_keys_added AFTER INSERT ON e2e_one_time_keys
  REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION prat_key_figures_changed();
CREATE TRIGGER e2e_one_time_keys_removed AFTER DELETE ON e2e_one_time_keys
  REFERENCING OLD TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION prat_key_figures_changed();
CREATE TRIGGER e2e_fallback_keys_added AFTER INSERT ON e2e_fallback_keys
  REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION prat_key_figures_changed();
CREATE TRIGGER e2e_fallback_keys_updated AFTER UPDATE ON e2e_fallback_keys
  REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION prat_key_figures_changed();
CREATE TRIGGER e2e_fallback_keys_removed AFTER DELETE ON e2e_fallback_keys
  REFERENCING OLD TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION prat_key_figures_changed();
