// The load generator of bench/rooms.ts and bench/sync.ts, run as a child process so that the
// client's CPU (HTTP framing, JSON) is not charged to the server's event loop.
//   node --import tsx bench/send-load.ts '<json of SendLoad>'
// Each job is one client on its own keep-alive connection sending `count` messages one after
// the other; the jobs run concurrently. Prints one JSON line: { ms, failures, clientCpuMs }.
//
// The load generator shares the machine's two vCPUs with the server and PostgreSQL, so its own
// CPU lowers the rate measured. By default each client is a bare HTTP/1.1 connection (`raw`: the
// request written as one string, the answer read by its Content-Length), as native load
// generators (wrk, h2load) work; `node` uses node:http's client, which costs about twice the CPU.
import http from 'node:http';
import net from 'node:net';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export interface SendJob {
  token: string;
  roomId: string;
  count: number;
}

export interface SendLoad {
  baseUrl: string;
  jobs: SendJob[];
  /** Distinguishes this run's transaction ids from earlier runs' (they would be deduplicated). */
  txnPrefix: string;
  /** The HTTP client (see the top of this file); raw by default. */
  client?: 'raw' | 'node';
}

export interface SendResult {
  ms: number;
  failures: string[];
  /** The load generator's own CPU time over the timed sends (it shares the machine with the server). */
  clientCpuMs: number;
}

/** Runs a load in a child process and returns what it measured. */
export function runSendLoad(load: SendLoad): Promise<SendResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), JSON.stringify(load)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out) as SendResult) : reject(new Error(`send-load exited with ${code}`))));
  });
}

/** Sends one message per call on the job's connection; resolves with the status and body text. */
type Sender = (path: string, body: string) => Promise<{ status: number; text: string }>;

function nodeSender(url: URL, job: SendJob): { send: Sender; close: () => void } {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const send: Sender = (path, body) =>
    new Promise((resolve) => {
      const req = http.request(
        { host: url.hostname, port: url.port, path, method: 'PUT', agent, headers: { Authorization: `Bearer ${job.token}`, 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) } },
        (res) => {
          let text = '';
          res.on('data', (d: Buffer) => (text += d.toString()));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
        },
      );
      req.on('error', (err) => resolve({ status: 0, text: String(err) }));
      req.end(body);
    });
  return { send, close: () => agent.destroy() };
}

/** One request at a time on a bare keep-alive connection; every answer has a Content-Length. */
function rawSender(url: URL, job: SendJob): { send: Sender; close: () => void } {
  const socket = net.connect({ host: url.hostname, port: Number(url.port) });
  socket.setNoDelay(true);
  const head = `Host: ${url.host}\r\nAuthorization: Bearer ${job.token}\r\nContent-Type: application/json\r\n`;
  let received: Buffer = Buffer.alloc(0);
  let waiting: ((r: { status: number; text: string }) => void) | undefined;
  const fail = (err: unknown) => {
    waiting?.({ status: 0, text: String(err) });
    waiting = undefined;
  };
  socket.on('error', fail);
  socket.on('close', () => fail('connection closed'));
  socket.on('data', (chunk: Buffer) => {
    received = received.length === 0 ? chunk : Buffer.concat([received, chunk]);
    const end = received.indexOf('\r\n\r\n');
    if (end < 0) return;
    const headers = received.subarray(0, end).toString('latin1');
    const length = Number(/\r\ncontent-length: *(\d+)/i.exec(headers)?.[1] ?? NaN);
    if (!Number.isFinite(length)) return fail(`no Content-Length in ${headers}`);
    if (received.length < end + 4 + length) return;
    const text = received.subarray(end + 4, end + 4 + length).toString();
    received = received.subarray(end + 4 + length);
    const done = waiting;
    waiting = undefined;
    done?.({ status: Number(headers.slice(9, 12)), text });
  });
  const send: Sender = (path, body) =>
    new Promise((resolve) => {
      waiting = resolve;
      socket.write(`PUT ${path} HTTP/1.1\r\n${head}Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
    });
  return { send, close: () => socket.destroy() };
}

async function main(load: SendLoad): Promise<void> {
  const url = new URL(load.baseUrl);
  const failures: string[] = [];
  let n = 0;
  const senders = load.jobs.map((job) => (load.client === 'node' ? nodeSender : rawSender)(url, job));
  const sendOne = async (i: number): Promise<void> => {
    const job = load.jobs[i]!;
    const body = JSON.stringify({ msgtype: 'm.text', body: `message ${n}` });
    const path = `/_matrix/client/v3/rooms/${encodeURIComponent(job.roomId)}/send/m.room.message/${load.txnPrefix}${++n}`;
    const { status, text } = await senders[i]!.send(path, body);
    if (status !== 200 && failures.length < 5) failures.push(`${status} ${text}`);
  };
  // Warm the connections (and the server's caches) before the clock starts.
  await Promise.all(load.jobs.map((_, i) => sendOne(i)));
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  await Promise.all(
    load.jobs.map(async (job, i) => {
      for (let k = 0; k < job.count; k++) await sendOne(i);
    }),
  );
  const ms = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  for (const s of senders) s.close();
  process.stdout.write(JSON.stringify({ ms, failures, clientCpuMs: (cpu.user + cpu.system) / 1000 } satisfies SendResult));
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main(JSON.parse(process.argv[2]!) as SendLoad);
