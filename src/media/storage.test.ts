// The filesystem media store: content addressing, deduplication, limits, crash leftovers.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync, utimesSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, describe, it } from 'node:test';
import { BlobTooLargeError, FilesystemMediaStorage, stageBuffer } from './storage.js';

describe('filesystem media storage', () => {
  const root = mkdtempSync(join(tmpdir(), 'prat-media-store-'));
  const store = new FilesystemMediaStorage(root);
  after(() => rmSync(root, { recursive: true, force: true }));

  it('stores bytes under their sha256 and reads them back', async () => {
    const bytes = randomBytes(3 * 1024 * 1024 + 17);
    // Many small chunks, as from a socket.
    const chunks = [];
    for (let o = 0; o < bytes.length; o += 65536) chunks.push(bytes.subarray(o, o + 65536));
    const staged = await store.stage(Readable.from(chunks), bytes.length);
    const sha = createHash('sha256').update(bytes).digest('hex');
    assert.equal(staged.sha256, sha);
    assert.equal(staged.size, bytes.length);
    assert.equal(await store.exists(sha), false, 'invisible until committed');
    await staged.commit();
    assert.ok((await store.read(sha)).equals(bytes));
    assert.ok(existsSync(join(root, 'content', sha.slice(0, 2), sha.slice(2, 4), sha)));
  });

  it('writes big files past the O_DIRECT offset, in parallel, with odd sizes', async () => {
    const big = new FilesystemMediaStorage(root);
    big.directFrom = 1024 * 1024;
    const sizes = [5 * 1024 * 1024 + 4095, 2 * 1024 * 1024 + 1, 1024 * 1024, 3 * 1024 * 1024 + 4096];
    const all = sizes.map((n) => randomBytes(n));
    const staged = await Promise.all(
      all.map((bytes) => {
        // Uneven chunks, some straddling the ring's slots.
        const chunks = [];
        for (let o = 0, step = 1; o < bytes.length; o += step, step = (step * 7 + 4093) % 200_000) chunks.push(bytes.subarray(o, o + step));
        return big.stage(Readable.from(chunks), bytes.length);
      }),
    );
    for (const [i, s] of staged.entries()) {
      assert.equal(s.sha256, createHash('sha256').update(all[i]!).digest('hex'));
      assert.equal(s.size, all[i]!.length);
      await s.commit();
      assert.ok((await big.read(s.sha256)).equals(all[i]!));
    }
    // Past the limit, and a source that fails: no temp file left, and the next stage still works.
    await assert.rejects(big.stage(Readable.from([randomBytes(3 * 1024 * 1024), randomBytes(1024)]), 3 * 1024 * 1024), BlobTooLargeError);
    const failing = Readable.from(
      (async function* () {
        yield randomBytes(4 * 1024 * 1024);
        throw new Error('client went away');
      })(),
    );
    await assert.rejects(big.stage(failing, 64 * 1024 * 1024), /client went away/);
    assert.deepEqual(readdirSync(join(root, 'tmp')), []);
    const again = randomBytes(2 * 1024 * 1024 + 10);
    const s = await big.stage(Readable.from([again]), again.length);
    assert.equal(s.sha256, createHash('sha256').update(again).digest('hex'));
    await s.discard();
  });

  it('reads big files back with O_DIRECT past the offset: whole, in ranges, and stopped midway', async () => {
    const big = new FilesystemMediaStorage(root);
    big.directFrom = 1024 * 1024;
    const bytes = randomBytes(5 * 1024 * 1024 + 4097);
    const s = await big.stage(Readable.from([bytes]), bytes.length);
    await s.commit();
    const readAll = async (r: Readable) => {
      const chunks: Buffer[] = [];
      for await (const c of r) chunks.push(c as Buffer);
      return Buffer.concat(chunks);
    };
    for (const [block, ahead] of [[1024 * 1024, 4], [1024 * 1024, 2], [256 * 1024, 4], [4096, 1]] as const) {
      big.readBlock = block;
      big.readAhead = ahead;
      assert.ok((await readAll(await big.open(s.sha256))).equals(bytes), `${block} x ${ahead}`);
      assert.ok((await readAll(await big.open(s.sha256, undefined, bytes.length))).equals(bytes));
      const M = 1024 * 1024;
      const n = bytes.length;
      for (const [start, end] of [[0, n - 1], [M - 5, M + 5], [M, M], [3 * M + 4095, n - 1], [n - 1, n - 1], [17, 2 * M + 1], [M + 4096, 4 * M - 1]]) {
        const got = await readAll(await big.open(s.sha256, { start: start!, end: end! }));
        assert.ok(got.equals(bytes.subarray(start, end! + 1)), `${start}-${end}`);
      }
    }
    // Destroyed before and during the read (a HEAD, a client gone): every file closed.
    const fds = () => readdirSync('/proc/self/fd').length;
    const before = fds();
    (await big.open(s.sha256)).destroy();
    const midway = await big.open(s.sha256);
    await new Promise<void>((resolve) => midway.once('data', () => resolve()));
    midway.destroy();
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(fds(), before);
    // A file shorter than the caller says: an error, not a silently short body.
    await assert.rejects(readAll(await big.open(s.sha256, undefined, bytes.length + 5000)), /shorter/);
    assert.equal(fds(), before);
  });

  it('reads through the page cache when the filesystem refuses O_DIRECT', async () => {
    class NoDirect extends FilesystemMediaStorage {
      opened = 0;
      protected override openFile(path: string, flags: number) {
        this.opened++;
        return Promise.reject(Object.assign(new Error(`EINVAL: ${path} ${flags}`), { code: 'EINVAL' }));
      }
    }
    const plain = new NoDirect(root);
    plain.directFrom = 1024 * 1024;
    const bytes = randomBytes(3 * 1024 * 1024 + 123);
    const s = await plain.stage(Readable.from([bytes]), bytes.length);
    await s.commit();
    assert.ok((await plain.read(s.sha256)).equals(bytes));
    const chunks: Buffer[] = [];
    for await (const c of await plain.open(s.sha256, { start: 1024 * 1024 + 1, end: bytes.length - 2 })) chunks.push(c as Buffer);
    assert.ok(Buffer.concat(chunks).equals(bytes.subarray(1024 * 1024 + 1, bytes.length - 1)));
    // Tried once, then never again.
    assert.equal(plain.opened, 1);
  });

  it('keeps one copy of identical content', async () => {
    const bytes = randomBytes(1000);
    const stagedAll = await Promise.all([1, 2, 3].map(() => stageBuffer(store, bytes)));
    await Promise.all(stagedAll.map((s) => s.commit()));
    const dir = join(root, 'content', stagedAll[0]!.sha256.slice(0, 2), stagedAll[0]!.sha256.slice(2, 4));
    assert.deepEqual(readdirSync(dir).filter((n) => n === stagedAll[0]!.sha256).length, 1);
    assert.deepEqual(readdirSync(join(root, 'tmp')), []);
  });

  it('stops at the size limit and leaves no temp file', async () => {
    await assert.rejects(store.stage(Readable.from([randomBytes(600), randomBytes(600)]), 1000), BlobTooLargeError);
    assert.deepEqual(readdirSync(join(root, 'tmp')), []);
  });

  it('discards staged bytes and stores empty files', async () => {
    const staged = await stageBuffer(store, Buffer.from('discard me'));
    await staged.discard();
    assert.equal(await store.exists(staged.sha256), false);
    const empty = await stageBuffer(store, Buffer.alloc(0));
    await empty.commit();
    assert.equal((await store.read(empty.sha256)).length, 0);
  });

  it('refuses anything but a sha256 as a blob name', async () => {
    for (const bad of ['../../etc/passwd', 'ABC', '', 'a'.repeat(63)]) {
      assert.throws(() => store.pathOf(bad), /not a sha256/);
      await assert.rejects(store.open(bad));
    }
  });

  it('lists stored blobs with their times, and nothing else in the directory', async () => {
    const staged = await stageBuffer(store, Buffer.from('listed'));
    await staged.commit();
    writeFileSync(join(root, 'content', staged.sha256.slice(0, 2), staged.sha256.slice(2, 4), 'not-a-blob'), 'x');
    const listed = [];
    for await (const b of store.list()) listed.push(b);
    const mine = listed.find((b) => b.sha256 === staged.sha256);
    assert.ok(mine && Math.abs(mine.modifiedMs - Date.now()) < 60_000);
    assert.ok(listed.every((b) => /^[0-9a-f]{64}$/.test(b.sha256)));
  });

  it('sweeps old temp files left by a crash, not young ones', async () => {
    const old = join(root, 'tmp', 'crashed-upload');
    const young = join(root, 'tmp', 'in-progress-upload');
    writeFileSync(old, 'x');
    writeFileSync(young, 'y');
    const longAgo = new Date(Date.now() - 7 * 60 * 60 * 1000);
    utimesSync(old, longAgo, longAgo);
    assert.equal(await store.sweepStaged(6 * 60 * 60 * 1000), 1);
    assert.equal(existsSync(old), false);
    assert.equal(existsSync(young), true);
    rmSync(young);
  });
});
