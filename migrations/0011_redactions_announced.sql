-- Every process caches parsed events with their redaction status (src/rooms/events.ts). A
-- redaction taking effect (events.redacted_by set) is announced on the channel prat_redactions
-- as "<event nid> <redaction nid>", at commit, so every process marks its cached copy.
CREATE FUNCTION prat_event_redacted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('prat_redactions', 'db|' || NEW.event_nid || ' ' || NEW.redacted_by);
  RETURN NULL;
END
$$;

CREATE TRIGGER event_redacted AFTER UPDATE OF redacted_by ON events
  FOR EACH ROW WHEN (OLD.redacted_by IS NULL AND NEW.redacted_by IS NOT NULL)
  EXECUTE FUNCTION prat_event_redacted();
