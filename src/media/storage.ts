// Where media bytes live. Routes and the service only see MediaStorage, so an S3-compatible
// backend can be added later without touching them. Blobs are addressed by their sha256: the
// same file uploaded twice is stored once.
import { createHash, randomBytes, type Hash } from 'node:crypto';
import { constants } from 'node:fs';
import { mkdir, open, readdir, rename, rm, stat, unlink, type FileHandle } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import { BlockReader, DIRECT_ALIGN, giveBackRing, readRingAvailable, RING_BYTES, RING_SLOTS, roundUp, takeRing, WRITE_BATCH_BYTES } from './direct-io.js';
import { OffThreadSha256 } from './hasher.js';

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
  /**
   * The blob's bytes (or the inclusive byte range); rejects (ENOENT) when it is missing. `size`,
   * when the caller knows it, spares a stat.
   */
  open(sha256: string, range?: { start: number; end: number }, size?: number): Promise<Readable>;
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

/**
 * Bytes past this offset are written with O_DIRECT. The first ones go through the page cache, so
 * images (thumbnailed and fetched right after their upload) and the start of a video are read
 * from memory as before.
 */
export const DIRECT_FROM = 8 * WRITE_BATCH_BYTES;

/**
 * Reads of a big download (open() past directFrom): their size, and how many are in flight
 * (readBlock * readAhead must fit in a ring). See bench/media.ts for the measurements.
 */
const READ_BLOCK = WRITE_BATCH_BYTES;
const READ_AHEAD = RING_SLOTS;

/** Writes buf[0, len) at `position`, looping on short writes. */
async function writeAllAt(fh: FileHandle, buf: Uint8Array, len: number, position: number): Promise<void> {
  let off = 0;
  while (off < len) {
    const { bytesWritten } = await fh.write(buf, off, len - off, position + off);
    off += bytesWritten;
  }
}

/** fsync of a directory: makes the entries created in it (a rename, a new subdirectory) durable. */
async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
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

  /** False once O_DIRECT proved unsupported here (then all I/O goes through the page cache). */
  private directIo = true;
  /** Where O_DIRECT writes and reads start (DIRECT_FROM; tests and the bench change it). */
  directFrom = DIRECT_FROM;
  /** open()'s block size and reads in flight past directFrom (the bench changes them). */
  readBlock = READ_BLOCK;
  readAhead = READ_AHEAD;
  /** False: open() reads everything through the page cache (the bench compares the two). */
  directReads = true;

  /** The file opened again with O_DIRECT; undefined when the filesystem refuses it (tmpfs, some FUSE ones). */
  private async openDirect(path: string, flags: number): Promise<FileHandle | undefined> {
    if (!this.directIo) return undefined;
    try {
      return await this.openFile(path, flags | constants.O_DIRECT);
    } catch (err) {
      if ((err as { code?: string }).code === 'EINVAL') this.directIo = false;
      return undefined;
    }
  }

  /** node:fs/promises open (a seam for the tests). */
  protected openFile(path: string, flags: number): Promise<FileHandle> {
    return open(path, flags);
  }

  /** Called when an aligned O_DIRECT read or write got EINVAL: the page cache it is, from now on. */
  private refuseDirect(err: unknown): void {
    if ((err as { code?: string }).code !== 'EINVAL') throw err;
    this.directIo = false;
  }

  /**
   * Each chunk is copied into a ring of 1 MiB slots in a SharedArrayBuffer; a full slot is
   * written (thread pool) and hashed (worker thread, see hasher.ts) at once while the next ones
   * fill, and is refilled only when both are done, so the main thread only receives and copies.
   * Bytes past directFrom are written with O_DIRECT (from the page-aligned ring; the last block
   * padded, the file truncated back): filling the page cache with a big new file took more CPU
   * than anything else in an upload, and then left the final fsync the most to flush (see
   * bench/media.ts). The fsync is still done, for the first bytes and the file's metadata. A
   * source that ends within the first slot is hashed here (no round trip to the worker).
   */
  async stage(source: Readable, maxBytes: number): Promise<StagedBlob> {
    await this.ensureDir(this.tmpDir);
    const tmp = join(this.tmpDir, `${Date.now()}-${randomBytes(8).toString('hex')}`);
    this.live.add(tmp);
    let fh: FileHandle;
    try {
      fh = await open(tmp, 'wx');
    } catch (err) {
      this.live.delete(tmp);
      throw err;
    }
    const sab = takeRing();
    const ring = new Uint8Array(sab);
    /** The same file opened with O_DIRECT, once the first slot is full. */
    let direct: FileHandle | undefined;
    let offThread: OffThreadSha256 | undefined;
    let onThread: Hash | undefined;
    /** Completions of the submitted slots, oldest first (slots are used round robin). */
    const busy: Promise<void>[] = [];
    let slot = 0;
    let fill = 0;
    let size = 0;
    let position = 0;
    let padded = false;
    let triedDirect = false;
    const write = async (off: number, len: number, pos: number) => {
      if (direct && this.directIo && pos % DIRECT_ALIGN === 0) {
        try {
          await writeAllAt(direct, ring.subarray(off), roundUp(len), pos);
          if (roundUp(len) !== len) padded = true;
          return;
        } catch (err) {
          this.refuseDirect(err);
        }
      }
      await writeAllAt(fh, ring.subarray(off), len, pos);
    };
    const submit = () => {
      const off = slot * WRITE_BATCH_BYTES;
      const len = fill;
      let hashed: Promise<void> | undefined;
      if (onThread) onThread.update(ring.subarray(off, off + len));
      else hashed = offThread!.update(sab, off, len);
      const done = Promise.all([write(off, len, position), hashed]).then(() => undefined);
      // Handled where it is awaited; this keeps a failure while reading from being "unhandled".
      done.catch(() => undefined);
      busy.push(done);
      position += len;
      fill = 0;
      slot = (slot + 1) % RING_SLOTS;
    };
    let sha256: string;
    try {
      // destroyOnReturn false: when we stop early (too large) the source is left to its owner,
      // so an HTTP request's socket can still carry the 413 answer.
      for await (const chunk of source.iterator({ destroyOnReturn: false }) as AsyncIterable<Buffer>) {
        size += chunk.length;
        if (size > maxBytes) throw new BlobTooLargeError(`more than ${maxBytes} bytes`);
        for (let off = 0; off < chunk.length; ) {
          if (fill === 0 && busy.length === RING_SLOTS) await busy.shift();
          const n = Math.min(WRITE_BATCH_BYTES - fill, chunk.length - off);
          ring.set(n === chunk.length ? chunk : chunk.subarray(off, off + n), slot * WRITE_BATCH_BYTES + fill);
          fill += n;
          off += n;
          if (fill === WRITE_BATCH_BYTES) {
            if (!offThread && !onThread) {
              try {
                offThread = new OffThreadSha256();
              } catch {
                onThread = createHash('sha256');
              }
            }
            if (position >= this.directFrom && !triedDirect) {
              triedDirect = true;
              direct = await this.openDirect(tmp, constants.O_WRONLY);
            }
            submit();
          }
        }
      }
      if (!offThread && !onThread) {
        sha256 = createHash('sha256').update(ring.subarray(0, fill)).digest('hex');
        await writeAllAt(fh, ring, fill, 0);
      } else {
        if (fill > 0) submit();
        for (const p of busy.splice(0)) await p;
        sha256 = onThread ? onThread.digest('hex') : await offThread!.digest();
        if (padded) await fh.truncate(size);
      }
      // The bytes must be on disk before the database says they exist. (Flushing early while the
      // body still arrives, fdatasync every few MiB, was measured slower: see bench/media.ts.)
      await fh.sync();
      await direct?.close();
      await fh.close();
    } catch (err) {
      offThread?.abort();
      // No write may still be running when the file is closed and removed, and the ring is
      // reused only when nothing reads it any more.
      for (const p of busy.splice(0)) await p.catch(() => undefined);
      await direct?.close().catch(() => undefined);
      await fh.close().catch(() => undefined);
      await rm(tmp, { force: true });
      this.live.delete(tmp);
      giveBackRing(sab);
      throw err;
    }
    giveBackRing(sab);
    return this.staged(tmp, sha256, size);
  }

  private staged(tmp: string, sha256: string, size: number): StagedBlob {
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

  /**
   * Files larger than directFrom (those stage() wrote with O_DIRECT) are read with O_DIRECT past
   * directFrom too, see BlockReader: a first download is read from the disk at about dd's
   * `iflag=direct` speed, and a big file never fills the page cache, where it would evict what
   * is worth keeping there (PostgreSQL's pages, small media, thumbnails). Smaller files, and
   * every file when the filesystem refuses O_DIRECT, are read through the page cache.
   */
  async open(sha256: string, range?: { start: number; end: number }, size?: number): Promise<Readable> {
    const path = this.pathOf(sha256);
    // Opened before returning so a missing file rejects here, not mid-response.
    const fh = await open(path, 'r');
    try {
      const end = range ? range.end : (size ?? (await fh.stat()).size) - 1;
      if (this.readBlock % DIRECT_ALIGN !== 0 || this.readBlock * this.readAhead > RING_BYTES) throw new Error('readBlock x readAhead must fit in a ring');
      const direct = this.directReads && end >= this.directFrom && readRingAvailable() ? await this.openDirect(path, constants.O_RDONLY) : undefined;
      if (direct) {
        const onRefused = (err: unknown) => this.refuseDirect(err);
        return new BlockReader(fh, direct, this.directFrom, range?.start ?? 0, end, this.readBlock, this.readAhead, onRefused);
      }
    } catch (err) {
      await fh.close();
      throw err;
    }
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
