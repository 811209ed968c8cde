// sha256 of upload bytes on a worker thread, so the main thread only receives and copies while
// the worker hashes and a thread-pool thread writes (see FilesystemMediaStorage.stage). The
// bytes are never copied to the worker: they sit in a SharedArrayBuffer the caller does not
// touch again until the update's promise has resolved.
import { Worker } from 'node:worker_threads';

// Plain JavaScript (eval), so it runs the same from the TypeScript sources and from dist/.
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const jobs = new Map();
parentPort.on('message', (m) => {
  if (m.t === 'u') {
    let h = jobs.get(m.id);
    if (h === undefined) jobs.set(m.id, (h = createHash('sha256')));
    h.update(new Uint8Array(m.sab, m.off, m.len));
    parentPort.postMessage({ id: m.id, t: 'u' });
  } else if (m.t === 'd') {
    const h = jobs.get(m.id) ?? createHash('sha256');
    jobs.delete(m.id);
    parentPort.postMessage({ id: m.id, t: 'd', hex: h.digest('hex') });
  } else if (m.t === 'x') {
    jobs.delete(m.id);
  }
});
`;

interface Job {
  /** Resolvers of the updates sent and not yet hashed, in order (the worker answers in order). */
  updates: { resolve: () => void; reject: (err: Error) => void }[];
  digest?: { resolve: (hex: string) => void; reject: (err: Error) => void };
}

type Reply = { id: number; t: 'u' } | { id: number; t: 'd'; hex: string };

/** One worker for the process, started on first use; it does not keep the process alive when idle. */
class HashWorker {
  private readonly worker: Worker;
  private readonly jobs = new Map<number, Job>();
  private nextId = 1;
  private failure: Error | undefined;
  dead = false;

  constructor() {
    this.worker = new Worker(WORKER_SOURCE, { eval: true });
    this.worker.unref();
    this.worker.on('message', (m: Reply) => {
      const job = this.jobs.get(m.id);
      if (!job) return;
      if (m.t === 'u') job.updates.shift()?.resolve();
      else {
        this.jobs.delete(m.id);
        this.idle();
        job.digest?.resolve(m.hex);
      }
    });
    this.worker.on('error', (err) => {
      this.failure = err;
    });
    this.worker.on('exit', (code) => {
      this.dead = true;
      const err = this.failure ?? new Error(`sha256 worker exited (${code})`);
      for (const job of this.jobs.values()) {
        for (const u of job.updates) u.reject(err);
        job.digest?.reject(err);
      }
      this.jobs.clear();
    });
  }

  private idle(): void {
    if (this.jobs.size === 0) this.worker.unref();
  }

  start(): number {
    const id = this.nextId++;
    if (this.jobs.size === 0) this.worker.ref();
    this.jobs.set(id, { updates: [] });
    return id;
  }

  update(id: number, sab: SharedArrayBuffer, off: number, len: number): Promise<void> {
    const job = this.jobs.get(id);
    if (!job || this.dead) return Promise.reject(this.failure ?? new Error('sha256 worker is gone'));
    return new Promise((resolve, reject) => {
      job.updates.push({ resolve, reject });
      this.worker.postMessage({ t: 'u', id, sab, off, len });
    });
  }

  digest(id: number): Promise<string> {
    const job = this.jobs.get(id);
    if (!job || this.dead) return Promise.reject(this.failure ?? new Error('sha256 worker is gone'));
    return new Promise((resolve, reject) => {
      job.digest = { resolve, reject };
      this.worker.postMessage({ t: 'd', id });
    });
  }

  /** Forgets a job (its updates already sent are still answered, so their buffers come back). */
  abort(id: number): void {
    const job = this.jobs.get(id);
    if (!job) return;
    if (!this.dead) this.worker.postMessage({ t: 'x', id });
    // Answers to updates already sent still arrive; only the job's state is dropped.
    if (job.updates.length === 0) {
      this.jobs.delete(id);
      this.idle();
    } else {
      const last = job.updates[job.updates.length - 1]!;
      const resolve = last.resolve;
      last.resolve = () => {
        resolve();
        this.jobs.delete(id);
        this.idle();
      };
    }
  }
}

let shared: HashWorker | undefined;

/** A running sha256 on the worker thread. */
export class OffThreadSha256 {
  private readonly worker: HashWorker;
  private readonly id: number;

  constructor() {
    if (!shared || shared.dead) shared = new HashWorker();
    this.worker = shared;
    this.id = this.worker.start();
  }

  /** Hashes sab[off, off+len); resolves once the worker is done reading it. */
  update(sab: SharedArrayBuffer, off: number, len: number): Promise<void> {
    return this.worker.update(this.id, sab, off, len);
  }

  /** Resolves with the hex digest once every update before it is hashed. */
  digest(): Promise<string> {
    return this.worker.digest(this.id);
  }

  abort(): void {
    this.worker.abort(this.id);
  }
}
