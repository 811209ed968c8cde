-- Rooms: the event DAG, compact room state, memberships, local transaction ids and aliases.
--
-- Identifiers that tables join on are interned to integers: event ids (event_nids), rooms
-- (rooms.room_nid) and (type, state_key) pairs (state_keys). Events are stored whole, as the
-- PDU this server signed or received, so they can be served to other servers byte-for-byte
-- equivalent (hashes and signatures stay verifiable).

-- The global stream: every persisted event takes the next value. /sync tokens carry it. Values
-- are allocated while holding the stream lock (see src/rooms/queue.ts), so they become visible
-- in allocation order and a reader never skips a position that commits later.
CREATE SEQUENCE stream_ordering_seq START 1;

CREATE TABLE rooms (
  room_nid          BIGSERIAL PRIMARY KEY,
  room_id           TEXT NOT NULL UNIQUE,
  version           TEXT NOT NULL,
  creator           TEXT NOT NULL,
  -- Listed in the public room directory.
  is_public         BOOLEAN NOT NULL DEFAULT FALSE,
  created_ts        BIGINT NOT NULL,
  -- The room's current state: the state after its forward extremities (resolved when there are
  -- several). NULL only before the create event is persisted.
  current_snapshot  BIGINT
);

-- Event ids interned to integers. An id may be interned before its event is known (a prev
-- event not yet fetched over federation), so this is separate from `events`.
CREATE TABLE event_nids (
  event_nid  BIGSERIAL PRIMARY KEY,
  event_id   TEXT NOT NULL UNIQUE
);

-- (type, state_key) pairs interned to integers; state snapshots hold only these integers.
CREATE TABLE state_keys (
  state_key_nid  SERIAL PRIMARY KEY,
  type           TEXT NOT NULL,
  state_key      TEXT NOT NULL,
  UNIQUE (type, state_key)
);

-- State snapshots. A snapshot is the full state of a room at some point, stored either whole
-- (parent_id NULL) or as a delta on a parent snapshot. Entries are two parallel arrays (one row
-- per snapshot, not one row per entry: a 5,000-member state is one ~60 kB TOASTed row, a delta
-- of one change a few dozen bytes). A removed key in a delta has event_nid 0.
--
-- Chains are bounded (src/rooms/state-store.ts): a delta that is large relative to its parent's
-- is folded into the parent's delta and attached one level up, and chains never exceed a fixed
-- depth, so reading any snapshot is one recursive query over a handful of rows, and storage
-- grows with the number of state changes (times a small logarithmic factor), not with
-- state size times events.
CREATE TABLE state_snapshots (
  snapshot_id    BIGSERIAL PRIMARY KEY,
  room_nid       BIGINT NOT NULL REFERENCES rooms (room_nid),
  parent_id      BIGINT REFERENCES state_snapshots (snapshot_id),
  -- 0 for a full snapshot, parent's depth + 1 for a delta.
  depth          SMALLINT NOT NULL,
  -- Number of keys in the full state this snapshot describes.
  state_size     INTEGER NOT NULL,
  -- Order-independent hash of the full state (sum of per-entry SHA-256 mod 2^256), updated
  -- incrementally from the parent's, so equal states are stored once (checked entry by entry
  -- on a hash match).
  state_hash     BYTEA NOT NULL,
  key_nids       INTEGER[] NOT NULL,
  event_nids     BIGINT[] NOT NULL
);
CREATE INDEX state_snapshots_hash ON state_snapshots (room_nid, state_hash);
-- Garbage collection of unreferenced snapshots (after purges) walks children by parent.
CREATE INDEX state_snapshots_parent ON state_snapshots (parent_id) WHERE parent_id IS NOT NULL;

CREATE TABLE events (
  event_nid        BIGINT PRIMARY KEY REFERENCES event_nids (event_nid),
  room_nid         BIGINT NOT NULL REFERENCES rooms (room_nid),
  -- Global, monotonic: the /sync stream position of this event. NULL for outliers (events
  -- known only as auth events, never part of the room's timeline here).
  stream_ordering  BIGINT UNIQUE,
  -- Topological ordering: (depth, stream_ordering).
  depth            BIGINT NOT NULL,
  type             TEXT NOT NULL,
  -- Set for state events only.
  state_key_nid    INTEGER REFERENCES state_keys (state_key_nid),
  sender           TEXT NOT NULL,
  origin_server_ts BIGINT NOT NULL,
  -- Why the event failed the auth rules (federation); rejected events never enter state.
  rejected_reason  TEXT,
  outlier          BOOLEAN NOT NULL DEFAULT FALSE,
  -- Room state before and after this event (equal for non-state events).
  state_before     BIGINT REFERENCES state_snapshots (snapshot_id),
  state_after      BIGINT REFERENCES state_snapshots (snapshot_id),
  -- For a state event: the event it replaced in the room state (for unsigned.prev_content).
  replaces_nid     BIGINT,
  -- Set when a valid redaction of this event was persisted; the stored PDU is never changed,
  -- the redaction is applied when the event is read.
  redacted_by      BIGINT,
  -- The RoomEvent (PDU plus event_id and room_id) as JSON text, stored exactly as signed.
  json             TEXT NOT NULL
);
CREATE INDEX events_room_stream ON events (room_nid, stream_ordering);
CREATE INDEX events_room_topo ON events (room_nid, depth, stream_ordering);

-- The DAG's prev_events edges.
CREATE TABLE event_edges (
  event_nid       BIGINT NOT NULL,
  prev_event_nid  BIGINT NOT NULL,
  PRIMARY KEY (event_nid, prev_event_nid)
);
CREATE INDEX event_edges_prev ON event_edges (prev_event_nid);

-- The room's forward extremities: events with no known successor. New local events cite all
-- of them (up to a cap) as prev_events.
CREATE TABLE forward_extremities (
  room_nid   BIGINT NOT NULL REFERENCES rooms (room_nid),
  event_nid  BIGINT NOT NULL,
  PRIMARY KEY (room_nid, event_nid)
);

-- Client transaction ids: the same (user, device, endpoint scope, txn id) always answers with
-- the same event. The scope is the endpoint and its path parameters, as the spec scopes txnIds.
CREATE TABLE event_txn_ids (
  user_id     TEXT NOT NULL,
  device_id   TEXT NOT NULL,
  scope       TEXT NOT NULL,
  txn_id      TEXT NOT NULL,
  event_nid   BIGINT NOT NULL,
  created_ts  BIGINT NOT NULL,
  PRIMARY KEY (user_id, device_id, scope, txn_id)
);
CREATE INDEX event_txn_ids_event ON event_txn_ids (event_nid);

-- Current membership of every user in every room (follows the room's current state).
CREATE TABLE room_memberships (
  room_nid         BIGINT NOT NULL REFERENCES rooms (room_nid),
  user_id          TEXT NOT NULL,
  membership       TEXT NOT NULL,
  event_nid        BIGINT NOT NULL,
  stream_ordering  BIGINT NOT NULL,
  displayname      TEXT,
  avatar_url       TEXT,
  -- POST /forget: hidden from the user until their membership changes again.
  forgotten        BOOLEAN NOT NULL DEFAULT FALSE,
  PRIMARY KEY (room_nid, user_id)
);
CREATE INDEX room_memberships_user ON room_memberships (user_id, membership);

CREATE TABLE room_aliases (
  room_alias  TEXT PRIMARY KEY,
  room_nid    BIGINT NOT NULL REFERENCES rooms (room_nid),
  creator     TEXT NOT NULL,
  created_ts  BIGINT NOT NULL
);
CREATE INDEX room_aliases_room ON room_aliases (room_nid);
