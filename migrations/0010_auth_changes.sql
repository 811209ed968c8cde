-- Every process caches the access tokens it has seen (src/accounts/token-cache.ts). A token
-- deleted (logout, device deletion, a spent refresh, deactivation: directly or by cascade) or a
-- user whose standing changed (deactivated, admin, guest) is announced on the channel
-- prat_auth with the user id, at commit, so every process drops that user's cached tokens.
CREATE FUNCTION prat_auth_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('prat_auth', 'db|' || COALESCE(NEW.user_id, OLD.user_id));
  RETURN NULL;
END
$$;

CREATE TRIGGER access_tokens_deleted AFTER DELETE ON access_tokens
  FOR EACH ROW EXECUTE FUNCTION prat_auth_changed();
CREATE TRIGGER users_standing_changed AFTER UPDATE ON users
  FOR EACH ROW
  WHEN (OLD.deactivated IS DISTINCT FROM NEW.deactivated OR OLD.is_admin IS DISTINCT FROM NEW.is_admin OR OLD.is_guest IS DISTINCT FROM NEW.is_guest)
  EXECUTE FUNCTION prat_auth_changed();
CREATE TRIGGER users_deleted AFTER DELETE ON users
  FOR EACH ROW EXECUTE FUNCTION prat_auth_changed();
