// Random identifiers and the one-way storage of tokens.
import { createHash, randomBytes, randomInt } from 'node:crypto';
// @node-rs/argon2 ships its binary as a per-platform npm package; the `argon2` package's
// linux-x64 prebuild crashed (SIGSEGV) on a clean install here.
import { hash as argon2Hash, verify as argon2Verify, type Algorithm } from '@node-rs/argon2';

/** Algorithm.Argon2id: a const enum, which isolated modules cannot import by name. */
const ARGON2ID = 2 as Algorithm;

export function newAccessToken(): string {
  return `prat_${randomBytes(32).toString('base64url')}`;
}

export function newRefreshToken(): string {
  return `pratr_${randomBytes(32).toString('base64url')}`;
}

/** Tokens are random 256-bit values: one sha256 is enough to make the stored form useless. */
export function hashToken(token: string): Buffer {
  return createHash('sha256').update(token).digest();
}

const DEVICE_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ';

/** Ten upper-case letters, the shape Synapse and Element users are used to seeing. */
export function newDeviceId(): string {
  let id = '';
  for (let i = 0; i < 10; i++) id += DEVICE_ALPHABET[randomInt(DEVICE_ALPHABET.length)];
  return id;
}

export function randomString(bytes = 18): string {
  return randomBytes(bytes).toString('base64url');
}

export function hashPassword(password: string): Promise<string> {
  return argon2Hash(password, { algorithm: ARGON2ID });
}

export async function verifyPassword(hash: string, password: string): Promise<boolean> {
  try {
    return await argon2Verify(hash, password);
  } catch {
    return false;
  }
}
