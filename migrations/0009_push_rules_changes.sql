-- Every process caches the push rules of the users it evaluates events for (src/push/rules-cache.ts).
-- A change to a user's rules, made by any process (or by hand), is announced on the channel
-- prat_push_rules with the user id, at commit, so every process drops its copy.
CREATE FUNCTION prat_push_rules_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('prat_push_rules', 'db|' || COALESCE(NEW.user_id, OLD.user_id));
  RETURN NULL;
END
$$;

CREATE TRIGGER push_rules_changed AFTER INSERT OR UPDATE OR DELETE ON push_rules
  FOR EACH ROW EXECUTE FUNCTION prat_push_rules_changed();
CREATE TRIGGER push_rule_default_overrides_changed AFTER INSERT OR UPDATE OR DELETE ON push_rule_default_overrides
  FOR EACH ROW EXECUTE FUNCTION prat_push_rules_changed();
