// Ed25519 server signing keys and JSON signatures (spec appendices: "Signing JSON",
// "Checking for a Signature"). node:crypto does the signing and verifying because it is several
// times faster than tweetnacl's pure-JS ed25519; tweetnacl is only used to derive the public
// key from a seed (a one-off per key) and as the independent cross-check in the tests.
import { createPrivateKey, createPublicKey, randomBytes, sign, verify, type KeyObject } from 'node:crypto';
import nacl from 'tweetnacl';
import { decodeBase64, decodeBase64Any, encodeBase64 } from './base64.js';
import { canonicalJsonBytes } from './canonical-json.js';
import type { Signatures } from './types.js';

export interface SigningKey {
  /** `ed25519:<version>` */
  keyId: string;
  /** The 32-byte ed25519 seed (the private key as NaCl and Synapse store it). */
  seed: Uint8Array;
  publicKey: Uint8Array;
}

export const ED25519 = 'ed25519';

/** Key versions are `[a-zA-Z0-9_]+` (server-server API, "Publishing Keys"). */
const KEY_VERSION = /^[A-Za-z0-9_]+$/;

export function isValidKeyId(keyId: string): boolean {
  const i = keyId.indexOf(':');
  return i > 0 && KEY_VERSION.test(keyId.slice(i + 1));
}

// DER wrappers for raw ed25519 keys (RFC 8410): node:crypto only imports keys as PKCS#8 / SPKI
// (or JWK), so the raw 32 bytes are prefixed with the fixed ASN.1 header for the Ed25519 OID.
const PKCS8_ED25519_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');
const SPKI_ED25519_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

// Keyed by the seed array itself: a SigningKey is long-lived, so its KeyObject is built once.
const privateKeyCache = new WeakMap<Uint8Array, KeyObject>();

function privateKeyObject(key: SigningKey): KeyObject {
  let obj = privateKeyCache.get(key.seed);
  if (!obj) {
    obj = createPrivateKey({ key: Buffer.concat([PKCS8_ED25519_PREFIX, key.seed]), format: 'der', type: 'pkcs8' });
    privateKeyCache.set(key.seed, obj);
  }
  return obj;
}

// Verification keys usually arrive freshly decoded from base64 for every event, so an identity
// cache would never hit; key them by their base64 text instead, bounded so a flood of distinct
// keys from remote servers cannot grow it without limit.
const PUBLIC_KEY_CACHE_LIMIT = 4096;
const publicKeyCache = new Map<string, KeyObject>();

function publicKeyObject(publicKey: Uint8Array): KeyObject {
  const raw = Buffer.from(publicKey.buffer, publicKey.byteOffset, publicKey.byteLength);
  const cacheKey = raw.toString('base64');
  let obj = publicKeyCache.get(cacheKey);
  if (!obj) {
    obj = createPublicKey({ key: Buffer.concat([SPKI_ED25519_PREFIX, raw]), format: 'der', type: 'spki' });
    if (publicKeyCache.size >= PUBLIC_KEY_CACHE_LIMIT) {
      // Map iterates in insertion order, so this drops the oldest entry.
      publicKeyCache.delete(publicKeyCache.keys().next().value as string);
    }
    publicKeyCache.set(cacheKey, obj);
  }
  return obj;
}

export function signingKeyFromSeed(seed: Uint8Array, keyId: string): SigningKey {
  if (seed.length !== 32) throw new Error(`ed25519 seed must be 32 bytes, got ${seed.length}`);
  if (!keyId.startsWith(`${ED25519}:`) || !isValidKeyId(keyId)) {
    throw new Error(`invalid ed25519 key id: ${JSON.stringify(keyId)}`);
  }
  const copy = new Uint8Array(seed);
  const { publicKey } = nacl.sign.keyPair.fromSeed(copy);
  return { keyId, seed: copy, publicKey };
}

const ALPHANUMERIC = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

function randomAlphanumeric(length: number): string {
  let out = '';
  // Rejection sampling keeps the distribution uniform (256 is not a multiple of 62).
  while (out.length < length) {
    for (const b of randomBytes(length * 2)) {
      if (b < 248 && out.length < length) out += ALPHANUMERIC[b % 62];
    }
  }
  return out;
}

/** A fresh key; the version defaults to `a_` + random letters, the shape Synapse generates. */
export function generateSigningKey(keyVersion?: string): SigningKey {
  const version = keyVersion ?? `a_${randomAlphanumeric(6)}`;
  return signingKeyFromSeed(new Uint8Array(randomBytes(32)), `${ED25519}:${version}`);
}

/** One line of a Synapse signing key file: `ed25519 <version> <unpadded base64 seed>`. */
export function encodeSigningKeySeed(key: SigningKey): string {
  const [alg, version] = splitKeyId(key.keyId);
  return `${alg} ${version} ${encodeBase64(key.seed)}`;
}

/** Parses one `ed25519 <version> <seed>` line (surrounding whitespace ignored). */
export function decodeSigningKeySeed(text: string): SigningKey {
  const parts = text.trim().split(/\s+/);
  if (parts.length !== 3) throw new Error('signing key must be "<algorithm> <version> <base64 seed>"');
  const [alg, version, seedText] = parts as [string, string, string];
  if (alg !== ED25519) throw new Error(`unsupported signing key algorithm: ${alg}`);
  let seed: Uint8Array;
  try {
    seed = decodeBase64(seedText);
  } catch {
    throw new Error('signing key seed is not valid base64');
  }
  return signingKeyFromSeed(seed, `${alg}:${version}`);
}

/** A whole signing key file: one key per non-empty line, as Synapse writes it. */
export function decodeSigningKeyFile(text: string): SigningKey[] {
  return text
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map(decodeSigningKeySeed);
}

function splitKeyId(keyId: string): [string, string] {
  const i = keyId.indexOf(':');
  return [keyId.slice(0, i), keyId.slice(i + 1)];
}

export function signBytes(bytes: Uint8Array, key: SigningKey): Uint8Array {
  return new Uint8Array(sign(null, bytes, privateKeyObject(key)));
}

// Synapse verifies with libsodium, which (unlike OpenSSL and tweetnacl) refuses signatures whose
// R or public key is a point of small order, public keys not canonically encoded, and S >= L.
// Small-order keys let a server make one signature that "verifies" for any message; if we
// accepted what Synapse refuses, a hostile server could split the room's state between us. So
// the same checks run here before OpenSSL's.

/** Encodings of the points of order 1, 2, 4 and 8 (sign bit ignored), as libsodium lists them. */
const SMALL_ORDER_POINTS = [
  '0000000000000000000000000000000000000000000000000000000000000000',
  '0100000000000000000000000000000000000000000000000000000000000000',
  '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05',
  'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a',
  'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  'edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  'eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
].map((hex) => Buffer.from(hex, 'hex'));

function hasSmallOrder(point: Uint8Array): boolean {
  return SMALL_ORDER_POINTS.some((bad) => {
    for (let i = 0; i < 31; i++) if (point[i] !== bad[i]) return false;
    return (point[31]! & 0x7f) === bad[31];
  });
}

/** Is the y coordinate (little-endian, sign bit cleared) below p = 2^255 - 19? */
function isCanonicalPoint(point: Uint8Array): boolean {
  if ((point[31]! & 0x7f) !== 0x7f) return true;
  for (let i = 30; i > 0; i--) if (point[i] !== 0xff) return true;
  return point[0]! < 0xed;
}

/** L = 2^252 + 27742317777372353535851937790883648493, little-endian. */
const GROUP_ORDER = Buffer.from('edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010', 'hex');

/** Is the scalar (little-endian) below L? */
function isCanonicalScalar(s: Uint8Array): boolean {
  for (let i = 31; i >= 0; i--) {
    if (s[i]! < GROUP_ORDER[i]!) return true;
    if (s[i]! > GROUP_ORDER[i]!) return false;
  }
  return false; // equal to L
}

/** False for a wrong signature and for malformed input (bad lengths, unusable key). */
export function verifyBytes(bytes: Uint8Array, signature: Uint8Array, publicKey: Uint8Array): boolean {
  if (signature.length !== 64 || publicKey.length !== 32) return false;
  if (!isCanonicalScalar(signature.subarray(32)) || hasSmallOrder(signature.subarray(0, 32))) return false;
  if (!isCanonicalPoint(publicKey) || hasSmallOrder(publicKey)) return false;
  try {
    return verify(null, bytes, publicKeyObject(publicKey), signature);
  } catch {
    return false;
  }
}

/** The bytes a signature covers: the object without `signatures` and `unsigned`. */
export function signedJsonBytes(value: object): Buffer {
  const { signatures: _s, unsigned: _u, ...rest } = value as Record<string, unknown>;
  return canonicalJsonBytes(rest);
}

/**
 * Returns a copy of `value` with this server's signature added to any existing ones. The input
 * is left untouched; `unsigned` is carried over but, like `signatures`, not covered.
 */
export function signJson<T extends object>(
  value: T,
  serverName: string,
  key: SigningKey,
): T & { signatures: Signatures } {
  const signature = encodeBase64(signBytes(signedJsonBytes(value), key));
  const existing = (value as { signatures?: unknown }).signatures;
  const prior: Signatures = isPlainObject(existing) ? (existing as Signatures) : {};
  const forServer = ownProperty(prior, serverName);
  const priorForServer = isPlainObject(forServer) ? (forServer as Record<string, string>) : {};
  // Computed keys in literals define own properties, so a hostile "__proto__" stays data.
  const signatures: Signatures = {
    ...prior,
    [serverName]: { ...priorForServer, [key.keyId]: signature },
  };
  return { ...value, signatures };
}

/**
 * Checks one signature (`signatures[serverName][keyId]`) against a known public key. Anything
 * malformed (missing entry, bad base64, non-canonical JSON) is a failed check, not an exception,
 * since the input is usually remote and untrusted.
 */
export function verifyJsonSignature(value: object, serverName: string, keyId: string, publicKey: Uint8Array): boolean {
  const signatures = (value as { signatures?: unknown }).signatures;
  if (!isPlainObject(signatures)) return false;
  const forServer = ownProperty(signatures, serverName);
  if (!isPlainObject(forServer)) return false;
  const sigText = ownProperty(forServer, keyId);
  if (typeof sigText !== 'string') return false;
  let signature: Uint8Array;
  let bytes: Buffer;
  try {
    signature = decodeBase64Any(sigText);
    bytes = signedJsonBytes(value);
  } catch {
    // Bad base64 or a value canonical JSON cannot carry (CanonicalJsonError): not validly signed.
    return false;
  }
  return verifyBytes(bytes, signature, publicKey);
}

/** Key ids this server has signed with, e.g. to look up which verification keys to fetch. */
export function signatureKeyIds(value: object, serverName: string): string[] {
  const signatures = (value as { signatures?: unknown }).signatures;
  if (!isPlainObject(signatures)) return [];
  const forServer = ownProperty(signatures, serverName);
  return isPlainObject(forServer) ? Object.keys(forServer) : [];
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

// Server names and key ids come from remote input: never let them reach Object.prototype.
function ownProperty(obj: Record<string, unknown>, key: string): unknown {
  return Object.prototype.hasOwnProperty.call(obj, key) ? obj[key] : undefined;
}
