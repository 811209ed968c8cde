// Signing events (server-server API: "Signing events"): the signature covers the *redacted*
// wire PDU, so it stays verifiable after a redaction strips the content. The content hash,
// which the redacted form keeps, is what ties the signature to the full content.
import { canonicalJsonBytes } from './canonical-json.js';
import { decodeBase64Any, encodeBase64 } from './base64.js';
import { toWirePdu } from './hashes.js';
import { redactEvent, resolveRoomVersion, type RoomVersionLike } from './redaction.js';
import { signBytes, verifyBytes, type SigningKey } from './signing.js';
import type { Signatures } from './types.js';

type JsonRecord = Record<string, unknown>;

/** The bytes an event signature covers: the redacted wire PDU without signatures, unsigned, age_ts. */
export function eventSigningBytes(pdu: object, version: RoomVersionLike): Buffer {
  const v = resolveRoomVersion(version);
  const redacted = redactEvent(toWirePdu(pdu, v), v) as JsonRecord;
  const { signatures: _s, unsigned: _u, age_ts: _a, ...rest } = redacted;
  return canonicalJsonBytes(rest);
}

/**
 * A copy of the event with this server's signature merged into `signatures`. The content hash
 * must already be in place (addContentHash), since the signature covers `hashes`.
 */
export function signEvent<T extends object>(
  pdu: T,
  version: RoomVersionLike,
  serverName: string,
  key: SigningKey,
): T & { signatures: Signatures } {
  return signEventWithBytes(pdu, version, serverName, key).signed;
}

/** signEvent, also returning the bytes the signature covers (eventSigningBytes). */
export function signEventWithBytes<T extends object>(
  pdu: T,
  version: RoomVersionLike,
  serverName: string,
  key: SigningKey,
): { signed: T & { signatures: Signatures }; bytes: Buffer } {
  const bytes = eventSigningBytes(pdu, version);
  const signature = encodeBase64(signBytes(bytes, key));
  const prior = (pdu as { signatures?: unknown }).signatures;
  const priorSigs = isObject(prior) ? (prior as Signatures) : {};
  const forServer = Object.prototype.hasOwnProperty.call(priorSigs, serverName) ? priorSigs[serverName] : undefined;
  const signatures: Signatures = {
    ...priorSigs,
    [serverName]: { ...(isObject(forServer) ? forServer : {}), [key.keyId]: signature },
  };
  return { signed: { ...pdu, signatures }, bytes };
}

/**
 * Checks `signatures[serverName][keyId]` on an event against a public key. Works the same on
 * the full event and on a redacted copy. Malformed input fails the check instead of throwing.
 */
export function verifyEventSignature(
  pdu: object,
  version: RoomVersionLike,
  serverName: string,
  keyId: string,
  publicKey: Uint8Array,
): boolean {
  const signatures = (pdu as { signatures?: unknown }).signatures;
  if (!isObject(signatures) || !Object.prototype.hasOwnProperty.call(signatures, serverName)) return false;
  const forServer = signatures[serverName];
  if (!isObject(forServer) || !Object.prototype.hasOwnProperty.call(forServer, keyId)) return false;
  const sigText = forServer[keyId];
  if (typeof sigText !== 'string') return false;
  try {
    return verifyBytes(eventSigningBytes(pdu, version), decodeBase64Any(sigText), publicKey);
  } catch {
    return false;
  }
}

function isObject(v: unknown): v is JsonRecord {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
