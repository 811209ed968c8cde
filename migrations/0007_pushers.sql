-- Pushers (POST /pushers/set) and their delivery state. A pusher is (app_id, pushkey) for one
-- user; the same pair may belong to several users only when set with append: true.
--
-- Delivery reads event_push_actions after commit: last_stream_ordering is the position up to
-- which this pusher's notifications were handled (sent, or given up on), so a restart resumes
-- there and nothing is sent twice by one pusher. Processes on one database share the work
-- through a lease (lease_owner, lease_until): one process delivers for a pusher at a time, and
-- another takes over when a lease runs out (its holder died).
CREATE TABLE pushers (
  id                   BIGSERIAL PRIMARY KEY,
  user_id              TEXT NOT NULL,
  -- The device that created it: logging that device out (or deleting it) removes the pusher,
  -- as Synapse does. Kept when another device of the user updates the pusher.
  device_id            TEXT,
  kind                 TEXT NOT NULL,
  app_id               TEXT NOT NULL,
  pushkey              TEXT NOT NULL,
  -- When the pushkey was last set (ms); sent to the gateway in seconds as pushkey_ts.
  pushkey_ts           BIGINT NOT NULL,
  app_display_name     TEXT NOT NULL,
  device_display_name  TEXT NOT NULL,
  profile_tag          TEXT NOT NULL DEFAULT '',
  lang                 TEXT NOT NULL,
  data                 JSONB NOT NULL,
  last_stream_ordering BIGINT NOT NULL,
  last_success_ts      BIGINT,
  -- Set while the gateway keeps failing (retries back off); a notification failing for a day is
  -- skipped so a gateway that comes back is not flooded with stale ones.
  failing_since        BIGINT,
  lease_owner          TEXT,
  lease_until          BIGINT,
  UNIQUE (app_id, pushkey, user_id)
);
CREATE INDEX pushers_user ON pushers (user_id);

