// Where media bytes live. Routes and the service only see MediaStorage, so an S3-compatible
// backend can be added later without touching them. Blobs are addressed by their sha256: the
// same file uploaded twice is stored once.
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, open, readdir, rename, rm, stat, unlink, type FileHandle } from 'node:fs/promises';
import { dirname, join } from 'node:path';
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
  /** Every stored blob and when it was last written, in no order (for the orphan sweep). */
  list(): AsyncIterable<{ sha256: string; modifiedMs: number }>;
  /**
   * Drops staged bytes a crashed process left behind: those last written more than
   * `olderThanMs` ago, never those of a stage() of this process that has not ended.
   */
  sweepStaged(olderThanMs: number): Promise<number>;
}

const WRITE_BATCH_BYTES = 1024 * 1024;

/** fsync of a directory: makes the entries created in it (a rename, a new subdirectory) durable. */
async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

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
  /** Temp files of stage() calls not yet committed or discarded: never swept. */
  private readonly live = new Set<string>();

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
    const first = await mkdir(dir, { recursive: true });
    // Each new directory's entry lives in its parent: synced too, or a power cut could lose the
    // directory of a file whose row is committed.
    if (first !== undefined) {
      for (let d = dir; dirname(d) !== d; d = dirname(d)) {
        await syncDir(dirname(d));
        if (d === first) break;
      }
    }
    this.madeDirs.add(dir);
  }

  async stage(source: Readable, maxBytes: number): Promise<StagedBlob> {
    await this.ensureDir(this.tmpDir);
    const tmp = join(this.tmpDir, `${Date.now()}-${randomBytes(8).toString('hex')}`);
    this.live.add(tmp);
    const hash = createHash('sha256');
    let size = 0;
    let fh: FileHandle;
    try {
      fh = await open(tmp, 'wx');
    } catch (err) {
      this.live.delete(tmp);
      throw err;
    }
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
      // The bytes must be on disk before the database says they exist. (Flushing early while the
      // body still arrives, fdatasync every few MiB, was measured slower: see bench/media.ts.)
      await fh.sync();
      await fh.close();
    } catch (err) {
      // No write may still be running when the file is closed and removed.
      await inFlight.catch(() => undefined);
      await fh.close().catch(() => undefined);
      await rm(tmp, { force: true });
      this.live.delete(tmp);
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
        try {
          if (await this.exists(sha256)) {
            await unlink(tmp);
            return;
          }
          await this.ensureDir(dirname(finalPath));
          // rename() replaces atomically: two concurrent identical uploads both end with one file.
          await rename(tmp, finalPath);
          // The file's bytes were synced before; its new name must be too before the caller
          // commits the row that points at it (the rename alone may sit in the page cache).
          await syncDir(dirname(finalPath));
        } finally {
          this.live.delete(tmp);
        }
      },
      discard: async () => {
        if (done) return;
        done = true;
        await rm(tmp, { force: true });
        this.live.delete(tmp);
      },
    };
  }

  /**
   * Removes temp files a crashed process left behind: only old ones (another process sharing
   * the store may be writing a young one right now; a temp file's time is its last write, so
   * a slow upload stays young) and never one of this process's own uploads.
   */
  async sweepStaged(olderThanMs: number): Promise<number> {
    let removed = 0;
    const cutoff = Date.now() - olderThanMs;
    for (const name of await readdir(this.tmpDir).catch(() => [] as string[])) {
      const path = join(this.tmpDir, name);
      if (this.live.has(path)) continue;
      const st = await stat(path).catch(() => undefined);
      if (st?.isFile() && st.mtimeMs <= cutoff && !this.live.has(path)) {
        await rm(path, { force: true });
        removed++;
      }
    }
    return removed;
  }

  /** Walks content/ab/cd/; names that are not a sha256 (nothing of ours) are left alone. */
  async *list(): AsyncIterable<{ sha256: string; modifiedMs: number }> {
    const names = async (dir: string) => (await readdir(dir).catch(() => [] as string[])).sort();
    for (const a of await names(this.contentDir)) {
      if (!/^[0-9a-f]{2}$/.test(a)) continue;
      for (const b of await names(join(this.contentDir, a))) {
        if (!/^[0-9a-f]{2}$/.test(b)) continue;
        const dir = join(this.contentDir, a, b);
        for (const name of await names(dir)) {
          if (!SHA256_RE.test(name) || !name.startsWith(a + b)) continue;
          const st = await stat(join(dir, name)).catch(() => undefined);
          if (st?.isFile()) yield { sha256: name, modifiedMs: st.mtimeMs };
        }
      }
    }
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
