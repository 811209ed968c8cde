-- End-to-end encryption support: device keys, one-time and fallback keys, cross-signing keys and
-- signatures, server-side key backups, the to-device queue, the device-list change log and
-- OpenID tokens. The server never sees plaintext: everything here is public keys, signatures or
-- ciphertext, stored as the JSON text the client sent (TEXT, not JSONB: JSONB refuses \u0000
-- and would normalise what signatures cover; canonical JSON is re-derived when verifying).
--
-- No foreign keys to `devices`: a device's rows here are removed by the keys service when
-- accounts reports the device deleted (AccountService.devicesDeletedListeners), and reads join
-- `devices`, so a row left behind by a crash between the two is never served.

-- Stream heads of the two streams this module owns ('to_device', 'device_lists'). A writer
-- bumps the head inside its transaction (UPDATE ... RETURNING): the row lock is held until
-- commit, so positions commit in the order they are handed out and a snapshot that sees head N
-- sees every row at or below N. A plain sequence would not give that (nextval is handed out at
-- call time, transactions commit in any order, and a reader could step over a late commit);
-- and the to-device queue deletes delivered rows, so its head cannot be MAX(stream_id).
CREATE TABLE e2e_stream_heads (
  stream    TEXT PRIMARY KEY,
  position  BIGINT NOT NULL
);
INSERT INTO e2e_stream_heads (stream, position) VALUES ('to_device', 0), ('device_lists', 0);

-- Device identity keys (POST /keys/upload device_keys), one object per device.
CREATE TABLE e2e_device_keys (
  user_id     TEXT NOT NULL,
  device_id   TEXT NOT NULL,
  key_json    TEXT NOT NULL,
  ts_added    BIGINT NOT NULL,
  PRIMARY KEY (user_id, device_id)
);

-- One-time keys. `id` orders them by upload: the spec hands them out in upload order. A claim
-- deletes the row it returns (DELETE ... RETURNING over rows locked FOR UPDATE SKIP LOCKED), so
-- a key is handed out at most once however many claims race.
CREATE TABLE e2e_one_time_keys (
  id          BIGSERIAL PRIMARY KEY,
  user_id     TEXT NOT NULL,
  device_id   TEXT NOT NULL,
  algorithm   TEXT NOT NULL,
  key_id      TEXT NOT NULL,
  key_json    TEXT NOT NULL,
  ts_added    BIGINT NOT NULL,
  UNIQUE (user_id, device_id, algorithm, key_id)
);
CREATE INDEX e2e_one_time_keys_claim ON e2e_one_time_keys (user_id, device_id, algorithm, id);

-- Fallback keys: at most one per device and algorithm, kept until replaced. `used` is set when a
-- claim hands it out (sync reports the unused algorithms in device_unused_fallback_key_types).
CREATE TABLE e2e_fallback_keys (
  user_id     TEXT NOT NULL,
  device_id   TEXT NOT NULL,
  algorithm   TEXT NOT NULL,
  key_id      TEXT NOT NULL,
  key_json    TEXT NOT NULL,
  used        BOOLEAN NOT NULL DEFAULT FALSE,
  PRIMARY KEY (user_id, device_id, algorithm)
);

-- Cross-signing keys, the latest of each type per user. key_id is `ed25519:<public key>`.
CREATE TABLE e2e_cross_signing_keys (
  user_id     TEXT NOT NULL,
  key_type    TEXT NOT NULL CHECK (key_type IN ('master', 'self_signing', 'user_signing')),
  key_id      TEXT NOT NULL,
  key_json    TEXT NOT NULL,
  ts_added    BIGINT NOT NULL,
  PRIMARY KEY (user_id, key_type)
);

-- Signatures uploaded through POST /keys/signatures/upload, kept apart from the signed objects
-- so each reader sees only those the spec lets it see (signer = owner of the key, or signer =
-- the reader). target_key_id is a device id or a cross-signing public key (they share one
-- namespace, which is why a cross-signing key may not equal a device id).
CREATE TABLE e2e_cross_signing_signatures (
  signer_user_id   TEXT NOT NULL,
  signer_key_id    TEXT NOT NULL,
  target_user_id   TEXT NOT NULL,
  target_key_id    TEXT NOT NULL,
  signature        TEXT NOT NULL,
  PRIMARY KEY (target_user_id, target_key_id, signer_user_id, signer_key_id)
);
CREATE INDEX e2e_cross_signing_signatures_signer ON e2e_cross_signing_signatures (signer_user_id);

-- Device-list changes, for /keys/changes and sync's device_lists.changed. One row per change
-- (a user's device keys or master/self-signing keys). visible_to is NULL for a change everyone
-- sharing a room with user_id should learn of, or one user id for a change only that user may
-- see (their own user-signing key, their signature on someone else's master key).
CREATE TABLE e2e_device_list_changes (
  stream_id    BIGINT NOT NULL,
  user_id      TEXT NOT NULL,
  visible_to   TEXT
);
CREATE INDEX e2e_device_list_changes_stream ON e2e_device_list_changes (stream_id);
CREATE INDEX e2e_device_list_changes_user ON e2e_device_list_changes (user_id, stream_id);

-- Server-side key backup versions. Versions count up per user and are never reused: a deleted
-- version keeps its row (deleted = TRUE) so the next one gets a higher number. etag counts
-- changes to the version's keys.
CREATE TABLE e2e_room_keys_versions (
  user_id     TEXT NOT NULL,
  version     BIGINT NOT NULL,
  algorithm   TEXT NOT NULL,
  auth_data   TEXT NOT NULL,
  etag        BIGINT NOT NULL DEFAULT 0,
  deleted     BOOLEAN NOT NULL DEFAULT FALSE,
  PRIMARY KEY (user_id, version)
);

CREATE TABLE e2e_room_keys (
  user_id              TEXT NOT NULL,
  version              BIGINT NOT NULL,
  room_id              TEXT NOT NULL,
  session_id           TEXT NOT NULL,
  first_message_index  BIGINT NOT NULL,
  forwarded_count      BIGINT NOT NULL,
  is_verified          BOOLEAN NOT NULL,
  session_data         TEXT NOT NULL,
  PRIMARY KEY (user_id, version, room_id, session_id),
  FOREIGN KEY (user_id, version) REFERENCES e2e_room_keys_versions (user_id, version) ON DELETE CASCADE
);

-- The to-device queue, per recipient device. stream_id is the to_device head at the send (one
-- per request; a request sends at most one message per device). Rows are deleted once the
-- device syncs with a token past them.
CREATE TABLE to_device_inbox (
  user_id      TEXT NOT NULL,
  device_id    TEXT NOT NULL,
  stream_id    BIGINT NOT NULL,
  sender       TEXT NOT NULL,
  event_type   TEXT NOT NULL,
  content      TEXT NOT NULL,
  PRIMARY KEY (user_id, device_id, stream_id)
);

-- Transaction ids of PUT /sendToDevice, per sending device and event type (the path): a retry
-- with the same id is answered without sending again.
CREATE TABLE to_device_txns (
  user_id      TEXT NOT NULL,
  device_id    TEXT NOT NULL,
  event_type   TEXT NOT NULL,
  txn_id       TEXT NOT NULL,
  created_ts   BIGINT NOT NULL,
  PRIMARY KEY (user_id, device_id, event_type, txn_id)
);
CREATE INDEX to_device_txns_created ON to_device_txns (created_ts);

-- OpenID tokens (POST /user/{userId}/openid/request_token), stored as sha256 hashes like access
-- tokens; they are only good for GET /_matrix/federation/v1/openid/userinfo.
CREATE TABLE openid_tokens (
  token_hash   BYTEA PRIMARY KEY,
  user_id      TEXT NOT NULL,
  expires_ts   BIGINT NOT NULL
);
CREATE INDEX openid_tokens_expires ON openid_tokens (expires_ts);
