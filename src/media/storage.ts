// Where media bytes live. Routes and the service only see MediaStorage, so an S3-compatible
// backend can be added later without touching them. Blobs are addressed by their sha256: the
// same file uploaded twice is stored once.
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, open, readdir, rename, rm, stat, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';

const SHA256_RE = /^[0-9a-f]{64}$/;

/** Thrown by stage() when the source has more bytes than allowed. */
export class BlobTooLargeError extends Error {
  override name = 'BlobTooLargeError';
}

/** Bytes written to the store but not yet visible under their hash. */
export interface StagedBlob {
  sha256: string;
  size: number;
  /** Makes the blob readable under its sha256 (a no-op when identical bytes are already there). */
  commit(): Promise<void>;
  /** Drops the staged bytes. */
  discard(): Promise<void>;
}

export interface MediaStorage {
  /**
   * Streams `source` into the store while hashing it. Rejects with BlobTooLargeError past
   * `maxBytes` (the rest of the source is not read).
   */
  stage(source: Readable, maxBytes: number): Promise<StagedBlob>;
  /** The blob's bytes (or the inclusive byte range); rejects (ENOENT) when it is missing. */
  open(sha256: string, range?: { start: number; end: number }): Promise<Readable>;
  read(sha256: string): Promise<Buffer>;
  exists(sha256: string): Promise<boolean>;
  delete(sha256: string): Promise<void>;
}

const WRITE_BATCH_BYTES = 1024 * 1024;
/** Temp files older than this are leftovers of a crash (an upload is never this slow). */
const TMP_MAX_AGE_MS = 6 * 60 * 60 * 1000;

/** Writes every chunk, looping on short writes. */
async function writeAll(fh: FileHandle, chunks: Buffer[]): Promise<void> {
  let pending = chunks;
  while (pending.length > 0) {
    let { bytesWritten } = await fh.writev(pending);
    const rest: Buffer[] = [];
    for (const c of pending) {
      if (bytesWritten >= c.length) bytesWritten -= c.length;
      else {
        rest.push(c.subarray(bytesWritten));
        bytesWritten = 0;
      }
    }
    pending = rest;
  }
}

/**
 * The filesystem backend: <root>/content/ab/cd/abcd...; uploads are written to <root>/tmp
 * first (same filesystem, so the final rename is atomic and readers never see a partial file).
 */
export class FilesystemMediaStorage implements MediaStorage {
  private readonly tmpDir: string;
  private readonly contentDir: string;
  private readonly madeDirs = new Set<string>();
  private swept = false;

  constructor(root: string) {
    this.tmpDir = join(root, 'tmp');
    this.contentDir = join(root, 'content');
  }

  /** The path of a blob; the hash is checked so no caller can make it name another file. */
  pathOf(sha256: string): string {
    if (!SHA256_RE.test(sha256)) throw new Error(`not a sha256: ${JSON.stringify(sha256)}`);
    return join(this.contentDir, sha256.slice(0, 2), sha256.slice(2, 4), sha256);
  }

  private async ensureDir(dir: string): Promise<void> {
    if (this.madeDirs.has(dir)) return;
    await mkdir(dir, { recursive: true });
    this.madeDirs.add(dir);
  }

  async stage(source: Readable, maxBytes: number): Promise<StagedBlob> {
    await this.ensureDir(this.tmpDir);
    if (!this.swept) {
      this.swept = true;
      await this.sweepTmp();
    }
    const tmp = join(this.tmpDir, `${Date.now()}-${randomBytes(8).toString('hex')}`);
    const hash = createHash('sha256');
    let size = 0;
    const fh = await open(tmp, 'wx');
    let inFlight: Promise<unknown> = Promise.resolve();
    try {
      // Chunks from a socket are 16-64 KiB; they are gathered into ~1 MiB writev() calls (far
      // fewer thread-pool round trips), with one write in flight while the next batch fills.
      let batch: Buffer[] = [];
      let batchBytes = 0;
      const flush = async () => {
        await inFlight;
        if (batch.length === 0) return;
        const chunks = batch;
        batch = [];
        batchBytes = 0;
        inFlight = writeAll(fh, chunks);
        // Handled where it is awaited; this keeps a failure while reading from being "unhandled".
        inFlight.catch(() => undefined);
      };
      // destroyOnReturn false: when we stop early (too large) the source is left to its owner,
      // so an HTTP request's socket can still carry the 413 answer.
      for await (const chunk of source.iterator({ destroyOnReturn: false }) as AsyncIterable<Buffer>) {
        size += chunk.length;
        if (size > maxBytes) throw new BlobTooLargeError(`more than ${maxBytes} bytes`);
        hash.update(chunk);
        batch.push(chunk);
        batchBytes += chunk.length;
        if (batchBytes >= WRITE_BATCH_BYTES) await flush();
      }
      await flush();
      await inFlight;
      // The bytes must be on disk before the database says they exist.
      await fh.sync();
      await fh.close();
    } catch (err) {
      // No write may still be running when the file is closed and removed.
      await inFlight.catch(() => undefined);
      await fh.close().catch(() => undefined);
      await rm(tmp, { force: true });
      throw err;
    }
    const sha256 = hash.digest('hex');
    const finalPath = this.pathOf(sha256);
    let done = false;
    return {
      sha256,
      size,
      commit: async () => {
        if (done) return;
        done = true;
        if (await this.exists(sha256)) {
          await unlink(tmp);
          return;
        }
        await this.ensureDir(join(finalPath, '..'));
        // rename() replaces atomically: two concurrent identical uploads both end with one file.
        await rename(tmp, finalPath);
      },
      discard: async () => {
        if (done) return;
        done = true;
        await rm(tmp, { force: true });
      },
    };
  }

  /**
   * Removes temp files a crashed process left behind. Only old ones: another process sharing
   * the store may be writing a young one right now.
   */
  async sweepTmp(olderThanMs = TMP_MAX_AGE_MS): Promise<number> {
    let removed = 0;
    const cutoff = Date.now() - olderThanMs;
    for (const name of await readdir(this.tmpDir).catch(() => [] as string[])) {
      const path = join(this.tmpDir, name);
      const st = await stat(path).catch(() => undefined);
      if (st?.isFile() && st.mtimeMs < cutoff) {
        await rm(path, { force: true });
        removed++;
      }
    }
    return removed;
  }

  async open(sha256: string, range?: { start: number; end: number }): Promise<Readable> {
    const path = this.pathOf(sha256);
    // Opened before returning so a missing file rejects here, not mid-response.
    const fh = await open(path, 'r');
    return fh.createReadStream({ highWaterMark: 1024 * 1024, autoClose: true, ...(range ? { start: range.start, end: range.end } : {}) });
  }

  async read(sha256: string): Promise<Buffer> {
    const chunks: Buffer[] = [];
    for await (const chunk of await this.open(sha256)) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks);
  }

  async exists(sha256: string): Promise<boolean> {
    try {
      return (await stat(this.pathOf(sha256))).isFile();
    } catch {
      return false;
    }
  }

  async delete(sha256: string): Promise<void> {
    await rm(this.pathOf(sha256), { force: true });
  }
}

/** Stages an in-memory buffer (thumbnails, preview images). */
export function stageBuffer(storage: MediaStorage, bytes: Buffer): Promise<StagedBlob> {
  return storage.stage(Readable.from([bytes]), bytes.length);
}
