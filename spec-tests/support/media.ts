// Helpers for the media repository tests: raw uploads and downloads (bytes, not JSON), test
// images made with sharp, raw HTTP requests whose paths are not normalised by a URL parser, and
// an admin user made through the shared-secret registration API.
import { createHmac } from 'node:crypto';
import { readdirSync, statSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import sharp from 'sharp';
import type { TestClient } from './client.js';
import type { TestServer } from './server.js';

export interface RawResponse {
  status: number;
  headers: Headers;
  bytes: Buffer;
  json: any;
}

export async function rawFetch(url: string, init: RequestInit & { token?: string | undefined } = {}): Promise<RawResponse> {
  const headers = new Headers(init.headers);
  if (init.token) headers.set('Authorization', `Bearer ${init.token}`);
  const res = await fetch(url, { ...init, headers });
  const bytes = Buffer.from(await res.arrayBuffer());
  let json: any;
  if ((res.headers.get('content-type') ?? '').includes('application/json') && bytes.length > 0) json = JSON.parse(bytes.toString('utf8'));
  return { status: res.status, headers: res.headers, bytes, json };
}

export async function upload(
  server: TestServer,
  client: TestClient,
  bytes: Uint8Array,
  opts: { contentType?: string | null; filename?: string } = {},
): Promise<RawResponse> {
  const q = opts.filename !== undefined ? `?filename=${encodeURIComponent(opts.filename)}` : '';
  const headers: Record<string, string> = {};
  if (opts.contentType !== null) headers['Content-Type'] = opts.contentType ?? 'application/octet-stream';
  return rawFetch(`${server.baseUrl}/_matrix/media/v3/upload${q}`, { method: 'POST', body: bytes, headers, token: client.token });
}

/** Uploads and returns the media id (asserting success). */
export async function uploadOk(server: TestServer, client: TestClient, bytes: Uint8Array, opts: { contentType?: string; filename?: string } = {}): Promise<string> {
  const r = await upload(server, client, bytes, opts);
  if (r.status !== 200) throw new Error(`upload failed: ${r.status} ${r.bytes.toString()}`);
  const m = /^mxc:\/\/([^/]+)\/([A-Za-z0-9_-]+)$/.exec(r.json.content_uri);
  if (!m || m[1] !== server.serverName) throw new Error(`bad content_uri ${r.json.content_uri}`);
  return m[2]!;
}

export function download(server: TestServer, client: TestClient | null, mediaId: string, suffix = ''): Promise<RawResponse> {
  return rawFetch(`${server.baseUrl}/_matrix/client/v1/media/download/${server.serverName}/${mediaId}${suffix}`, {
    token: client?.token,
  });
}

export function thumbnail(server: TestServer, client: TestClient | null, mediaId: string, query: string): Promise<RawResponse> {
  return rawFetch(`${server.baseUrl}/_matrix/client/v1/media/thumbnail/${server.serverName}/${mediaId}?${query}`, {
    token: client?.token,
  });
}

/** A request whose path goes out exactly as written (fetch would resolve `..` and `%2e`). */
export function rawRequest(baseUrl: string, method: string, path: string, token?: string): Promise<{ status: number; body: string; headers: http.IncomingHttpHeaders }> {
  const u = new URL(baseUrl);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: u.hostname, port: u.port, method, path, headers: token ? { Authorization: `Bearer ${token}` } : {} }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8'), headers: res.headers }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** A photo-like test image: gradients and noise, so encoders cannot collapse it. */
export async function testImage(width: number, height: number, format: 'png' | 'jpeg' | 'webp'): Promise<Buffer> {
  const raw = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 3;
      raw[i] = (x * 255) / width;
      raw[i + 1] = (y * 255) / height;
      raw[i + 2] = (x * y) % 251;
    }
  }
  return sharp(raw, { raw: { width, height, channels: 3 } })[format]().toBuffer();
}

export async function animatedGif(width: number, height: number, frames: number): Promise<Buffer> {
  const colours = [
    { r: 255, g: 0, b: 0 },
    { r: 0, g: 255, b: 0 },
    { r: 0, g: 0, b: 255 },
    { r: 255, g: 255, b: 0 },
  ];
  const pages = await Promise.all(
    Array.from({ length: frames }, (_, i) =>
      sharp({ create: { width, height, channels: 3, background: colours[i % colours.length]! } }).png().toBuffer(),
    ),
  );
  return sharp(pages, { join: { animated: true } }).gif({ delay: pages.map(() => 100), loop: 0 }).toBuffer();
}

export async function dimensions(bytes: Buffer): Promise<{ format: string; width: number; height: number; pages: number }> {
  const m = await sharp(bytes, { animated: true }).metadata();
  return { format: m.format!, width: m.width!, height: m.pageHeight ?? m.height!, pages: m.pages ?? 1 };
}

/** Every blob file under the media store's content directory. */
export function storedBlobs(server: TestServer): string[] {
  const root = join(server.hs.services.config.media.store_path, 'content');
  const out: string[] = [];
  const walk = (dir: string) => {
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch {
      return;
    }
    for (const n of names) {
      const p = join(dir, n);
      if (statSync(p).isDirectory()) walk(p);
      else out.push(n);
    }
  };
  walk(root);
  return out;
}

export function tmpFiles(server: TestServer): string[] {
  try {
    return readdirSync(join(server.hs.services.config.media.store_path, 'tmp'));
  } catch {
    return [];
  }
}

/** Registers a server admin through /_synapse/admin/v1/register (HMAC-SHA1 over the fields). */
export async function registerAdmin(server: TestServer, username: string): Promise<TestClient> {
  const anon = server.anon();
  const { body } = await anon.get('/_synapse/admin/v1/register');
  const password = 'admin password 123';
  const mac = createHmac('sha1', 'test-shared-secret').update(`${body.nonce}\0${username}\0${password}\0admin`).digest('hex');
  const r = await anon.post('/_synapse/admin/v1/register', { nonce: body.nonce, username, password, admin: true, mac });
  if (r.status !== 200) throw new Error(`admin register failed: ${r.status} ${JSON.stringify(r.body)}`);
  anon.token = r.body.access_token;
  anon.userId = r.body.user_id;
  return anon;
}
