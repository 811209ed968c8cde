-- Sync and per-user data: filters, account data, receipts, presence, push rules, notification
-- counts, and the stream positions of the streams this module owns.
--
-- Stream positions. Each stream sync owns has its own sequence. A writer takes the stream's
-- advisory transaction lock (see src/sync/store.ts: lockStream) before nextval(), so positions
-- commit in order: a reader's snapshot that sees position N also sees every position below N,
-- and a sync token can never skip a row that commits late. Room events (stream_ordering) and
-- to-device / device-list positions belong to the rooms and keys schemas.
-- No foreign keys to rooms or keys tables: those migrations may land in any order.

CREATE SEQUENCE sync_account_data_seq;
CREATE SEQUENCE sync_receipts_seq;
CREATE SEQUENCE sync_presence_seq;
-- Typing lives in memory, but its positions come from here so every process on the database
-- hands out comparable positions (a client may sync against any of them).
CREATE SEQUENCE sync_typing_seq;

-- Filters (POST /user/{userId}/filter). Ids are per user, small decimal numbers as Synapse's.
CREATE TABLE sync_filters (
  user_id    TEXT NOT NULL,
  filter_id  BIGINT NOT NULL,
  filter     JSONB NOT NULL,
  PRIMARY KEY (user_id, filter_id)
);

-- Account data, global (room_id = '') and per room. Tags are the room's m.tag entry. A deleted
-- entry keeps its row with content = {} so incremental syncs see the change (the spec's
-- "deleting" account data is setting it to {}).
CREATE TABLE sync_account_data (
  user_id    TEXT NOT NULL,
  room_id    TEXT NOT NULL DEFAULT '',
  data_type  TEXT NOT NULL,
  content    JSONB NOT NULL,
  stream_id  BIGINT NOT NULL,
  PRIMARY KEY (user_id, room_id, data_type)
);
CREATE INDEX sync_account_data_stream ON sync_account_data (user_id, stream_id);
CREATE INDEX sync_account_data_pos ON sync_account_data (stream_id);

-- Receipts: one per (room, type, user, thread); thread_id '' is the unthreaded receipt.
-- m.read.private rows are only ever shown to their owner. event_stream_ordering is the receipt
-- event's position in the room stream, the bound that clears notification counts.
CREATE TABLE sync_receipts (
  room_id               TEXT NOT NULL,
  receipt_type          TEXT NOT NULL,
  user_id               TEXT NOT NULL,
  thread_id             TEXT NOT NULL DEFAULT '',
  event_id              TEXT NOT NULL,
  event_stream_ordering BIGINT,
  data                  JSONB NOT NULL,
  stream_id             BIGINT NOT NULL,
  PRIMARY KEY (room_id, receipt_type, user_id, thread_id)
);
CREATE INDEX sync_receipts_stream ON sync_receipts (stream_id);
CREATE INDEX sync_receipts_room_stream ON sync_receipts (room_id, stream_id);
CREATE INDEX sync_receipts_user ON sync_receipts (user_id, room_id);

-- Presence: the latest state per user.
CREATE TABLE sync_presence (
  user_id          TEXT PRIMARY KEY,
  state            TEXT NOT NULL CHECK (state IN ('online', 'offline', 'unavailable', 'busy')),
  status_msg       TEXT,
  last_active_ts   BIGINT NOT NULL,
  -- When the user last synced or sent something: drives currently_active and the idle timeout.
  last_user_sync_ts BIGINT NOT NULL,
  stream_id        BIGINT NOT NULL
);
CREATE INDEX sync_presence_stream ON sync_presence (stream_id);

-- User-defined push rules. ordering sorts rules within a kind (lower first, higher priority);
-- before/after renumber the user's rules of that kind.
CREATE TABLE push_rules (
  user_id    TEXT NOT NULL,
  kind       TEXT NOT NULL CHECK (kind IN ('override', 'content', 'room', 'sender', 'underride')),
  rule_id    TEXT NOT NULL,
  ordering   INTEGER NOT NULL,
  conditions JSONB,
  pattern    TEXT,
  actions    JSONB NOT NULL,
  enabled    BOOLEAN NOT NULL DEFAULT TRUE,
  PRIMARY KEY (user_id, kind, rule_id)
);

-- Changes a user made to the server-default rules (enabled, actions); the rules themselves are
-- code (src/push/defaults.ts) so a server upgrade brings new defaults to everyone.
CREATE TABLE push_rule_default_overrides (
  user_id    TEXT NOT NULL,
  kind       TEXT NOT NULL,
  rule_id    TEXT NOT NULL,
  enabled    BOOLEAN,
  actions    JSONB,
  PRIMARY KEY (user_id, kind, rule_id)
);

-- The outcome of push rule evaluation for each local member and each new event that notifies.
-- Counts are rows past the user's read receipt (event_stream_ordering in sync_receipts), per
-- room and per thread (thread_id '' = main timeline).
CREATE TABLE event_push_actions (
  user_id         TEXT NOT NULL,
  room_id         TEXT NOT NULL,
  thread_id       TEXT NOT NULL DEFAULT '',
  event_id        TEXT NOT NULL,
  stream_ordering BIGINT NOT NULL,
  actions         JSONB NOT NULL,
  notif           BOOLEAN NOT NULL,
  highlight       BOOLEAN NOT NULL,
  received_ts     BIGINT NOT NULL,
  PRIMARY KEY (user_id, event_id)
);
CREATE INDEX event_push_actions_room ON event_push_actions (user_id, room_id, stream_ordering);
CREATE INDEX event_push_actions_user ON event_push_actions (user_id, stream_ordering);
