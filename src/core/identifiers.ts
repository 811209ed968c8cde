// Identifier grammars (spec appendices: "Identifier Grammar", "Server Name", "User
// Identifiers", "Room IDs", "Room Aliases", "Event IDs", "Opaque Identifiers", "Common Namespaced
// Identifier Grammar"; client-server API "Matrix Content (mxc://) URIs"). Pure predicates and
// parsers used for input validation everywhere: they never throw on bad input.
import { isIPv6 } from 'node:net';

/** User ids, room ids, room aliases and event ids are all capped at 255 bytes of UTF-8. */
export const MAX_IDENTIFIER_BYTES = 255;

function utf8Length(s: string): number {
  return Buffer.byteLength(s, 'utf8');
}

const isWellFormed = (s: string): boolean => (s as unknown as { isWellFormed(): boolean }).isWellFormed();

export interface ServerName {
  host: string;
  port?: number;
}

// Labels of letters, digits and hyphens separated by single dots: the spec's dns-name is looser
// (any run of [A-Za-z0-9.-]) but recommends these restrictions, and Synapse enforces them, so a
// name we accept is one every other server accepts. Dotted-quad IPv4 literals match this too.
const DNS_NAME = /^[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*$/;
// The spec grammar for the inside of an IPv6 literal; node:net then checks it is a real address.
const IPV6_CHARS = /^[0-9A-Fa-f:.]{2,45}$/;
const PORT = /^[0-9]{1,5}$/;

/**
 * Splits and validates `hostname[:port]`. Hostname: a DNS name, an IPv4 literal or a bracketed
 * IPv6 literal. Returns null when invalid. Case is preserved: server names are case-sensitive.
 */
export function parseServerName(name: string): ServerName | null {
  if (name.length === 0 || name.length > MAX_IDENTIFIER_BYTES) return null;
  let host: string;
  let portText: string | undefined;
  if (name.startsWith('[')) {
    const close = name.indexOf(']');
    if (close === -1) return null;
    host = name.slice(0, close + 1);
    const rest = name.slice(close + 1);
    if (rest !== '') {
      if (!rest.startsWith(':')) return null;
      portText = rest.slice(1);
    }
    const inner = host.slice(1, -1);
    if (!IPV6_CHARS.test(inner) || !isIPv6(inner)) return null;
  } else {
    const colon = name.lastIndexOf(':');
    if (colon !== -1) {
      host = name.slice(0, colon);
      portText = name.slice(colon + 1);
    } else {
      host = name;
    }
    // `999.1.1.1` is no IPv4 literal but is still a valid dns-name by the grammar (and to Synapse).
    if (!DNS_NAME.test(host)) return null;
  }
  if (portText === undefined) return { host };
  if (!PORT.test(portText)) return null;
  const port = Number(portText);
  if (port > 65535) return null;
  return { host, port };
}

export function isValidServerName(name: string): boolean {
  return parseServerName(name) !== null;
}

/** Splits `<sigil><localpart>:<server>` at the first colon; null if there is no colon. */
export function splitIdentifier(id: string): { sigil: string; localpart: string; serverName: string } | null {
  const colon = id.indexOf(':');
  if (id.length < 2 || colon === -1) return null;
  return { sigil: id[0] as string, localpart: id.slice(1, colon), serverName: id.slice(colon + 1) };
}

/** The server name part of a `&localpart:server` identifier, or null. */
export function serverNameOf(id: string): string | null {
  const parts = splitIdentifier(id);
  return parts ? parts.serverName : null;
}

/** The user id localpart grammar for new ids: `[a-z0-9._=\-/+]+`. */
const STRICT_LOCALPART = /^[a-z0-9._=\-/+]+$/;

export function isValidLocalpart(localpart: string): boolean {
  return STRICT_LOCALPART.test(localpart);
}

/**
 * Localparts that existing users may have: any code points except `:` and NUL, even empty.
 * They must still be valid UTF-8, i.e. a well-formed JS string.
 */
export function isHistoricalLocalpart(localpart: string): boolean {
  return !localpart.includes(':') && !localpart.includes('\u0000') && isWellFormed(localpart);
}

export interface UserIdOptions {
  /**
   * Only the current grammar (for ids we create, e.g. at registration). By default historical
   * localparts are accepted too, as servers must for ids arriving in events.
   */
  strict?: boolean;
}

export function isValidUserId(id: string, options: UserIdOptions = {}): boolean {
  if (utf8Length(id) > MAX_IDENTIFIER_BYTES) return false;
  const parts = splitIdentifier(id);
  if (!parts || parts.sigil !== '@' || !isValidServerName(parts.serverName)) return false;
  return options.strict ? isValidLocalpart(parts.localpart) : isHistoricalLocalpart(parts.localpart);
}

/** Room aliases: `#localpart:server`; the localpart may hold any code point but `:` (and NUL). */
export function isValidRoomAlias(alias: string): boolean {
  if (utf8Length(alias) > MAX_IDENTIFIER_BYTES) return false;
  const parts = splitIdentifier(alias);
  return (
    parts !== null &&
    parts.sigil === '#' &&
    isHistoricalLocalpart(parts.localpart) &&
    isValidServerName(parts.serverName)
  );
}

/** `!` + URL-safe unpadded base64 of a SHA-256 (room version 12 room ids). */
const HASH_ROOM_ID = /^![A-Za-z0-9_-]{43}$/;

/** Room ids up to room version 11: `!opaque:server`. */
export function isValidServerRoomId(id: string): boolean {
  if (utf8Length(id) > MAX_IDENTIFIER_BYTES) return false;
  const parts = splitIdentifier(id);
  return (
    parts !== null &&
    parts.sigil === '!' &&
    isHistoricalLocalpart(parts.localpart) &&
    isValidServerName(parts.serverName)
  );
}

/** Room ids from room version 12: `!` + the create event's reference hash, no server part. */
export function isValidHashRoomId(id: string): boolean {
  return HASH_ROOM_ID.test(id);
}

/** Either room id form; use the version-specific check when the room version is known. */
export function isValidRoomId(id: string): boolean {
  return isValidHashRoomId(id) || isValidServerRoomId(id);
}

/** `$` + unpadded standard base64 of a SHA-256 (room version 3). */
const EVENT_ID_V3 = /^\$[A-Za-z0-9+/]{43}$/;
/** `$` + unpadded URL-safe base64 of a SHA-256 (room versions 4+). */
const EVENT_ID_V4 = /^\$[A-Za-z0-9_-]{43}$/;

/** Event ids of room versions 1 and 2: `$opaque:server`. */
export function isValidServerEventId(id: string): boolean {
  if (utf8Length(id) > MAX_IDENTIFIER_BYTES) return false;
  const parts = splitIdentifier(id);
  return (
    parts !== null &&
    parts.sigil === '$' &&
    parts.localpart.length > 0 &&
    isHistoricalLocalpart(parts.localpart) &&
    isValidServerName(parts.serverName)
  );
}

export function isValidHashEventIdV3(id: string): boolean {
  return EVENT_ID_V3.test(id);
}

export function isValidHashEventIdV4(id: string): boolean {
  return EVENT_ID_V4.test(id);
}

/**
 * Any event id form: for ids arriving where the room version is not known (URL parameters).
 * A `$` then 1-254 bytes without NUL.
 */
export function isValidEventId(id: string): boolean {
  return (
    id.length >= 2 &&
    id[0] === '$' &&
    !id.includes('\u0000') &&
    isWellFormed(id) &&
    utf8Length(id) <= MAX_IDENTIFIER_BYTES
  );
}

/** Media ids in `mxc://<server>/<media id>`. */
const MEDIA_ID = /^[A-Za-z0-9_-]+$/;

export function isValidMediaId(mediaId: string): boolean {
  return MEDIA_ID.test(mediaId);
}

export interface MxcUri {
  serverName: string;
  mediaId: string;
}

export function parseMxcUri(uri: string): MxcUri | null {
  if (!uri.startsWith('mxc://')) return null;
  const rest = uri.slice('mxc://'.length);
  const slash = rest.indexOf('/');
  if (slash === -1) return null;
  const serverName = rest.slice(0, slash);
  const mediaId = rest.slice(slash + 1);
  if (!isValidServerName(serverName) || !isValidMediaId(mediaId)) return null;
  return { serverName, mediaId };
}

export function isValidMxcUri(uri: string): boolean {
  return parseMxcUri(uri) !== null;
}

/** Opaque Identifier Grammar: 1-255 of `[0-9A-Za-z-._~]` (the RFC 3986 unreserved set). */
const OPAQUE_ID = /^[0-9A-Za-z._~-]{1,255}$/;

export function isValidOpaqueId(id: string): boolean {
  return OPAQUE_ID.test(id);
}

/** Common Namespaced Identifier Grammar: 1-255 of `[a-z0-9._-]`, starting with `[a-z]`. */
const NAMESPACED_ID = /^[a-z][a-z0-9._-]{0,254}$/;

export function isValidNamespacedId(id: string): boolean {
  return NAMESPACED_ID.test(id);
}
