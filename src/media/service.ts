// The media repository: uploads (direct and asynchronous), downloads, thumbnails, quarantine
// and deletion. Bytes go through MediaStorage; metadata lives in PostgreSQL (store.ts).
import type { Readable } from 'node:stream';
import type { PratConfig } from '../config/schema.js';
import type { Database, Queryable } from '../db/pool.js';
import { MatrixError, notFound } from '../http/errors.js';
import type { Logger } from '../logger.js';
import { isValidMediaId, isValidServerName, newMediaId, normaliseUploadContentType, sanitiseFileName } from './ids.js';
import { BlobTooLargeError, stageBuffer, type MediaStorage, type StagedBlob } from './storage.js';
import * as store from './store.js';
import type { MediaRow, ThumbnailRow } from './store.js';
import {
  checkPixelLimit,
  generateThumbnail,
  isAnimated,
  notThumbnailable,
  probeImage,
  selectSize,
  type ImageInfo,
  type ThumbnailMethod,
} from './thumbnailer.js';

/** The spec's default wait for a pending upload, and our ceiling on what a client may ask. */
export const DEFAULT_TIMEOUT_MS = 20_000;
export const MAX_TIMEOUT_MS = 60_000;
/** How often a waiting download re-reads the row, for uploads finished by another process. */
const PENDING_POLL_MS = 500;
/**
 * Thumbnails generated at once. Each decodes a whole image (up to max_image_pixels, ~100 MB
 * of pixels at the default); more in parallel would only trade memory for nothing, as libvips
 * already spreads one image over the cores.
 */
const MAX_CONCURRENT_THUMBNAILS = 2;
/**
 * The orphan sweep removes stored bytes no row refers to (a crash between the file's rename and
 * the transaction's commit leaves some) and temp files of interrupted uploads. It runs at
 * startup and then at this interval.
 */
export const SWEEP_INTERVAL_MS = 60 * 60 * 1000;
/**
 * Files last written less than this long ago are never swept. Not what keeps a live upload
 * safe (blobs are checked under the blob lock the upload holds until its commit, and this
 * process's own temp files are skipped), but a margin for other processes sharing the store
 * and for clocks: a temp file's time is its last write, so only an upload stalled this long
 * loses its file.
 */
export const SWEEP_GRACE_MS = 60 * 60 * 1000;
/** Hashes checked against the database per query. */
const SWEEP_BATCH = 500;

/** A media row whose bytes are there. */
export type StoredMedia = MediaRow & { sha256: string; size: number };

export interface UploadOptions {
  contentType: string | undefined;
  fileName: string | undefined;
  /** The Content-Length header, to refuse an oversize upload before reading it. */
  contentLength: string | undefined;
}

export type ThumbnailAnswer =
  /** The source is no larger than asked: the spec says to serve it rather than thumbnail it. */
  | { kind: 'original'; media: StoredMedia; contentType: string }
  | { kind: 'thumbnail'; media: StoredMedia; thumbnail: ThumbnailRow };

export class MediaService {
  /** Downloads waiting for an async upload in this process, by media id. */
  private readonly waiters = new Map<string, Set<() => void>>();
  /** Thumbnails being generated, so concurrent first requests generate once. */
  private readonly generating = new Map<string, Promise<ThumbnailRow>>();
  /**
   * Stored thumbnails by key. Safe to keep: a thumbnail never changes, media ids are never
   * reused, and every request re-reads the media row first (quarantine and delete still apply).
   */
  private readonly thumbnailRows = new Map<string, ThumbnailRow>();
  private running = 0;
  private readonly queue: (() => void)[] = [];
  private sweepTimer: NodeJS.Timeout | undefined;
  private sweeping: Promise<unknown> | undefined;

  constructor(
    private readonly db: Database,
    readonly storage: MediaStorage,
    private readonly config: PratConfig,
    private readonly log: Logger,
    private readonly shutdown: AbortSignal,
  ) {}

  get serverName(): string {
    return this.config.server_name;
  }

  uploadConfig(): { 'm.upload.size': number } {
    return { 'm.upload.size': this.config.media.max_upload_size };
  }

  // ---- uploads --------------------------------------------------------------------------

  /** POST /_matrix/media/v3/upload: stores the body and returns its new mxc:// URI. */
  async upload(uploader: string, body: Readable, opts: UploadOptions): Promise<string> {
    const { contentType, fileName } = this.checkUploadHeaders(opts);
    const staged = await this.stage(body);
    const mediaId = newMediaId();
    await this.persist(staged, (tx) =>
      store.insertUploaded(tx, {
        serverName: this.serverName,
        mediaId,
        uploader,
        contentType,
        uploadName: fileName,
        size: staged.size,
        sha256: staged.sha256,
        authenticated: this.config.media.enable_authenticated_media,
      }),
    );
    this.log.info({ mediaId, size: staged.size, uploader }, 'media uploaded');
    return `mxc://${this.serverName}/${mediaId}`;
  }

  /** POST /_matrix/media/v1/create: reserves an id to upload to later. */
  async create(uploader: string): Promise<{ content_uri: string; unused_expires_at: number }> {
    const now = Date.now();
    // Expired reservations are dropped here rather than by a timer: creating is when they count.
    await store.deleteExpiredPending(this.db, now);
    const pending = await store.pendingUploads(this.db, uploader, now);
    if (pending.count >= this.config.media.max_pending_uploads) {
      throw new MatrixError('M_LIMIT_EXCEEDED', 'Too many pending media uploads', {
        extra: { retry_after_ms: Math.max(1, (pending.firstExpiry ?? now) - now) },
      });
    }
    const mediaId = newMediaId();
    const expires = now + this.config.media.unused_expires_after_ms;
    await store.insertPending(this.db, {
      serverName: this.serverName,
      mediaId,
      uploader,
      pendingUntil: expires,
      authenticated: this.config.media.enable_authenticated_media,
    });
    return { content_uri: `mxc://${this.serverName}/${mediaId}`, unused_expires_at: expires };
  }

  /** PUT /_matrix/media/v3/upload/{serverName}/{mediaId}: fills an id from create(), once. */
  async uploadTo(uploader: string, serverName: string, mediaId: string, body: Readable, opts: UploadOptions): Promise<void> {
    this.checkIds(serverName, mediaId);
    const { contentType, fileName } = this.checkUploadHeaders(opts);
    const checkRow = (row: MediaRow | undefined) => {
      if (!row || serverName !== this.serverName) throw notFound('Unknown media ID');
      if (row.uploader !== uploader) throw new MatrixError('M_FORBIDDEN', 'You may not upload to this media ID');
      if (row.sha256 !== null) throw new MatrixError('M_CANNOT_OVERWRITE_MEDIA', 'Media already uploaded');
      if (row.pending_until === null || row.pending_until <= Date.now()) throw notFound('The media ID has expired');
    };
    // Checked before reading the body (no point receiving bytes that will be refused) and again
    // when storing them (another request may have filled the id meanwhile).
    checkRow(await store.getMedia(this.db, serverName, mediaId));
    const staged = await this.stage(body);
    await this.persist(staged, async (tx) => {
      const ok = await store.completePending(tx, { serverName, mediaId, contentType, uploadName: fileName, size: staged.size, sha256: staged.sha256 });
      if (!ok) checkRow(await store.getMedia(tx, serverName, mediaId));
    });
    this.log.info({ mediaId, size: staged.size, uploader }, 'media uploaded to created id');
    this.notifyUploaded(mediaId);
  }

  /** Stores bytes the server fetched itself (URL preview images). */
  async storeFetched(bytes: Buffer, contentType: string, url: string): Promise<{ mediaId: string; sha256: string; size: number }> {
    const staged = await stageBuffer(this.storage, bytes);
    const mediaId = newMediaId();
    await this.persist(staged, (tx) =>
      store.insertUploaded(tx, {
        serverName: this.serverName,
        mediaId,
        uploader: null,
        contentType,
        uploadName: null,
        size: staged.size,
        sha256: staged.sha256,
        authenticated: this.config.media.enable_authenticated_media,
        urlCache: url,
      }),
    );
    return { mediaId, sha256: staged.sha256, size: staged.size };
  }

  private checkUploadHeaders(opts: UploadOptions): { contentType: string; fileName: string | null } {
    if (opts.contentLength !== undefined) {
      const declared = Number(opts.contentLength);
      if (Number.isFinite(declared) && declared > this.config.media.max_upload_size) throw this.tooLarge();
    }
    const contentType = normaliseUploadContentType(opts.contentType);
    if (contentType === null) throw new MatrixError('M_INVALID_PARAM', 'Content-Type is not a valid media type');
    let fileName: string | null = null;
    if (opts.fileName !== undefined && opts.fileName !== '') {
      fileName = sanitiseFileName(opts.fileName);
      if (fileName === '') fileName = null;
    }
    return { contentType, fileName };
  }

  private tooLarge(): MatrixError {
    return new MatrixError('M_TOO_LARGE', `Upload is larger than the limit of ${this.config.media.max_upload_size} bytes`);
  }

  private async stage(body: Readable): Promise<StagedBlob> {
    try {
      return await this.storage.stage(body, this.config.media.max_upload_size);
    } catch (err) {
      if (err instanceof BlobTooLargeError) throw this.tooLarge();
      if ((err as { code?: string }).code === 'ERR_STREAM_PREMATURE_CLOSE' || (err as { code?: string }).code === 'ECONNRESET') {
        throw new MatrixError('M_UNKNOWN', 'The upload was interrupted');
      }
      throw err;
    }
  }

  /**
   * Records a staged blob: under the blob's lock, the row(s) are written and the bytes made
   * visible in one transaction; if anything fails the staged bytes are dropped.
   */
  private async persist(staged: StagedBlob, write: (tx: Queryable) => Promise<unknown>): Promise<void> {
    try {
      await this.db.withTx('media_store', async (tx) => {
        await store.lockBlob(tx, staged.sha256);
        await write(tx);
        await staged.commit();
      });
    } catch (err) {
      await staged.discard().catch(() => undefined);
      throw err;
    }
  }

  // ---- downloads ------------------------------------------------------------------------

  private checkIds(serverName: string, mediaId: string): void {
    if (!isValidServerName(serverName)) throw new MatrixError('M_INVALID_PARAM', 'Invalid server name');
    if (!isValidMediaId(mediaId)) throw new MatrixError('M_INVALID_PARAM', 'Invalid media ID');
  }

  /**
   * The media to serve, waiting up to `timeoutMs` for a pending async upload. `legacy`: asked
   * through an unauthenticated /_matrix/media/v3 endpoint, which does not serve media uploaded
   * while enable_authenticated_media was on.
   */
  async resolve(serverName: string, mediaId: string, opts: { timeoutMs: number; legacy: boolean; signal?: AbortSignal }): Promise<StoredMedia> {
    this.checkIds(serverName, mediaId);
    if (serverName !== this.serverName) {
      // Remote media is fetched over federation once that exists; until then it is unknown.
      throw notFound('Remote media is not available');
    }
    const deadline = Date.now() + Math.min(Math.max(opts.timeoutMs, 0), MAX_TIMEOUT_MS);
    for (;;) {
      const row = await store.getMedia(this.db, serverName, mediaId);
      if (!row || row.quarantined_by !== null) throw notFound('Media not found');
      if (opts.legacy && this.config.media.enable_authenticated_media && row.authenticated) throw notFound('Media not found');
      if (row.sha256 !== null && row.size !== null) return row as StoredMedia;
      if (row.pending_until === null || row.pending_until <= Date.now()) throw notFound('Media not found');
      const left = deadline - Date.now();
      if (left <= 0) throw new MatrixError('M_NOT_YET_UPLOADED', 'Media has not been uploaded yet');
      await this.waitForUpload(mediaId, Math.min(left, PENDING_POLL_MS), opts.signal);
      if (opts.signal?.aborted || this.shutdown.aborted) throw new MatrixError('M_NOT_YET_UPLOADED', 'Media has not been uploaded yet');
    }
  }

  open(media: { sha256: string; size?: number }, range?: { start: number; end: number }): Promise<Readable> {
    return this.storage.open(media.sha256, range, media.size);
  }

  private waitForUpload(mediaId: string, ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolveWait) => {
      let set = this.waiters.get(mediaId);
      if (!set) this.waiters.set(mediaId, (set = new Set()));
      const done = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', done);
        this.shutdown.removeEventListener('abort', done);
        set.delete(done);
        if (set.size === 0 && this.waiters.get(mediaId) === set) this.waiters.delete(mediaId);
        resolveWait();
      };
      const timer = setTimeout(done, ms);
      signal?.addEventListener('abort', done, { once: true });
      this.shutdown.addEventListener('abort', done, { once: true });
      set.add(done);
    });
  }

  private notifyUploaded(mediaId: string): void {
    for (const wake of [...(this.waiters.get(mediaId) ?? [])]) wake();
  }

  // ---- thumbnails -----------------------------------------------------------------------

  async thumbnail(
    serverName: string,
    mediaId: string,
    want: { width: number; height: number; method: ThumbnailMethod; animated: boolean },
    opts: { timeoutMs: number; legacy: boolean; signal?: AbortSignal },
  ): Promise<ThumbnailAnswer> {
    const media = await this.resolve(serverName, mediaId, opts);
    // Declared non-images are refused without reading them (a 50 MB PDF is not decoded to
    // find out); declared images are still checked by their bytes.
    if (!(media.content_type ?? '').toLowerCase().startsWith('image/')) throw notThumbnailable();
    let source: Buffer | undefined;
    let info: ImageInfo;
    if (media.image_format === null) {
      source = await this.storage.read(media.sha256);
      try {
        info = await probeImage(source);
      } catch (err) {
        await store.setImageInfo(this.db, serverName, mediaId, { format: 'invalid', width: null, height: null, frames: null });
        throw err;
      }
      await store.setImageInfo(this.db, serverName, mediaId, { format: info.format, width: info.width, height: info.height, frames: info.pages });
    } else if (media.image_format === 'invalid') {
      throw notThumbnailable();
    } else {
      info = { format: media.image_format, width: media.image_width!, height: media.image_height!, pages: media.image_frames ?? 1 };
    }
    checkPixelLimit(info, this.config.media.max_image_pixels);
    const animated = want.animated && isAnimated(info);
    // No larger than asked: the original, in its real format (not the declared type), unless
    // it is animated and the client did not ask for animation (the spec's MUST NOT).
    if (info.width <= want.width && info.height <= want.height && (!isAnimated(info) || animated)) {
      return { kind: 'original', media, contentType: `image/${info.format}` };
    }
    const size = selectSize(this.config.media.thumbnail_sizes, info, want);
    if (!size) return { kind: 'original', media, contentType: `image/${info.format}` };
    const key = { serverName, mediaId, width: size.width, height: size.height, method: size.method, animated };
    const flightKey = `${serverName}/${mediaId}/${size.width}x${size.height}/${size.method}/${animated}`;
    const cached = this.thumbnailRows.get(flightKey) ?? (await store.getThumbnail(this.db, key));
    if (cached) {
      this.remember(flightKey, cached);
      return { kind: 'thumbnail', media, thumbnail: cached };
    }
    let flight = this.generating.get(flightKey);
    if (!flight) {
      flight = (async () => {
        const t = await this.limited(async () => {
          const bytes = source ?? (await this.storage.read(media.sha256));
          return generateThumbnail(bytes, info, size, animated, this.config.media.max_image_pixels);
        });
        const row: ThumbnailRow = {
          width: size.width,
          height: size.height,
          method: size.method,
          animated,
          out_width: t.width,
          out_height: t.height,
          content_type: t.contentType,
          size: t.bytes.length,
          sha256: '',
        };
        const staged = await stageBuffer(this.storage, t.bytes);
        row.sha256 = staged.sha256;
        let inserted = false;
        await this.persist(staged, async (tx) => {
          inserted = await store.insertThumbnail(tx, serverName, mediaId, row);
        });
        if (!inserted) {
          // Another process stored it first, or the media was deleted meanwhile.
          const existing = await store.getThumbnail(this.db, key);
          await this.releaseBlobs([row.sha256]);
          if (!existing) throw notFound('Media not found');
          return existing;
        }
        return row;
      })().finally(() => this.generating.delete(flightKey));
      this.generating.set(flightKey, flight);
    }
    return { kind: 'thumbnail', media, thumbnail: await flight };
  }

  private remember(key: string, row: ThumbnailRow): void {
    // Bounded: dropping everything now and then is simpler than an LRU and costs one query each.
    if (this.thumbnailRows.size >= 10_000) this.thumbnailRows.clear();
    this.thumbnailRows.set(key, row);
  }

  /** Runs `fn` when fewer than MAX_CONCURRENT_THUMBNAILS are running. */
  private async limited<T>(fn: () => Promise<T>): Promise<T> {
    if (this.running >= MAX_CONCURRENT_THUMBNAILS) await new Promise<void>((r) => this.queue.push(r));
    this.running++;
    try {
      return await fn();
    } finally {
      this.running--;
      this.queue.shift()?.();
    }
  }

  // ---- administration ---------------------------------------------------------------------

  /** Quarantined media answers 404 everywhere; its bytes are kept for review. */
  async quarantine(serverName: string, mediaId: string, by: string | null): Promise<void> {
    this.checkIds(serverName, mediaId);
    if (!(await store.setQuarantine(this.db, serverName, mediaId, by))) throw notFound('Unknown media');
  }

  async delete(serverName: string, mediaId: string): Promise<void> {
    this.checkIds(serverName, mediaId);
    if (serverName !== this.serverName) throw new MatrixError('M_INVALID_PARAM', 'Can only delete local media');
    const hashes = await store.deleteMedia(this.db, serverName, mediaId);
    if (!hashes) throw notFound('Unknown media');
    await this.releaseBlobs(hashes);
    this.log.info({ mediaId }, 'media deleted');
  }

  /** Unlinks blobs nothing refers to any more (checked under each blob's lock); how many. */
  private async releaseBlobs(hashes: string[]): Promise<number> {
    let released = 0;
    for (const sha256 of [...new Set(hashes)].sort()) {
      await this.db.withTx('media_release_blob', async (tx) => {
        await store.lockBlob(tx, sha256);
        if (!(await store.blobReferenced(tx, sha256))) {
          await this.storage.delete(sha256);
          released++;
        }
      });
    }
    return released;
  }

  // ---- orphan sweep -------------------------------------------------------------------------

  /** Sweeps now (in the background) and every SWEEP_INTERVAL_MS until close() or shutdown. */
  startSweeper(): void {
    const run = () => {
      if (this.sweeping || this.shutdown.aborted) return;
      this.sweeping = this.sweepOrphans()
        .catch((err: unknown) => {
          if (!this.shutdown.aborted) this.log.warn({ err: (err as Error).message }, 'media orphan sweep failed');
        })
        .finally(() => {
          this.sweeping = undefined;
        });
    };
    run();
    this.sweepTimer = setInterval(run, SWEEP_INTERVAL_MS);
    this.sweepTimer.unref();
  }

  /** Stops the sweeper and waits for a sweep under way (it stops at its next batch). */
  async close(): Promise<void> {
    clearInterval(this.sweepTimer);
    this.sweepTimer = undefined;
    await this.sweeping;
  }

  /**
   * Deletes stored bytes no media or thumbnail row refers to, and temp files of interrupted
   * uploads, when last written more than `graceMs` ago.
   */
  async sweepOrphans(opts: { graceMs?: number } = {}): Promise<{ blobs: number; staged: number }> {
    const graceMs = opts.graceMs ?? SWEEP_GRACE_MS;
    const staged = await this.storage.sweepStaged(graceMs);
    const cutoff = Date.now() - graceMs;
    let blobs = 0;
    let batch: string[] = [];
    const check = async () => {
      const referenced = await store.referencedBlobs(this.db, batch);
      // The unreferenced few are checked again under their lock: an upload may have just reused one.
      blobs += await this.releaseBlobs(batch.filter((h) => !referenced.has(h)));
      batch = [];
    };
    for await (const blob of this.storage.list()) {
      if (this.shutdown.aborted) break;
      if (blob.modifiedMs > cutoff) continue;
      batch.push(blob.sha256);
      if (batch.length >= SWEEP_BATCH) await check();
    }
    if (batch.length > 0 && !this.shutdown.aborted) await check();
    if (blobs > 0 || staged > 0) this.log.info({ blobs, staged }, 'media orphan sweep removed files');
    return { blobs, staged };
  }
}
