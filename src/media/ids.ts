// Identifiers and header values of the media repository. Media ids and server names come from
// request paths; they are checked against the spec's grammar before any lookup, so nothing
// taken from a request ever names a file (bytes are addressed by their sha256 alone).
import { randomBytes } from 'node:crypto';
import { isIPv4, isIPv6 } from 'node:net';

/** The spec's media id alphabet (A-Za-z0-9, _ and -): URL-safe base64, no dots or slashes. */
const MEDIA_ID_RE = /^[A-Za-z0-9_-]{1,255}$/;
// Appendix "Server name": hostname [":" port], hostname = IPv4 / "[" IPv6 "]" / dns-name.
const DNS_NAME_RE = /^[A-Za-z0-9.-]{1,255}$/;
const PORT_RE = /^[0-9]{1,5}$/;

export function isValidMediaId(mediaId: string): boolean {
  return MEDIA_ID_RE.test(mediaId);
}

export function isValidServerName(name: string): boolean {
  if (name.length === 0 || name.length > 255 + 8) return false;
  let host = name;
  let port: string | undefined;
  if (name.startsWith('[')) {
    const close = name.indexOf(']');
    if (close < 0) return false;
    host = name.slice(1, close);
    const rest = name.slice(close + 1);
    if (rest !== '') {
      if (!rest.startsWith(':')) return false;
      port = rest.slice(1);
    }
    if (!isIPv6(host)) return false;
  } else {
    const colon = name.lastIndexOf(':');
    if (colon >= 0) {
      host = name.slice(0, colon);
      port = name.slice(colon + 1);
    }
    if (!isIPv4(host) && !DNS_NAME_RE.test(host)) return false;
  }
  return port === undefined || (PORT_RE.test(port) && Number(port) <= 65535);
}

const ALPHANUMERIC = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

/** 24 random alphanumerics (~143 bits), like Synapse's media ids. */
export function newMediaId(): string {
  let out = '';
  while (out.length < 24) {
    for (const b of randomBytes(32)) {
      // 248 = 4 * 62: rejecting above it keeps every character equally likely.
      if (b < 248 && out.length < 24) out += ALPHANUMERIC[b % 62];
    }
  }
  return out;
}

// RFC 9110 token characters, for the type/subtype of a media type.
const TOKEN = "[!#$%&'*+.^_`|~0-9A-Za-z-]+";
const MEDIA_TYPE_RE = new RegExp(`^${TOKEN}/${TOKEN}(\\s*;\\s*${TOKEN}=(${TOKEN}|"[^"\\\\]*"))*$`);

/**
 * The Content-Type an upload is stored with. Absent means application/octet-stream (spec v1.12);
 * a value that is not a well-formed media type is refused, because it is echoed back as a
 * response header later.
 */
export function normaliseUploadContentType(header: string | undefined): string | null {
  if (header === undefined || header.trim() === '') return 'application/octet-stream';
  const value = header.trim();
  if (value.length > 255 || !MEDIA_TYPE_RE.test(value)) return null;
  return value;
}

/** The media type without parameters, lowercased: "text/plain; charset=utf-8" -> "text/plain". */
export function baseMediaType(contentType: string | null): string {
  return (contentType ?? 'application/octet-stream').split(';')[0]!.trim().toLowerCase();
}

/** The spec's list of types that may be served with Content-Disposition: inline. */
const INLINE_SAFE_TYPES = new Set([
  'text/css',
  'text/plain',
  'text/csv',
  'application/json',
  'application/ld+json',
  'image/jpeg',
  'image/gif',
  'image/png',
  'image/apng',
  'image/webp',
  'image/avif',
  'video/mp4',
  'video/webm',
  'video/ogg',
  'video/quicktime',
  'audio/mp4',
  'audio/webm',
  'audio/aac',
  'audio/mpeg',
  'audio/ogg',
  'audio/wave',
  'audio/wav',
  'audio/x-wav',
  'audio/x-pn-wav',
  'audio/flac',
  'audio/x-flac',
]);

export function isInlineSafe(contentType: string | null): boolean {
  return INLINE_SAFE_TYPES.has(baseMediaType(contentType));
}

/**
 * Cleans a file name from a client: control characters (header injection, NUL that PostgreSQL
 * TEXT cannot hold) go, path separators become "_" so a saved file stays where the user saves it.
 */
export function sanitiseFileName(name: string): string {
  // eslint-disable-next-line no-control-regex
  return name.replace(/[\u0000-\u001f\u007f]/g, '').replace(/[/\\]/g, '_').slice(0, 255);
}

// Printable ASCII except the characters that would need quoting inside a quoted-string.
const PLAIN_FILENAME_RE = /^[\x20-\x7e]*$/;

/**
 * Content-Disposition per RFC 6266: `inline` or `attachment`, with the file name as a plain
 * quoted filename when it is printable ASCII, else as RFC 8187 filename* (UTF-8, percent-encoded).
 */
export function contentDisposition(type: 'inline' | 'attachment', fileName: string | null): string {
  if (fileName === null || fileName === '') return type;
  const name = sanitiseFileName(fileName);
  if (name === '') return type;
  if (PLAIN_FILENAME_RE.test(name) && !/["\\]/.test(name)) return `${type}; filename="${name}"`;
  const encoded = encodeURIComponent(name).replace(/['()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  return `${type}; filename*=utf-8''${encoded}`;
}
