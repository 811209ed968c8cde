// POSTs JSON to a push gateway. The URL comes from a user (POST /pushers/set), so, as Synapse's
// blocklisting client and the URL previewer here, the connection goes only to addresses the
// policy allows: the host is resolved once, every address is checked, and the request is pinned
// to a checked address (no second lookup to rebind). Redirects are not followed.
import dns from 'node:dns';
import http from 'node:http';
import https from 'node:https';
import { isIP, isIPv4, type LookupFunction } from 'node:net';
import tls from 'node:tls';
import type { AddressPolicy } from '../media/preview.js';

/** Largest gateway answer read (it is `{"rejected": [...]}`). */
const MAX_RESPONSE_BYTES = 64 * 1024;

export interface GatewayResponse {
  status: number;
  body: string;
}

export async function postJson(
  url: URL,
  body: unknown,
  opts: { policy: AddressPolicy; signal: AbortSignal; ca?: Buffer[]; resolve?: (host: string) => Promise<{ address: string; family: number }[]> },
): Promise<GatewayResponse> {
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error(`scheme ${url.protocol} is not allowed`);
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  const addresses = isIP(host) ? [{ address: host, family: isIPv4(host) ? 4 : 6 }] : await (opts.resolve ?? lookupAll)(host);
  if (addresses.length === 0) throw new Error(`${host} has no addresses`);
  const bad = addresses.find((a) => !opts.policy.allows(a.address));
  if (bad) throw new Error(`${host} resolves to ${bad.address}, which push.ip_range_* does not allow`);
  const target = addresses[0]!;
  const payload = Buffer.from(JSON.stringify(body), 'utf8');
  return new Promise<GatewayResponse>((resolve, reject) => {
    const mod = url.protocol === 'https:' ? https : http;
    const req = mod.request(url, {
      method: 'POST',
      agent: false,
      signal: opts.signal,
      lookup: ((_hostname: string, options: dns.LookupOptions, cb: (...args: unknown[]) => void) => {
        if (options.all) cb(null, [target]);
        else cb(null, target.address, target.family);
      }) as unknown as LookupFunction,
      headers: { 'Content-Type': 'application/json', 'Content-Length': String(payload.length), 'User-Agent': 'Prat (Matrix homeserver) pusher' },
      ...(url.protocol === 'https:' && opts.ca && opts.ca.length > 0 ? { ca: [...tls.rootCertificates, ...opts.ca] } : {}),
    });
    req.once('error', reject);
    req.once('response', (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size <= MAX_RESPONSE_BYTES) chunks.push(c);
      });
      res.once('error', reject);
      res.once('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.end(payload);
  });
}

function lookupAll(host: string): Promise<{ address: string; family: number }[]> {
  return new Promise((resolve, reject) => dns.lookup(host, { all: true, verbatim: true }, (err, addresses) => (err ? reject(err) : resolve(addresses))));
}
