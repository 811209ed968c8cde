-- The relation index trigger (0006) fires only for events whose JSON mentions m.relates_to: with
-- the test in the trigger's WHEN clause, the other events (most of them) queue no trigger call
-- at all, instead of calling the function to return at once.
DROP TRIGGER events_index_relation ON events;
CREATE TRIGGER events_index_relation AFTER INSERT ON events FOR EACH ROW
  WHEN (position('m.relates_to' in NEW.json) > 0)
  EXECUTE FUNCTION index_event_relation();
