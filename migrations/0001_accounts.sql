-- Accounts: users, devices, access and refresh tokens, user-interactive auth sessions,
-- registration tokens. Tokens are stored only as sha256 hashes.

CREATE TABLE users (
  user_id        TEXT PRIMARY KEY,
  password_hash  TEXT,
  is_admin       BOOLEAN NOT NULL DEFAULT FALSE,
  is_guest       BOOLEAN NOT NULL DEFAULT FALSE,
  -- A deactivated user keeps its row so the id is never handed out again.
  deactivated    BOOLEAN NOT NULL DEFAULT FALSE,
  displayname    TEXT,
  avatar_url     TEXT,
  created_ts     BIGINT NOT NULL
);

CREATE TABLE devices (
  user_id              TEXT NOT NULL REFERENCES users (user_id),
  device_id            TEXT NOT NULL,
  display_name         TEXT,
  last_seen_ts         BIGINT,
  last_seen_ip         TEXT,
  last_seen_user_agent TEXT,
  created_ts           BIGINT NOT NULL,
  PRIMARY KEY (user_id, device_id)
);

CREATE TABLE refresh_tokens (
  id              BIGSERIAL PRIMARY KEY,
  token_hash      BYTEA NOT NULL UNIQUE,
  user_id         TEXT NOT NULL,
  device_id       TEXT NOT NULL,
  -- Set when the token has been exchanged; the old one stays valid until the new pair is used,
  -- so a client that lost the refresh response can retry.
  next_token_id   BIGINT REFERENCES refresh_tokens (id) ON DELETE CASCADE,
  created_ts      BIGINT NOT NULL,
  FOREIGN KEY (user_id, device_id) REFERENCES devices (user_id, device_id) ON DELETE CASCADE
);

CREATE TABLE access_tokens (
  id               BIGSERIAL PRIMARY KEY,
  token_hash       BYTEA NOT NULL UNIQUE,
  user_id          TEXT NOT NULL,
  device_id        TEXT NOT NULL,
  created_ts       BIGINT NOT NULL,
  -- NULL: does not expire (no refresh token was asked for).
  expires_ts       BIGINT,
  refresh_token_id BIGINT REFERENCES refresh_tokens (id) ON DELETE CASCADE,
  -- Whether the token has been used once; a refresh token exchanged before its access token was
  -- ever used can be exchanged again (Synapse's rule).
  used             BOOLEAN NOT NULL DEFAULT FALSE,
  FOREIGN KEY (user_id, device_id) REFERENCES devices (user_id, device_id) ON DELETE CASCADE
);
CREATE INDEX access_tokens_device ON access_tokens (user_id, device_id);

CREATE TABLE uia_sessions (
  session_id   TEXT PRIMARY KEY,
  created_ts   BIGINT NOT NULL,
  -- The request the session was started for; a session cannot be replayed on another endpoint.
  method       TEXT NOT NULL,
  uri          TEXT NOT NULL,
  -- The first request's body (registration keeps username/password across stages).
  clientdict   JSONB NOT NULL,
  completed    JSONB NOT NULL DEFAULT '[]',
  -- Stage results, e.g. the registration token used.
  results      JSONB NOT NULL DEFAULT '{}'
);

CREATE TABLE registration_tokens (
  token          TEXT PRIMARY KEY,
  uses_allowed   INTEGER,
  pending        INTEGER NOT NULL DEFAULT 0,
  completed      INTEGER NOT NULL DEFAULT 0,
  expiry_time    BIGINT
);

-- Generated localparts (guests, registrations without a username) are numbers, as Synapse's.
CREATE SEQUENCE user_id_seq START 1;

-- Single-use nonces of the shared-secret registration API, shared by every process.
CREATE TABLE registration_nonces (
  nonce      TEXT PRIMARY KEY,
  created_ts BIGINT NOT NULL
);
