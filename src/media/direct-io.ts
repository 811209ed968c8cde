// Page-aligned memory and block reads for O_DIRECT I/O of big media files (storage.ts): the
// rings of 1 MiB slots that uploads are staged through, and the reader of big downloads.
import type { FileHandle } from 'node:fs/promises';
import { Readable } from 'node:stream';

/** 1 MiB: a ring slot, a write of an upload, a read of a download. */
export const WRITE_BATCH_BYTES = 1024 * 1024;
/** Slots of a stage() ring: bytes being written and hashed while the next slots fill. */
export const RING_SLOTS = 4;
export const RING_BYTES = RING_SLOTS * WRITE_BATCH_BYTES;
/** O_DIRECT reads and writes whole blocks at aligned offsets, into and from aligned memory (4096 covers 512-byte devices too). */
export const DIRECT_ALIGN = 4096;
/** Rings kept for the next stage() and big open() calls. */
const spareRings: SharedArrayBuffer[] = [];
const MAX_SPARE_RINGS = 4;

/** A SharedArrayBuffer at a page-aligned address, as O_DIRECT needs: a shared wasm memory's. */
function alignedRing(): SharedArrayBuffer {
  type Wasm = { Memory: new (d: { initial: number; maximum: number; shared: boolean }) => { buffer: SharedArrayBuffer } };
  const pages = RING_BYTES / 65536;
  return new (globalThis as unknown as { WebAssembly: Wasm }).WebAssembly.Memory({ initial: pages, maximum: pages, shared: true }).buffer;
}

let ringsInUse = 0;
/**
 * Rings held by downloads at most (4 MiB each): past this many big downloads at once, the
 * next ones read through the page cache instead of holding more memory.
 */
const MAX_READ_RINGS = 32;

export function takeRing(): SharedArrayBuffer {
  ringsInUse++;
  return spareRings.pop() ?? alignedRing();
}

/** Only once nothing reads or writes the ring any more. */
export function giveBackRing(sab: SharedArrayBuffer): void {
  ringsInUse--;
  if (spareRings.length < MAX_SPARE_RINGS) spareRings.push(sab);
}

/** Whether a download may take a ring (see MAX_READ_RINGS). */
export const readRingAvailable = (): boolean => ringsInUse < MAX_READ_RINGS;

export const roundUp = (n: number) => Math.ceil(n / DIRECT_ALIGN) * DIRECT_ALIGN;

/**
 * Bytes [start, end] of a file, in blocks read into a page-aligned ring (the one stage() uses),
 * with O_DIRECT at and past `directFrom` and through the page cache before it (stage() wrote
 * those bytes through it, so they are likely still there). `readAhead` reads are in flight: the
 * next blocks are read while the previous one is sent. Each block is copied out of the ring
 * before it is pushed (a pushed chunk may sit in the socket's queue; the copy costs little next
 * to the read). The files are closed, and the ring given back, once no read is left running:
 * at the end, on an error, or when the stream is destroyed (a client gone, a HEAD, a 304).
 */
export class BlockReader extends Readable {
  private readonly sab = takeRing();
  private readonly ring = new Uint8Array(this.sab);
  /** Reads issued and not yet pushed, oldest first; block i is in slot i % readAhead. */
  private readonly queue: Promise<number>[] = [];
  private issued = 0;
  /** Where the next block read starts (aligned). */
  private next: number;
  /** Bytes of the first block before `start`. */
  private skip: number;
  private left: number;
  /** Where the last block needed ends (exclusive). */
  private readonly readEnd: number;
  private started = false;
  private useDirect = true;
  private wake: (() => void) | undefined;

  constructor(
    private readonly fh: FileHandle,
    private readonly direct: FileHandle,
    private readonly directFrom: number,
    start: number,
    end: number,
    private readonly block: number,
    private readonly readAhead: number,
    private readonly onRefused: (err: unknown) => void,
  ) {
    super({ highWaterMark: block });
    this.next = start - (start % DIRECT_ALIGN);
    this.skip = start - this.next;
    this.left = end - start + 1;
    this.readEnd = end + 1;
  }

  override _read(): void {
    if (this.started) {
      this.wake?.();
      return;
    }
    this.started = true;
    void this.pump();
  }

  /** Reads into the free slots, up to readAhead in flight. */
  private issue(): void {
    while (this.queue.length < this.readAhead && this.next < this.readEnd) {
      const read = this.readFull((this.issued++ % this.readAhead) * this.block, this.next);
      // Handled where it is awaited (pump, or _destroy).
      read.catch(() => undefined);
      this.queue.push(read);
      this.next += this.block;
    }
  }

  /** A whole block into the ring at `off` (less at the end of the file); returns its length. */
  private async readFull(off: number, pos: number): Promise<number> {
    let got = 0;
    while (got < this.block) {
      const at = pos + got;
      let n: number;
      if (this.useDirect && at >= this.directFrom && got % DIRECT_ALIGN === 0) {
        try {
          n = (await this.direct.read(this.ring, off + got, this.block - got, at)).bytesRead;
        } catch (err) {
          // Rethrown unless EINVAL (alignment refused): then the page cache, from here on.
          this.onRefused(err);
          this.useDirect = false;
          continue;
        }
      } else {
        n = (await this.fh.read(this.ring, off + got, this.block - got, at)).bytesRead;
      }
      if (n === 0) break;
      got += n;
    }
    return got;
  }

  private async pump(): Promise<void> {
    try {
      this.issue();
      while (this.queue.length > 0) {
        const slot = ((this.issued - this.queue.length) % this.readAhead) * this.block;
        const n = await this.queue[0]!;
        this.queue.shift();
        if (this.destroyed) return;
        const take = Math.min(n - this.skip, this.left);
        if (take <= 0 || (take < this.left && n < this.block)) throw new Error('media file shorter than its recorded size');
        const chunk = Buffer.allocUnsafe(take);
        chunk.set(this.ring.subarray(slot + this.skip, slot + this.skip + take));
        this.skip = 0;
        this.left -= take;
        // The slot is free again: the disk reads on while this block is sent.
        this.issue();
        if (!this.push(chunk) && this.left > 0) {
          await new Promise<void>((resolve) => (this.wake = resolve));
          this.wake = undefined;
          if (this.destroyed) return;
        }
      }
      this.push(null);
    } catch (err) {
      this.destroy(err as Error);
    }
  }

  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    this.wake?.();
    void Promise.allSettled(this.queue.splice(0)).then(async () => {
      await this.direct.close().catch(() => undefined);
      await this.fh.close().catch(() => undefined);
      giveBackRing(this.sab);
      callback(err);
    });
  }
}
