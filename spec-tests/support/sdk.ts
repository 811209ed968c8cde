// matrix-js-sdk clients for spec tests, with every request the SDK makes recorded (method, path,
// status and, for /sync, the parsed body), so a test can assert on what the server answered
// the real client, not only on what the client made of it.
import { ClientEvent, createClient, type MatrixClient } from 'matrix-js-sdk';
import type { TestClient } from './client.js';
import type { TestServer } from './server.js';

export interface RecordedRequest {
  method: string;
  /** The path without the query string. */
  path: string;
  status: number;
  /** The JSON body of /sync answers (the rest are not kept). */
  syncBody?: any;
  /** The errcode of an error answer. */
  errcode?: string;
}

export interface RecordedClient {
  client: MatrixClient;
  requests: RecordedRequest[];
}

/** A fetch that records each request, then answers as the global fetch does. */
function recordingFetch(requests: RecordedRequest[]): typeof globalThis.fetch {
  return async (input, init) => {
    const url = new URL(typeof input === 'string' ? input : input instanceof URL ? input.href : input.url);
    const method = init?.method ?? (input instanceof Request ? input.method : 'GET');
    const res = await fetch(input, init);
    const entry: RecordedRequest = { method, path: url.pathname, status: res.status };
    requests.push(entry);
    if (url.pathname.endsWith('/sync') && res.ok) entry.syncBody = await res.clone().json();
    if (!res.ok) entry.errcode = ((await res.clone().json().catch(() => ({}))) as { errcode?: string }).errcode;
    return res;
  };
}

export function sdkClient(server: TestServer, c: TestClient): RecordedClient {
  const requests: RecordedRequest[] = [];
  const client = createClient({
    baseUrl: server.baseUrl,
    accessToken: c.token!,
    userId: c.userId,
    deviceId: c.deviceId,
    fetchFn: recordingFetch(requests),
  });
  return { client, requests };
}

/** Starts the client's sync loop and waits for its first sync to be processed. */
export async function started(client: MatrixClient, opts: Parameters<MatrixClient['startClient']>[0] = {}): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const onSync = (state: string) => {
      if (state === 'PREPARED') {
        client.off(ClientEvent.Sync, onSync);
        resolve();
      } else if (state === 'ERROR') {
        client.off(ClientEvent.Sync, onSync);
        reject(new Error('the first sync failed'));
      }
    };
    client.on(ClientEvent.Sync, onSync);
    void client.startClient({ initialSyncLimit: 20, ...opts });
  });
}

/** Resolves when `register` calls `done`, or fails after `ms`. */
export function until<T>(what: string, register: (done: (v: T) => void) => void, ms = 15_000): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms);
    register((v) => {
      clearTimeout(t);
      resolve(v);
    });
  });
}

/** Polls `check` until it returns a value other than undefined, or fails after `ms`. */
export async function poll<T>(what: string, check: () => Promise<T | undefined> | T | undefined, ms = 15_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Logs `c`'s user in again: a second device, as a TestClient. */
export async function secondDevice(server: TestServer, c: TestClient): Promise<TestClient> {
  const login = await server.anon().post('/_matrix/client/v3/login', {
    type: 'm.login.password',
    identifier: { type: 'm.id.user', user: c.userId },
    password: c.password,
  });
  if (login.status !== 200) throw new Error(`login failed: ${login.status} ${login.text}`);
  return Object.assign(server.anon(), { token: login.body.access_token, userId: c.userId, deviceId: login.body.device_id, password: c.password });
}

/**
 * Call last in `after`: lets the test process exit once its own work is done. matrix-js-sdk
 * (v36, http-api/utils.ts timeoutSignal) starts a timer per request for its local timeout and
 * never clears it, so every /sync leaves a referenced 110 s timer (30 s poll + 80 s buffer) that
 * holds the process open for minutes after the clients are stopped. The exit timer is unref'd:
 * it only fires when nothing but such leftovers keeps the process alive, and process.exit()
 * keeps the exit code node:test set (failures are reported to the runner before this).
 */
export function releaseProcess(): void {
  setTimeout(() => process.exit(), 1000).unref();
}
