// URL previews (GET /_matrix/client/v1/media/preview_url): fetch the page with size and time
// limits, read its Open Graph tags (falling back to <title> and the meta description), and store
// its image in the media repository. The server fetches URLs on users' behalf, so every address
// it connects to is checked first: private, loopback, link-local and other non-public ranges are
// refused unless the config allows them (SSRF protection).
import dns from 'node:dns';
import http from 'node:http';
import https from 'node:https';
import net, { BlockList, isIP, isIPv4 } from 'node:net';
import { readFileSync } from 'node:fs';
import tls from 'node:tls';
import type { PratConfig } from '../config/schema.js';
import type { Database } from '../db/pool.js';
import { MatrixError } from '../http/errors.js';
import type { Logger } from '../logger.js';
import type { MediaService } from './service.js';
import * as store from './store.js';
import { probeImage } from './thumbnailer.js';

/** Previews are kept this long; a page's Open Graph data rarely changes faster. */
const PREVIEW_CACHE_MS = 60 * 60 * 1000;
const MAX_REDIRECTS = 5;
const MAX_URL_LENGTH = 2048;
const MAX_OG_KEYS = 50;
const MAX_DESCRIPTION_CHARS = 500;
const MAX_VALUE_CHARS = 1000;

/** Ranges that are not the public internet (IANA special-purpose registries). */
const NON_PUBLIC_V4 = [
  '0.0.0.0/8',
  '10.0.0.0/8',
  '100.64.0.0/10',
  '127.0.0.0/8',
  '169.254.0.0/16',
  '172.16.0.0/12',
  '192.0.0.0/24',
  '192.0.2.0/24',
  '192.88.99.0/24',
  '192.168.0.0/16',
  '198.18.0.0/15',
  '198.51.100.0/24',
  '203.0.113.0/24',
  '224.0.0.0/4',
  '240.0.0.0/4',
];
const NON_PUBLIC_V6 = [
  '::/128',
  '::1/128',
  // NAT64 and 6to4 embed IPv4 addresses that may be private; refused outright.
  '64:ff9b::/96',
  '64:ff9b:1::/48',
  '2002::/16',
  '100::/64',
  '2001::/23',
  '2001:db8::/32',
  'fc00::/7',
  'fe80::/10',
  'fec0::/10',
  'ff00::/8',
];

function parseCidr(cidr: string): { address: string; prefix: number; family: 'ipv4' | 'ipv6' } {
  const [address, prefixText, ...rest] = cidr.trim().split('/');
  const family = isIP(address ?? '');
  const prefix = prefixText === undefined ? (family === 4 ? 32 : 128) : Number(prefixText);
  if (rest.length > 0 || family === 0 || !Number.isInteger(prefix) || prefix < 0 || prefix > (family === 4 ? 32 : 128)) {
    throw new Error(`media.url_preview: '${cidr}' is not an IP range (address/prefix)`);
  }
  return { address: address!, prefix, family: family === 4 ? 'ipv4' : 'ipv6' };
}

function blockListOf(cidrs: string[]): BlockList {
  const list = new BlockList();
  for (const c of cidrs) {
    const { address, prefix, family } = parseCidr(c);
    list.addSubnet(address, prefix, family);
  }
  return list;
}

/** Which addresses the previewer may connect to. */
export class AddressPolicy {
  private readonly denied: BlockList;
  private readonly allowed: BlockList;

  constructor(allow: string[], extraDeny: string[] = []) {
    this.allowed = blockListOf(allow);
    this.denied = blockListOf([...NON_PUBLIC_V4, ...NON_PUBLIC_V6, ...extraDeny]);
  }

  allows(address: string): boolean {
    let ip = address;
    let family = isIP(ip);
    if (family === 0) return false;
    // ::ffff:127.0.0.1 is 127.0.0.1: judge IPv4-mapped addresses as IPv4.
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
    if (mapped) {
      ip = mapped[1]!;
      family = 4;
    }
    const type = family === 4 ? 'ipv4' : 'ipv6';
    if (this.allowed.check(ip, type)) return true;
    return !this.denied.check(ip, type);
  }
}

class BlockedAddressError extends Error {
  override name = 'BlockedAddressError';
}

type LookupResult = { address: string; family: number }[];
export type Resolver = (hostname: string) => Promise<LookupResult>;

const systemResolver: Resolver = (hostname) =>
  new Promise((resolveLookup, reject) =>
    dns.lookup(hostname, { all: true, verbatim: true }, (err, addresses) => (err ? reject(err) : resolveLookup(addresses))),
  );

export interface FetchedResource {
  url: URL;
  contentType: string;
  body: Buffer;
  /** The body was longer than the limit and has been cut there. */
  truncated: boolean;
}

/**
 * GETs a URL, following redirects, connecting only to addresses the policy allows: the name is
 * resolved once, every address it resolves to is checked (one bad address refuses the host, so
 * DNS answers mixing public and private addresses cannot be played), and the connection goes to
 * a checked address (no second lookup to rebind).
 */
export async function safeFetch(
  start: URL,
  opts: { policy: AddressPolicy; maxBytes: number; signal: AbortSignal; resolver?: Resolver; ca?: Buffer[] },
): Promise<FetchedResource> {
  const resolver = opts.resolver ?? systemResolver;
  let url = start;
  for (let hop = 0; ; hop++) {
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new BlockedAddressError(`scheme ${url.protocol} is not fetched`);
    const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
    let addresses: LookupResult;
    if (isIP(host)) addresses = [{ address: host, family: isIPv4(host) ? 4 : 6 }];
    else addresses = await resolver(host);
    if (addresses.length === 0) throw new Error(`${host} has no addresses`);
    const bad = addresses.find((a) => !opts.policy.allows(a.address));
    if (bad) throw new BlockedAddressError(`${host} resolves to ${bad.address}, which is not allowed`);
    const target = addresses[0]!;
    const res = await new Promise<http.IncomingMessage>((resolveRes, reject) => {
      const mod = url.protocol === 'https:' ? https : http;
      const req = mod.request(url, {
        method: 'GET',
        agent: false,
        signal: opts.signal,
        // The connection goes to the address checked above, whatever DNS says now.
        lookup: ((_hostname: string, options: dns.LookupOptions, cb: (...args: unknown[]) => void) => {
          if (options.all) cb(null, [target]);
          else cb(null, target.address, target.family);
        }) as unknown as net.LookupFunction,
        headers: {
          'User-Agent': 'Prat URL preview (Matrix homeserver)',
          Accept: 'text/html,application/xhtml+xml,image/*;q=0.9,*/*;q=0.5',
          'Accept-Encoding': 'identity',
        },
        // Extra CAs are added to the public roots, not put in their place.
        ...(url.protocol === 'https:' && opts.ca && opts.ca.length > 0 ? { ca: [...tls.rootCertificates, ...opts.ca] } : {}),
      });
      req.once('response', resolveRes);
      req.once('error', reject);
      req.end();
    });
    const status = res.statusCode ?? 0;
    if (status >= 300 && status < 400 && res.headers.location) {
      res.resume();
      if (hop >= MAX_REDIRECTS) throw new Error('too many redirects');
      url = new URL(res.headers.location, url);
      continue;
    }
    if (status < 200 || status >= 300) {
      res.resume();
      throw new Error(`HTTP ${status}`);
    }
    const declared = Number(res.headers['content-length']);
    const isHtml = (res.headers['content-type'] ?? '').includes('html');
    const chunks: Buffer[] = [];
    let size = 0;
    // A page too long is cut (its head, where the tags are, comes first); an image too long is
    // not read at all.
    let truncated = Number.isFinite(declared) && declared > opts.maxBytes;
    if (!truncated || isHtml) {
      for await (const chunk of res as AsyncIterable<Buffer>) {
        const room = opts.maxBytes - size;
        if (chunk.length > room) {
          chunks.push(chunk.subarray(0, room));
          size += room;
          truncated = true;
          break;
        }
        chunks.push(chunk);
        size += chunk.length;
      }
    }
    res.destroy();
    return { url, contentType: res.headers['content-type'] ?? 'application/octet-stream', body: Buffer.concat(chunks), truncated };
  }
}

// ---- HTML -------------------------------------------------------------------------------

const NAMED_ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", nbsp: '\u00a0', '#39': "'" };

export function decodeEntities(text: string): string {
  return text.replace(/&(#x[0-9a-f]+|#[0-9]+|[a-z0-9]+);/gi, (whole, name: string) => {
    if (name[0] === '#') {
      const code = name[1] === 'x' || name[1] === 'X' ? parseInt(name.slice(2), 16) : parseInt(name.slice(1), 10);
      return code > 0 && code <= 0x10ffff && !(code >= 0xd800 && code <= 0xdfff) ? String.fromCodePoint(code) : whole;
    }
    return NAMED_ENTITIES[name.toLowerCase()] ?? whole;
  });
}

function parseAttributes(text: string): Map<string, string> {
  const attrs = new Map<string, string>();
  const re = /([^\s=/>"']+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'=<>`]+)))?/g;
  for (const m of text.matchAll(re)) {
    const name = m[1]!.toLowerCase();
    if (!attrs.has(name)) attrs.set(name, decodeEntities(m[2] ?? m[3] ?? m[4] ?? ''));
  }
  return attrs;
}

/** The charset of an HTML document: the Content-Type header's, else a <meta> in its head. */
export function htmlCharset(contentType: string, head: Buffer): string {
  const fromHeader = /charset\s*=\s*"?([\w.:-]+)/i.exec(contentType);
  if (fromHeader) return fromHeader[1]!;
  const ascii = head.subarray(0, 2048).toString('latin1');
  const fromMeta = /<meta[^>]+charset\s*=\s*["']?([\w.:-]+)/i.exec(ascii);
  return fromMeta ? fromMeta[1]! : 'utf-8';
}

function collapse(text: string, max: number): string {
  const t = text.replace(/\s+/g, ' ').trim();
  return t.length > max ? `${t.slice(0, max - 1)}…` : t;
}

/**
 * Open Graph data of an HTML page: every og:* meta tag (bounded), og:title falling back to
 * <title>, og:description to the meta description, og:image to twitter:image or image_src,
 * made absolute against the page's URL.
 */
export function parseHtmlPreview(html: string, pageUrl: URL): Record<string, string> {
  const doc = html.replace(/<!--[\s\S]*?-->/g, '').replace(/<(script|style|noscript|template)\b[^>]*>[\s\S]*?<\/\1\s*>/gi, '');
  const og: Record<string, string> = {};
  let description: string | undefined;
  let twitterImage: string | undefined;
  for (const m of doc.matchAll(/<meta\b([^>]*)>/gi)) {
    const a = parseAttributes(m[1]!);
    const key = (a.get('property') ?? a.get('name') ?? '').trim();
    const content = a.get('content');
    if (content === undefined || key === '') continue;
    const lower = key.toLowerCase();
    if (lower.startsWith('og:') && key.length <= 64 && !(key in og) && Object.keys(og).length < MAX_OG_KEYS) {
      og[key] = collapse(content, key === 'og:description' ? MAX_DESCRIPTION_CHARS : MAX_VALUE_CHARS);
    } else if (lower === 'description') description ??= content;
    else if (lower === 'twitter:image' || lower === 'twitter:image:src') twitterImage ??= content;
  }
  if (!og['og:title']) {
    const title = /<title\b[^>]*>([\s\S]*?)<\/title\s*>/i.exec(doc);
    if (title) {
      const text = collapse(decodeEntities(title[1]!.replace(/<[^>]*>/g, '')), MAX_VALUE_CHARS);
      if (text) og['og:title'] = text;
    }
  }
  if (!og['og:description'] && description) og['og:description'] = collapse(description, MAX_DESCRIPTION_CHARS);
  let image = og['og:image'] ?? og['og:image:url'] ?? og['og:image:secure_url'] ?? twitterImage;
  if (!image) {
    for (const m of doc.matchAll(/<link\b([^>]*)>/gi)) {
      const a = parseAttributes(m[1]!);
      if ((a.get('rel') ?? '').toLowerCase().split(/\s+/).includes('image_src') && a.get('href')) {
        image = a.get('href')!;
        break;
      }
    }
  }
  delete og['og:image'];
  delete og['og:image:url'];
  delete og['og:image:secure_url'];
  if (image) {
    try {
      const abs = new URL(image.trim(), pageUrl);
      if (abs.protocol === 'http:' || abs.protocol === 'https:') og['og:image'] = abs.toString();
    } catch {
      // A malformed image URL just means no image.
    }
  }
  return og;
}

// ---- the previewer ----------------------------------------------------------------------

export class UrlPreviewer {
  readonly policy: AddressPolicy;
  private readonly inFlight = new Map<string, Promise<Record<string, unknown>>>();
  private readonly ca: Buffer[];
  /** Tests inject a resolver; production uses the system's. */
  resolver: Resolver | undefined;

  constructor(
    private readonly db: Database,
    private readonly media: MediaService,
    private readonly config: PratConfig,
    private readonly log: Logger,
  ) {
    const c = config.media.url_preview;
    this.policy = new AddressPolicy(c.ip_range_allowlist, c.ip_range_blocklist);
    this.ca = config.tls.extra_ca_files.map((f) => readFileSync(f));
  }

  get enabled(): boolean {
    return this.config.media.url_preview.enabled;
  }

  /** Validates the requested URL: absolute http(s), no credentials, bounded length. */
  static parseRequestUrl(raw: unknown): URL {
    if (typeof raw !== 'string' || raw === '') throw new MatrixError('M_MISSING_PARAM', 'Missing url parameter');
    if (raw.length > MAX_URL_LENGTH) throw new MatrixError('M_INVALID_PARAM', 'url is too long');
    let url: URL;
    try {
      url = new URL(raw);
    } catch {
      throw new MatrixError('M_INVALID_PARAM', 'url is not a valid URL');
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new MatrixError('M_INVALID_PARAM', 'Only http and https URLs can be previewed');
    if (url.username || url.password) throw new MatrixError('M_INVALID_PARAM', 'URLs with credentials are not previewed');
    url.hash = '';
    return url;
  }

  async preview(url: URL): Promise<Record<string, unknown>> {
    const key = url.toString();
    const cached = await store.getCachedPreview(this.db, key, Date.now());
    if (cached) return cached;
    let flight = this.inFlight.get(key);
    if (!flight) {
      flight = this.fetchPreview(url).finally(() => this.inFlight.delete(key));
      this.inFlight.set(key, flight);
    }
    return flight;
  }

  private async fetchPreview(url: URL): Promise<Record<string, unknown>> {
    const c = this.config.media.url_preview;
    const signal = AbortSignal.timeout(c.timeout_ms);
    const fetchOpts = { policy: this.policy, maxBytes: c.max_page_size, signal, ca: this.ca, ...(this.resolver ? { resolver: this.resolver } : {}) };
    let page: FetchedResource;
    try {
      page = await safeFetch(url, fetchOpts);
    } catch (err) {
      throw this.fetchError(url, err);
    }
    const type = page.contentType.split(';')[0]!.trim().toLowerCase();
    let og: Record<string, unknown> = {};
    if (type === 'text/html' || type === 'application/xhtml+xml') {
      let html: string;
      try {
        html = new TextDecoder(htmlCharset(page.contentType, page.body)).decode(page.body);
      } catch {
        html = new TextDecoder('utf-8').decode(page.body);
      }
      const parsed = parseHtmlPreview(html, page.url);
      og = { ...parsed };
      delete og['og:image'];
      if (parsed['og:image']) {
        try {
          const image = await safeFetch(new URL(parsed['og:image']), { ...fetchOpts, maxBytes: Math.min(c.max_page_size, this.config.media.max_upload_size) });
          if (!image.truncated) Object.assign(og, await this.storeImage(image));
        } catch (err) {
          // The page's preview is still worth having without its image.
          this.log.info({ err: (err as Error).message }, 'url preview: image not fetched');
        }
      }
    } else if (type.startsWith('image/')) {
      if (page.truncated) throw new MatrixError('M_TOO_LARGE', 'The image is too large to preview', { status: 502 });
      Object.assign(og, await this.storeImage(page));
    }
    const now = Date.now();
    await store.insertPreview(this.db, url.toString(), og, now, now + PREVIEW_CACHE_MS);
    return og;
  }

  /** Stores a fetched image if it really is one; its og:image fields, or none. */
  private async storeImage(image: FetchedResource): Promise<Record<string, unknown>> {
    let info;
    try {
      info = await probeImage(image.body);
    } catch {
      return {};
    }
    const contentType = `image/${info.format}`;
    const stored = await this.media.storeFetched(image.body, contentType, image.url.toString());
    return {
      'og:image': `mxc://${this.media.serverName}/${stored.mediaId}`,
      'og:image:type': contentType,
      'og:image:width': info.width,
      'og:image:height': info.height,
      'matrix:image:size': stored.size,
    };
  }

  private fetchError(url: URL, err: unknown): MatrixError {
    if (err instanceof MatrixError) return err;
    if (err instanceof BlockedAddressError) {
      this.log.info({ host: url.hostname, reason: err.message }, 'url preview refused');
      return new MatrixError('M_FORBIDDEN', 'This URL cannot be previewed');
    }
    const e = err as { name?: string; message?: string; code?: string };
    this.log.info({ host: url.hostname, err: e.message ?? String(err) }, 'url preview fetch failed');
    const timedOut = e.name === 'TimeoutError' || e.name === 'AbortError';
    return new MatrixError('M_UNKNOWN', timedOut ? 'Timed out fetching the URL' : 'Failed to fetch the URL', { status: 502 });
  }
}
