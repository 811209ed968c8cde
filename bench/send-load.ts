// The load generator of bench/rooms.ts and bench/sync.ts, run as a child process so that the
// client's CPU (HTTP framing, JSON) is not charged to the server's event loop.
//   node --import tsx bench/send-load.ts '<json of SendLoad>'
// Each job is one client on its own keep-alive connection sending `count` messages one after
// the other; the jobs run concurrently. Prints one JSON line: { ms, failures, latencies? }.
import http from 'node:http';
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
}

export interface SendResult {
  ms: number;
  failures: string[];
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

async function main(load: SendLoad): Promise<void> {
  const url = new URL(load.baseUrl);
  const failures: string[] = [];
  let n = 0;
  const sendOne = (agent: http.Agent, job: SendJob): Promise<void> =>
    new Promise((resolve) => {
      const body = JSON.stringify({ msgtype: 'm.text', body: `message ${n}` });
      const path = `/_matrix/client/v3/rooms/${encodeURIComponent(job.roomId)}/send/m.room.message/${load.txnPrefix}${++n}`;
      const req = http.request(
        { host: url.hostname, port: url.port, path, method: 'PUT', agent, headers: { Authorization: `Bearer ${job.token}`, 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) } },
        (res) => {
          let text = '';
          res.on('data', (d: Buffer) => (text += d.toString()));
          res.on('end', () => {
            if (res.statusCode !== 200 && failures.length < 5) failures.push(`${res.statusCode} ${text}`);
            resolve();
          });
        },
      );
      req.on('error', (err) => {
        failures.push(String(err));
        resolve();
      });
      req.end(body);
    });
  // Warm the connections (and the server's caches) before the clock starts.
  const agents = load.jobs.map(() => new http.Agent({ keepAlive: true, maxSockets: 1 }));
  await Promise.all(load.jobs.map((job, i) => sendOne(agents[i]!, job)));
  const t0 = performance.now();
  await Promise.all(
    load.jobs.map(async (job, i) => {
      for (let k = 0; k < job.count; k++) await sendOne(agents[i]!, job);
    }),
  );
  const ms = performance.now() - t0;
  for (const a of agents) a.destroy();
  process.stdout.write(JSON.stringify({ ms, failures } satisfies SendResult));
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main(JSON.parse(process.argv[2]!) as SendLoad);
