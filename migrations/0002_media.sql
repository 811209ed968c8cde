-- The media repository: uploaded files' metadata (the bytes live in the media store, addressed
-- by sha256 so identical uploads share them), generated thumbnails, and the URL preview cache.

CREATE TABLE media (
  -- Always this server's name for now; remote media cached over federation will share the table.
  server_name     TEXT NOT NULL,
  media_id        TEXT NOT NULL,
  -- NULL for media the server fetched itself (URL preview images).
  uploader        TEXT,
  content_type    TEXT,
  upload_name     TEXT,
  -- NULL until the bytes are there (an id from POST /_matrix/media/v1/create not yet uploaded).
  size            BIGINT,
  sha256          TEXT CHECK (sha256 ~ '^[0-9a-f]{64}$'),
  created_ts      BIGINT NOT NULL,
  uploaded_ts     BIGINT,
  -- Set for a created id not yet uploaded: the time it expires unused (unused_expires_at).
  pending_until   BIGINT,
  -- Uploaded while enable_authenticated_media was on: never served by the legacy
  -- unauthenticated /_matrix/media/v3/download and /thumbnail endpoints (the spec's "freeze").
  authenticated   BOOLEAN NOT NULL,
  -- The URL a preview image was fetched from; NULL for uploads.
  url_cache       TEXT,
  -- The image header, read once at the first thumbnail request (choosing a thumbnail size needs
  -- the source's dimensions; reading them again for every cached thumbnail would cost a file
  -- read). image_format 'invalid' remembers that the bytes are not a thumbnailable image.
  image_format    TEXT,
  image_width     INTEGER,
  image_height    INTEGER,
  image_frames    INTEGER,
  quarantined_by  TEXT,
  quarantined_ts  BIGINT,
  PRIMARY KEY (server_name, media_id),
  CHECK ((sha256 IS NULL) = (size IS NULL)),
  CHECK (sha256 IS NULL OR pending_until IS NULL)
);
-- Reference counting of stored bytes on delete.
CREATE INDEX media_sha256 ON media (sha256) WHERE sha256 IS NOT NULL;
-- Per-user pending-upload limit and expiry of unused ids.
CREATE INDEX media_pending ON media (uploader, pending_until) WHERE sha256 IS NULL;

CREATE TABLE media_thumbnails (
  server_name   TEXT NOT NULL,
  media_id      TEXT NOT NULL,
  -- The configured size (the box) and method this thumbnail was generated for.
  width         INTEGER NOT NULL,
  height        INTEGER NOT NULL,
  method        TEXT NOT NULL CHECK (method IN ('crop', 'scale')),
  animated      BOOLEAN NOT NULL,
  -- What was actually produced (never upscaled, so it may be smaller than the box).
  out_width     INTEGER NOT NULL,
  out_height    INTEGER NOT NULL,
  content_type  TEXT NOT NULL,
  size          BIGINT NOT NULL,
  sha256        TEXT NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
  created_ts    BIGINT NOT NULL,
  PRIMARY KEY (server_name, media_id, width, height, method, animated),
  FOREIGN KEY (server_name, media_id) REFERENCES media (server_name, media_id) ON DELETE CASCADE
);
CREATE INDEX media_thumbnails_sha256 ON media_thumbnails (sha256);

CREATE TABLE url_previews (
  url          TEXT NOT NULL,
  fetched_ts   BIGINT NOT NULL,
  expires_ts   BIGINT NOT NULL,
  -- The Open Graph object returned to clients (og:image already rewritten to an mxc:// URI).
  og           JSONB NOT NULL,
  PRIMARY KEY (url, fetched_ts)
);
CREATE INDEX url_previews_expires ON url_previews (expires_ts);
