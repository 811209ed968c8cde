-- Rooms, read side: relations between events, event reports, and indexes for history reads.

-- Event relationships (spec "Forming relationships between events"): one row per event whose
-- content has an `m.relates_to` with a `rel_type` and an `event_id`. Filled by a trigger on
-- `events` (below), so it commits with the event in the same transaction whatever path wrote
-- it (local sends, federation), and can never miss or invent a relation. Redactions are
-- applied when read (events.redacted_by), never by deleting rows here.
CREATE TABLE event_relations (
  event_nid        BIGINT PRIMARY KEY,
  room_nid         BIGINT NOT NULL,
  -- The parent, interned: it may not be known here yet (a relation to a missing event).
  parent_nid       BIGINT NOT NULL,
  rel_type         TEXT NOT NULL,
  event_type       TEXT NOT NULL,
  sender           TEXT NOT NULL,
  depth            BIGINT NOT NULL,
  stream_ordering  BIGINT NOT NULL,
  origin_server_ts BIGINT NOT NULL,
  -- m.annotation's `key` (reactions).
  aggregation_key  TEXT
);
-- /relations pages a parent's children in topological order, optionally by rel_type.
CREATE INDEX event_relations_parent ON event_relations (parent_nid, depth, stream_ordering);
CREATE INDEX event_relations_parent_type ON event_relations (parent_nid, rel_type, depth, stream_ordering);
-- /threads: the thread roots of a room by latest activity.
CREATE INDEX event_relations_threads ON event_relations (room_nid, stream_ordering) WHERE rel_type = 'm.thread';

CREATE FUNCTION index_event_relation_row(ev events) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  rel jsonb;
  parent_nid_v bigint;
BEGIN
  -- Cheap text test first: most events have no relation and are never parsed here.
  IF ev.rejected_reason IS NOT NULL OR ev.outlier OR ev.stream_ordering IS NULL
     OR position('m.relates_to' in ev.json) = 0 THEN
    RETURN;
  END IF;
  BEGIN
    rel := (ev.json::jsonb) -> 'content' -> 'm.relates_to';
  EXCEPTION WHEN others THEN
    -- jsonb refuses some JSON text accepts (a \u0000 escape); such an event gets no index row
    -- rather than failing its write.
    RETURN;
  END;
  IF jsonb_typeof(rel) IS DISTINCT FROM 'object'
     OR jsonb_typeof(rel -> 'rel_type') IS DISTINCT FROM 'string'
     OR jsonb_typeof(rel -> 'event_id') IS DISTINCT FROM 'string' THEN
    RETURN;
  END IF;
  INSERT INTO event_nids (event_id) VALUES (rel ->> 'event_id') ON CONFLICT DO NOTHING;
  SELECT event_nid INTO parent_nid_v FROM event_nids WHERE event_id = rel ->> 'event_id';
  INSERT INTO event_relations (event_nid, room_nid, parent_nid, rel_type, event_type, sender, depth, stream_ordering,
                               origin_server_ts, aggregation_key)
  VALUES (ev.event_nid, ev.room_nid, parent_nid_v, rel ->> 'rel_type', ev.type, ev.sender, ev.depth, ev.stream_ordering,
          ev.origin_server_ts, CASE WHEN jsonb_typeof(rel -> 'key') = 'string' THEN rel ->> 'key' END)
  ON CONFLICT DO NOTHING;
  RETURN;
END $$;

CREATE FUNCTION index_event_relation() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  -- The text test again, so most writes never pay for the call.
  IF position('m.relates_to' in NEW.json) > 0 THEN
    PERFORM index_event_relation_row(NEW);
  END IF;
  RETURN NULL;
END $$;

CREATE TRIGGER events_index_relation AFTER INSERT ON events FOR EACH ROW EXECUTE FUNCTION index_event_relation();

-- Events written before this migration are indexed once, by the same function the trigger
-- calls, so old and new events follow the same rules.
DO $$
DECLARE
  ev events%ROWTYPE;
BEGIN
  FOR ev IN SELECT * FROM events WHERE position('m.relates_to' in json) > 0 ORDER BY stream_ordering LOOP
    PERFORM index_event_relation_row(ev);
  END LOOP;
END $$;

-- A user's membership history in a room (history visibility "shared": did they join after an
-- event?), and any state key's history in general.
CREATE INDEX events_room_state_key ON events (room_nid, state_key_nid, stream_ordering) WHERE state_key_nid IS NOT NULL;
-- /timestamp_to_event.
CREATE INDEX events_room_ts ON events (room_nid, origin_server_ts);

-- Reports of events and rooms (POST /rooms/{roomId}/report[/{eventId}]), for server admins.
CREATE TABLE event_reports (
  id           BIGSERIAL PRIMARY KEY,
  received_ts  BIGINT NOT NULL,
  room_id      TEXT NOT NULL,
  -- NULL for a report of the room itself.
  event_id     TEXT,
  user_id      TEXT NOT NULL,
  reason       TEXT,
  score        INTEGER
);
CREATE INDEX event_reports_received ON event_reports (received_ts);
