// Matrix uses unpadded base64 everywhere (appendices: "Unpadded Base64"). Decoders accept
// padded input too, as the spec asks implementations to be lenient on input.

export function encodeBase64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64').replace(/=+$/, '');
}

export function encodeBase64Url(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64url');
}

const STANDARD = /^[A-Za-z0-9+/]*={0,2}$/;
const URL_SAFE = /^[A-Za-z0-9\-_]*={0,2}$/;

/** Decodes standard unpadded (or padded) base64; throws on any other character. */
export function decodeBase64(text: string): Uint8Array {
  if (!STANDARD.test(text) || text.replace(/=+$/, '').length % 4 === 1) {
    throw new Error('invalid base64');
  }
  return new Uint8Array(Buffer.from(text, 'base64'));
}

/** Decodes URL-safe unpadded (or padded) base64; throws on any other character. */
export function decodeBase64Url(text: string): Uint8Array {
  if (!URL_SAFE.test(text) || text.replace(/=+$/, '').length % 4 === 1) {
    throw new Error('invalid base64url');
  }
  return new Uint8Array(Buffer.from(text, 'base64url'));
}

const EITHER = /^[A-Za-z0-9+/\-_]*={0,2}$/;

/**
 * Decodes either alphabet, even mixed, padded or not. For values from other servers where
 * senders are known to differ: Synapse decodes everything this way, and identity servers have
 * handed out URL-safe public keys for third-party invites. Verifying a signature or a hash
 * with the decoded bytes is exactly as strict either way.
 */
export function decodeBase64Any(text: string): Uint8Array {
  if (!EITHER.test(text) || text.replace(/=+$/, '').length % 4 === 1) {
    throw new Error('invalid base64');
  }
  // Node's base64 decoder accepts both alphabets.
  return new Uint8Array(Buffer.from(text, 'base64'));
}
