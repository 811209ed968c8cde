// On-demand benchmark of the media repository: `npx tsx bench/media.ts`.
//
// Starts a throwaway PostgreSQL and an in-process homeserver (as the spec tests do), then
// measures, for a 50 MB file:
//   - raw disk: write+fsync and read of the same size in the media store's directory, with
//     1 MiB blocks, from Node and with dd itself (`dd bs=1M conv=fsync` to write; `dd bs=1M
//     iflag=direct` to read from the disk rather than the page cache), as the baselines;
//   - storage only: MediaStorage.stage() from memory (sha256, batched writes, fsync), no HTTP;
//   - upload: POST /_matrix/media/v3/upload end to end (HTTP, hashing, temp file, fsync, rename,
//     database row);
//   - download: GET /_matrix/client/v1/media/download end to end;
// and the latency of a thumbnail the first time (decode, resize, encode, store) and cached.
// Two clients: node:http with a keep-alive agent in the server's own process (its CPU is
// counted too; fetch/undici would cost several times more per byte than the server itself),
// and curl in its own process (when installed), timed by curl's own time_total.
// Everything is noisy on a shared machine: the load average is printed with the results, and
// the fastest run next to each median.
//
// Where an upload's time goes (2026-11-21, 2 shared vCPUs): not the disk (dd writes 50 MB in
// 30-160 ms), not sha256 (~35 ms), but filling the page cache with a new file: THREADS=1 shows
// the thread pool's writes taking 20 ms of CPU per 50 MB in a quiet moment and 120-180 ms in a
// busy one, however they are issued. Hence stage(): chunks copied into a 4 x 1 MiB ring, each
// full slot hashed on a worker thread and written at once, and bytes past 8 MiB written with
// O_DIRECT (the fsync is kept). Interleaved A/B, 20 runs each, load 1.7: upload median 92 vs
// 200 ms in-process, 88 vs 199 ms with curl (0.9x vs 2.0x dd, whose median was 100 ms), storage
// only 44 vs 71 ms, server CPU 128 vs 236 ms. The price: the first download of a fresh big file
// reads its bytes past 8 MiB from disk (116 vs 43 ms in-process, 76 vs 37 ms with curl).
//
// Downloads (issue 6: within 2x of the disk's own read speed): bytes past 8 MiB of a big file
// are now read with O_DIRECT too (FilesystemMediaStorage.open, BlockReader), 1 MiB blocks into
// the upload ring, 4 in flight, each copied out and pushed while the next ones are read; the
// bench interleaves both read paths in one process (old = page cache). 2026-11-21, 2 shared
// vCPUs, load 1.4-1.9, 20 runs: first download median 71 vs 97 ms in-process, 53 vs 85 ms with
// curl (1.37x / 1.02x dd iflag=direct, whose median was 52 ms, vs 1.87x / 1.63x); other runs
// 63 vs 134, 51 vs 95, 67 vs 81 ms in-process (the old path varies the most: filling the page
// cache costs CPU, as for uploads). The price: a repeated download of the same big file is no
// longer served from the page cache (62-68 vs 45-52 ms), which is also the point: big media
// no longer evicts PostgreSQL's pages. Read size and depth, within noise of each other
// (READ_VARIANTS, 8-20 runs each): 1 MiB x 4 54/52/63 ms, 1 MiB x 2 67/46/71, 2 MiB x 2 56/51,
// 512 KiB x 8 57, 4 MiB x 1 74, 1 MiB x 1 73. Tried and measured, and not kept:
// - sha256 on the worker with page-cache writes (ring copy, or moving the socket chunks to the
//   worker once written): no better, often worse (curl 179 vs 147, 230 vs 176, 277 vs 165 ms);
//   one write in flight instead of four: the same;
// - O_DIRECT with sha256 on the main thread: 86/82 vs 66/73 ms with the worker (15 runs);
// - O_DIRECT from 1 MiB instead of 8: within noise (138/151 vs 153/141 ms);
// - for that first download, 256 KiB or 4 MiB reads instead of 1 MiB: within noise;
// - earlier: fdatasync every 4/8/16 MiB while the body arrives (1.5x slower), 4 MiB write
//   batches, three positional writes in flight, 'data' events instead of the async iterator
//   (within noise or slower), glibc MALLOC_TRIM_THRESHOLD_/TOP_PAD_ (slower).
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import { promisify } from 'node:util';
import { createReadStream, readdirSync, readFileSync } from 'node:fs';
import { Readable } from 'node:stream';
import { open, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { startBenchCluster } from './support.js';
import type { FilesystemMediaStorage } from '../src/media/storage.js';
import { testImage } from '../spec-tests/support/media.js';

const MB = 1024 * 1024;
const SIZE = 50 * MB;
const RUNS = Number(process.env['RUNS'] ?? 5);
const THUMB_RUNS = Number(process.env['THUMB_RUNS'] ?? 300);

const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });

/** One request; resolves with the status and the body length (or body, when asked). */
function request(
  url: string,
  opts: { method?: string; headers?: Record<string, string>; body?: Buffer; keepBody?: boolean } = {},
): Promise<{ status: number; length: number; body: Buffer }> {
  return new Promise((resolveReq, reject) => {
    const req = http.request(url, { method: opts.method ?? 'GET', headers: opts.headers, agent }, (res) => {
      let length = 0;
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => {
        length += c.length;
        if (opts.keepBody) chunks.push(c);
      });
      res.on('end', () => resolveReq({ status: res.statusCode ?? 0, length, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}

/** CPU ms of each thread of this process (from /proc), keyed "tid:name". */
function threadTimes(): Map<string, number> {
  const out = new Map<string, number>();
  for (const tid of readdirSync('/proc/self/task')) {
    try {
      const st = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
      const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
      out.set(`${tid}:${st.slice(st.indexOf('(') + 1, st.lastIndexOf(')'))}`, ((Number(f[11]) + Number(f[12])) * 1000) / 100);
    } catch {
      // The thread ended.
    }
  }
  return out;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}
function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((s.length * p) / 100))]!;
}
const mbps = (bytes: number, ms: number) => bytes / MB / (ms / 1000);

async function rawWrite(path: string, data: Buffer): Promise<number> {
  const t = performance.now();
  const fh = await open(path, 'w');
  for (let off = 0; off < data.length; off += MB) await fh.write(data, off, Math.min(MB, data.length - off));
  await fh.sync();
  await fh.close();
  return performance.now() - t;
}

async function rawRead(path: string): Promise<number> {
  const t = performance.now();
  let n = 0;
  for await (const chunk of createReadStream(path, { highWaterMark: MB })) n += (chunk as Buffer).length;
  if (n !== SIZE) throw new Error('short read');
  return performance.now() - t;
}

/** curl as an out-of-process client; returns its own time_total (no start-up counted). */
async function curl(args: string[]): Promise<{ ms: number; body: string } | undefined> {
  try {
    const { stdout } = await promisify(execFile)('curl', ['-s', '-S', '-w', '\n%{time_total}', ...args], { maxBuffer: 1024 * 1024 });
    const lines = stdout.trimEnd().split('\n');
    return { ms: Number(lines.pop()) * 1000, body: lines.join('\n') };
  } catch {
    return undefined;
  }
}

/** Runs dd and returns the time it reports itself (no process start-up counted). */
async function dd(args: string[]): Promise<number | undefined> {
  try {
    const { stderr } = await promisify(execFile)('dd', args);
    const m = /copied, ([0-9.]+) s/.exec(stderr);
    return m ? Number(m[1]) * 1000 : undefined;
  } catch {
    return undefined;
  }
}

const cluster = await startBenchCluster();
const { startTestServer } = await import('../spec-tests/support/server.js');
const server = await startTestServer({ media: { max_upload_size: 64 * MB } });
try {
  const alice = await server.register();
  const auth = { Authorization: `Bearer ${alice.token}` };
  const data = randomBytes(SIZE);
  const storeDir = server.hs.services.config.media.store_path;
  const rawPath = join(storeDir, 'bench-raw.bin');
  await open(join(storeDir, '.keep'), 'a').then((f) => f.close()).catch(async () => {
    const { mkdir } = await import('node:fs/promises');
    await mkdir(storeDir, { recursive: true });
  });

  const rawW: number[] = [];
  const rawR: number[] = [];
  const ddW: number[] = [];
  const ddR: number[] = [];
  const staged: number[] = [];
  const curlUp: number[] = [];
  const curlCpu: number[] = [];
  const curlDown: number[] = [];
  const srcPath = join(storeDir, 'bench-src.bin');
  const up: number[] = [];
  const down: number[] = [];
  const storage = server.hs.services.media.storage;
  // Downloads of big files with O_DIRECT reads (the default) and through the page cache (as
  // before), interleaved: "Old" is the page-cache path. READ_BLOCK / READ_AHEAD change the
  // O_DIRECT reads' size and depth; READ_VARIANTS=1048576x2,4194304x1,... cycles through
  // several, one per run, for the in-process client (each also reported on its own).
  const fsStorage = storage as FilesystemMediaStorage;
  if (process.env['READ_BLOCK']) fsStorage.readBlock = Number(process.env['READ_BLOCK']);
  if (process.env['READ_AHEAD']) fsStorage.readAhead = Number(process.env['READ_AHEAD']);
  const variants = (process.env['READ_VARIANTS'] ?? '').split(',').filter(Boolean).map((v) => v.split('x').map(Number) as [number, number]);
  const variantDown = new Map<string, number[]>();
  let uploadRun = 0;
  const downOld: number[] = [];
  const downAgain: number[] = [];
  const downAgainOld: number[] = [];
  const curlDownOld: number[] = [];
  let curlRun = 0;
  // Each run measures every write in a different order: on this kind of VM a write that
  // follows another big allocation (an upload, a curl source file) can be several times
  // slower than the same write after a quiet moment, and a fixed order would pin that cost
  // on one baseline.
  let seq = 0;
  const writes: [string, () => Promise<void>][] = [
    ['raw', async () => {
      rawW.push(await rawWrite(rawPath, data));
      rawR.push(await rawRead(rawPath));
      await rm(rawPath);
    }],
    ['dd', async () => {
      const fh = await open(srcPath, 'w');
      await fh.write(data);
      await fh.close();
      const w = await dd([`if=${srcPath}`, `of=${rawPath}`, 'bs=1M', 'conv=fsync']);
      const r = await dd([`if=${rawPath}`, 'of=/dev/null', 'bs=1M', 'iflag=direct']);
      if (w !== undefined) ddW.push(w);
      if (r !== undefined) ddR.push(r);
      await rm(rawPath, { force: true });
      await rm(srcPath, { force: true });
    }],
    ['stage', async () => {
      // The storage layer alone (sha256, batched writes, fsync; no HTTP, no database): what
      // the upload costs beyond the disk before any request handling.
      data.writeUInt32BE(++seq, 4);
      const chunks: Buffer[] = [];
      for (let o = 0; o < SIZE; o += 64 * 1024) chunks.push(data.subarray(o, o + 64 * 1024));
      const t = performance.now();
      const blob = await storage.stage(Readable.from(chunks), SIZE);
      staged.push(performance.now() - t);
      await blob.discard();
    }],
    ['curl', async () => {
      data.writeUInt32BE(++seq, 4);
      const fh = await open(srcPath, 'w');
      await fh.write(data);
      await fh.close();
      // curl streams the file (-T) rather than loading it, like a real client on another process.
      const cpu0 = process.cpuUsage();
      const threads0 = process.env['THREADS'] ? threadTimes() : undefined;
      const cu = await curl([
        '-X', 'POST', '-T', srcPath, '-H', `Authorization: ${auth.Authorization}`, '-H', 'Content-Type: application/octet-stream',
        `${server.baseUrl}/_matrix/media/v3/upload`,
      ]);
      await rm(srcPath, { force: true });
      if (!cu) return;
      curlUp.push(cu.ms);
      const cpu = process.cpuUsage(cpu0);
      curlCpu.push((cpu.user + cpu.system) / 1000);
      if (threads0) {
        // THREADS=1: which threads of the server's process spent the upload's CPU (main thread,
        // thread pool, the sha256 worker), one line per upload on stderr.
        const parts: string[] = [];
        for (const [k, ms] of threadTimes()) if (ms - (threads0.get(k) ?? 0) >= 5) parts.push(`${k}=${ms - (threads0.get(k) ?? 0)}`);
        console.error(`curl upload ${cu.ms.toFixed(0)} ms, process CPU ${curlCpu.at(-1)!.toFixed(0)} ms: ${parts.join(' ')}`);
      }
      const cj = JSON.parse(cu.body) as { content_uri?: string };
      if (!cj.content_uri) throw new Error(`curl upload failed: ${cu.body}`);
      const cid = cj.content_uri.split('/').pop()!;
      // One read path or the other, alternately.
      const direct = curlRun++ % 2 === 0;
      fsStorage.directReads = direct;
      const cd = await curl(['-o', '/dev/null', '-H', `Authorization: ${auth.Authorization}`, `${server.baseUrl}/_matrix/client/v1/media/download/${server.serverName}/${cid}`]);
      fsStorage.directReads = true;
      if (cd) (direct ? curlDown : curlDownOld).push(cd.ms);
    }],
    ['upload', async () => {
      // Two uploads, each downloaded twice (first from the disk, then again), one with each read
      // path, in alternating order.
      const variant = variants.length > 0 ? variants[Math.floor(uploadRun / 2) % variants.length]! : undefined;
      for (const direct of uploadRun++ % 2 === 0 ? [true, false] : [false, true]) {
        // Distinct bytes each time, so no upload is a deduplicated repeat of an earlier one.
        data.writeUInt32BE(++seq, 4);
        let t = performance.now();
        const res = await request(`${server.baseUrl}/_matrix/media/v3/upload?filename=bench.bin`, {
          method: 'POST',
          headers: { ...auth, 'Content-Type': 'application/octet-stream', 'Content-Length': String(SIZE) },
          body: data,
          keepBody: true,
        });
        up.push(performance.now() - t);
        if (res.status !== 200) throw new Error(`upload ${res.status} ${res.body.toString()}`);
        const id = (JSON.parse(res.body.toString()) as { content_uri: string }).content_uri.split('/').pop()!;
        fsStorage.directReads = direct;
        const { readBlock, readAhead } = fsStorage;
        if (variant) [fsStorage.readBlock, fsStorage.readAhead] = variant;
        for (const times of direct ? [down, downAgain] : [downOld, downAgainOld]) {
          t = performance.now();
          const dl = await request(`${server.baseUrl}/_matrix/client/v1/media/download/${server.serverName}/${id}`, { headers: auth });
          times.push(performance.now() - t);
          if (variant && direct && times === down) {
            const key = `${variant[0] / 1024} KiB x ${variant[1]}`;
            variantDown.set(key, [...(variantDown.get(key) ?? []), times.at(-1)!]);
          }
          if (dl.length !== SIZE) throw new Error(`download returned ${dl.length} bytes`);
        }
        fsStorage.directReads = true;
        [fsStorage.readBlock, fsStorage.readAhead] = [readBlock, readAhead];
      }
    }],
  ];
  for (let i = 0; i < RUNS; i++) {
    data.writeUInt32BE(i, 0);
    const k = i % writes.length;
    for (const [, run] of [...writes.slice(k), ...writes.slice(0, k)]) await run();
  }

  const jpeg = await testImage(2000, 1500, 'jpeg');
  const upImg = await request(`${server.baseUrl}/_matrix/media/v3/upload`, {
    method: 'POST',
    headers: { ...auth, 'Content-Type': 'image/jpeg', 'Content-Length': String(jpeg.length) },
    body: jpeg,
    keepBody: true,
  });
  const imgId = (JSON.parse(upImg.body.toString()) as { content_uri: string }).content_uri.split('/').pop()!;
  const thumbUrl = (q: string) => `${server.baseUrl}/_matrix/client/v1/media/thumbnail/${server.serverName}/${imgId}?${q}`;
  const timeThumb = async (q: string) => {
    const t = performance.now();
    const r = await request(thumbUrl(q), { headers: auth });
    if (r.status !== 200) throw new Error(`thumbnail ${r.status}`);
    return performance.now() - t;
  };
  const firstScale = await timeThumb('width=320&height=240&method=scale');
  const firstCrop = await timeThumb('width=96&height=96&method=crop');
  const cached: number[] = [];
  for (let i = 0; i < THUMB_RUNS; i++) cached.push(await timeThumb('width=320&height=240&method=scale'));
  // The floor: an authenticated request that touches no media (token lookup + JSON).
  const floor: number[] = [];
  for (let i = 0; i < THUMB_RUNS; i++) {
    const t = performance.now();
    await request(`${server.baseUrl}/_matrix/client/v1/media/config`, { headers: auth });
    floor.push(performance.now() - t);
  }

  const line = (name: string, ms: number[]) =>
    `${name.padEnd(38)} ${mbps(SIZE, median(ms)).toFixed(0).padStart(6)} MB/s  (median ${median(ms).toFixed(0)} ms of ${ms.length}, fastest ${Math.min(...ms).toFixed(0)} ms)`;
  const { loadavg, cpus } = await import('node:os');
  console.log(`media bench: ${SIZE / MB} MB file, ${RUNS} runs, node ${process.version}, ${cpus().length} CPUs, load average ${loadavg()[0]!.toFixed(1)}`);
  console.log(line('raw write + fsync (node, 1 MiB)', rawW));
  if (ddW.length > 0) console.log(line('raw write (dd bs=1M conv=fsync)', ddW));
  console.log(line('storage only (sha256, writes, fsync)', staged));
  console.log(line('upload (HTTP, sha256, fsync)', up));
  if (curlUp.length > 0) console.log(`${line('upload, curl client', curlUp)}; server process CPU median ${median(curlCpu).toFixed(0)} ms`);
  const ratio = (a: number[], b: number[]) => (a.length > 0 && b.length > 0 ? `${(median(a) / median(b)).toFixed(2)}x` : 'n/a');
  console.log(`  upload time / raw write time: in-process client ${ratio(up, rawW)} (node raw), ${ratio(up, ddW)} (dd); curl ${ratio(curlUp, rawW)} (node raw), ${ratio(curlUp, ddW)} (dd); storage only ${ratio(staged, rawW)} (node raw), ${ratio(staged, ddW)} (dd)`);
  console.log(line('raw read, page cache (node, 1 MiB)', rawR));
  if (ddR.length > 0) console.log(line('raw read from disk (dd iflag=direct)', ddR));
  console.log(line('download (HTTP, O_DIRECT reads)', down));
  console.log(line('download, page-cache reads (old)', downOld));
  for (const [key, ms] of variantDown) console.log(line(`  O_DIRECT reads of ${key}`, ms));
  console.log(line('download again (O_DIRECT reads)', downAgain));
  console.log(line('download again, page cache (old)', downAgainOld));
  if (curlDown.length > 0) console.log(line('download, curl client (O_DIRECT)', curlDown));
  if (curlDownOld.length > 0) console.log(line('download, curl, page cache (old)', curlDownOld));
  console.log(`  download time / raw read time: in-process client ${ratio(down, rawR)} (page cache), ${ratio(down, ddR)} (disk, dd); curl ${ratio(curlDown, rawR)} (page cache), ${ratio(curlDown, ddR)} (disk, dd)`);
  console.log(`  old read path: in-process client ${ratio(downOld, ddR)} (disk, dd); curl ${ratio(curlDownOld, ddR)} (disk, dd)`);
  console.log(`thumbnail 2000x1500 JPEG, first 320x240 scale: ${firstScale.toFixed(1)} ms; first 96x96 crop: ${firstCrop.toFixed(1)} ms`);
  console.log(`authenticated /media/config (${THUMB_RUNS} requests, the floor): median ${median(floor).toFixed(2)} ms, p95 ${pct(floor, 95).toFixed(2)} ms`);
  console.log(
    `thumbnail cached (${THUMB_RUNS} requests): median ${median(cached).toFixed(2)} ms, p95 ${pct(cached, 95).toFixed(2)} ms, p99 ${pct(cached, 99).toFixed(2)} ms`,
  );
} finally {
  agent.destroy();
  await server.stop();
  await cluster.stop();
}
