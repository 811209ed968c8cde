// Shapes of the key objects clients upload, and comparisons that ignore what signatures do not
// cover. Pure: no database, no HTTP types beyond MatrixError.
import { decodeBase64 } from '../core/base64.js';
import { encodeCanonicalJson } from '../core/canonical-json.js';
import { MatrixError } from '../http/errors.js';

export type Json = Record<string, unknown>;

export function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isStringMap(v: unknown): v is Record<string, string> {
  return isObject(v) && Object.values(v).every((x) => typeof x === 'string');
}

/** `signatures`: user id -> key id -> signature, all strings. */
export function isSignatures(v: unknown): v is Record<string, Record<string, string>> {
  return isObject(v) && Object.values(v).every(isStringMap);
}

/** Splits `<algorithm>:<key id>` at its first colon; undefined when either side is empty. */
export function splitKeyId(id: string): { algorithm: string; keyId: string } | undefined {
  const i = id.indexOf(':');
  if (i <= 0 || i === id.length - 1) return undefined;
  return { algorithm: id.slice(0, i), keyId: id.slice(i + 1) };
}

/** The object without `signatures` and `unsigned`: what a signature covers. */
export function signedPart(obj: Json): Json {
  const { signatures: _s, unsigned: _u, ...rest } = obj;
  return rest;
}

/** Canonical-JSON equality of what two objects' signatures cover (null-safe for strings). */
export function sameSignedContent(a: unknown, b: unknown): boolean {
  if (!isObject(a) || !isObject(b)) return a === b;
  try {
    return encodeCanonicalJson(signedPart(a)) === encodeCanonicalJson(signedPart(b));
  } catch {
    return false;
  }
}

/** Checks a device_keys object's types (the spec's DeviceKeys); M_BAD_JSON naming the field. */
export function checkDeviceKeysShape(v: unknown): asserts v is Json & {
  user_id: string;
  device_id: string;
  algorithms: string[];
  keys: Record<string, string>;
  signatures: Record<string, Record<string, string>>;
} {
  if (!isObject(v)) throw new MatrixError('M_BAD_JSON', "'device_keys' must be an object");
  if (typeof v['user_id'] !== 'string') throw new MatrixError('M_BAD_JSON', "'device_keys.user_id' must be a string");
  if (typeof v['device_id'] !== 'string') throw new MatrixError('M_BAD_JSON', "'device_keys.device_id' must be a string");
  if (!Array.isArray(v['algorithms']) || !v['algorithms'].every((a) => typeof a === 'string')) {
    throw new MatrixError('M_BAD_JSON', "'device_keys.algorithms' must be a list of strings");
  }
  if (!isStringMap(v['keys'])) throw new MatrixError('M_BAD_JSON', "'device_keys.keys' must map key ids to strings");
  for (const id of Object.keys(v['keys'])) {
    if (!splitKeyId(id)) throw new MatrixError('M_BAD_JSON', `'device_keys.keys' has a malformed key id '${id}'`);
  }
  if (!isSignatures(v['signatures'])) throw new MatrixError('M_BAD_JSON', "'device_keys.signatures' must be a signatures object");
}

export interface ParsedKey {
  algorithm: string;
  keyId: string;
  /** A plain string (e.g. curve25519) or a KeyObject ({key, signatures, fallback?}). */
  value: string | Json;
}

/** Checks a one_time_keys / fallback_keys map: `<algorithm>:<id>` -> string or KeyObject. */
export function parseKeyMap(field: string, v: unknown): ParsedKey[] {
  if (!isObject(v)) throw new MatrixError('M_BAD_JSON', `'${field}' must be an object`);
  const out: ParsedKey[] = [];
  for (const [id, value] of Object.entries(v)) {
    const parts = splitKeyId(id);
    if (!parts) throw new MatrixError('M_BAD_JSON', `'${field}' has a malformed key id '${id}': expected <algorithm>:<key id>`);
    if (typeof value !== 'string') {
      if (!isObject(value) || typeof value['key'] !== 'string' || !isSignatures(value['signatures'])) {
        throw new MatrixError('M_BAD_JSON', `'${field}.${id}' must be a string or an object with 'key' and 'signatures'`);
      }
      if (value['fallback'] !== undefined && typeof value['fallback'] !== 'boolean') {
        throw new MatrixError('M_BAD_JSON', `'${field}.${id}.fallback' must be a boolean`);
      }
    }
    out.push({ ...parts, value });
  }
  return out;
}

export interface CrossSigningKeyInfo {
  /** `ed25519:<unpadded base64 public key>` */
  keyId: string;
  /** The public key as written (also the "device id" slot of the key id). */
  publicKeyText: string;
  publicKey: Uint8Array;
}

/**
 * Checks a cross-signing key (the spec's CrossSigningKey) for `userId` and `usage`: exactly one
 * ed25519 key whose id names the same public key. 400 M_INVALID_PARAM otherwise, as Synapse.
 */
export function checkCrossSigningKey(v: unknown, userId: string, usage: string): CrossSigningKeyInfo {
  const invalid = (why: string) => new MatrixError('M_INVALID_PARAM', `Invalid ${usage} key: ${why}`);
  if (!isObject(v)) throw invalid('not an object');
  if (v['user_id'] !== userId) throw invalid('user_id does not match the uploader');
  if (!Array.isArray(v['usage']) || !v['usage'].includes(usage) || !v['usage'].every((u) => typeof u === 'string')) {
    throw invalid(`usage must include '${usage}'`);
  }
  const keys = v['keys'];
  if (!isStringMap(keys) || Object.keys(keys).length !== 1) throw invalid('keys must hold exactly one key');
  const [keyId, text] = Object.entries(keys)[0]!;
  const parts = splitKeyId(keyId);
  if (!parts || parts.algorithm !== 'ed25519' || parts.keyId !== text) throw invalid("the key id must be 'ed25519:<the public key>'");
  if (v['signatures'] !== undefined && !isSignatures(v['signatures'])) throw invalid('signatures must be a signatures object');
  let publicKey: Uint8Array;
  try {
    publicKey = decodeBase64(text);
  } catch {
    throw invalid('the public key is not base64');
  }
  if (publicKey.length !== 32) throw invalid('the public key is not 32 bytes');
  return { keyId, publicKeyText: text, publicKey };
}
