// The server's ed25519 signing key file: created on first start, then kept forever (other
// servers cache the public key; a new key invalidates nothing but must be announced).
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { decodeSigningKeyFile, encodeSigningKeySeed, generateSigningKey, type SigningKey } from '../core/signing.js';

export function loadOrCreateSigningKey(path: string): SigningKey {
  if (!existsSync(path)) {
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, `${encodeSigningKeySeed(generateSigningKey())}\n`, { mode: 0o600, flag: 'wx' });
  }
  const keys = decodeSigningKeyFile(readFileSync(path, 'utf8'));
  if (keys.length === 0) throw new Error(`${path} holds no signing key`);
  return keys[0]!;
}
