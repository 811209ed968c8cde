// A raw HTTP client for spec tests. Every JSON response is checked against the spec's OpenAPI
// response schema where one exists (see openapi.ts), so a shape drift fails the test that saw it.
import { validateResponse } from './openapi.js';

export interface Response {
  status: number;
  headers: Headers;
  body: any;
  text: string;
}

export interface RequestOptions {
  /** Raw body (string or bytes) instead of JSON. */
  raw?: string | Uint8Array;
  headers?: Record<string, string>;
  /** Skip the OpenAPI response check (for deliberately odd requests). */
  noSchema?: boolean;
  token?: string | null;
}

export class TestClient {
  token: string | undefined;
  userId = '';
  deviceId = '';
  password = '';

  constructor(readonly baseUrl: string) {}

  async request(method: string, path: string, body?: unknown, opts: RequestOptions = {}): Promise<Response> {
    const headers: Record<string, string> = { ...opts.headers };
    const token = opts.token === undefined ? this.token : opts.token;
    if (token) headers['Authorization'] = `Bearer ${token}`;
    let payload: string | Uint8Array | undefined;
    if (opts.raw !== undefined) payload = opts.raw;
    else if (body !== undefined) {
      payload = JSON.stringify(body);
      headers['Content-Type'] ??= 'application/json';
    }
    const res = await fetch(this.baseUrl + path, { method, headers, ...(payload !== undefined ? { body: payload } : {}) });
    const text = await res.text();
    let parsed: unknown = undefined;
    if ((res.headers.get('content-type') ?? '').includes('json') && text.length > 0) parsed = JSON.parse(text);
    if (!opts.noSchema && parsed !== undefined) validateResponse(method, path, res.status, parsed);
    return { status: res.status, headers: res.headers, body: parsed, text };
  }

  get(path: string, opts?: RequestOptions) {
    return this.request('GET', path, undefined, opts);
  }
  post(path: string, body?: unknown, opts?: RequestOptions) {
    return this.request('POST', path, body ?? {}, opts);
  }
  put(path: string, body?: unknown, opts?: RequestOptions) {
    return this.request('PUT', path, body ?? {}, opts);
  }
  delete(path: string, body?: unknown, opts?: RequestOptions) {
    return this.request('DELETE', path, body, opts);
  }
}
