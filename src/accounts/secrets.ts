// Random identifiers and the one-way storage of tokens.
import { createHash, randomBytes, randomInt } from 'node:crypto';
import argon2 from 'argon2';

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
  return argon2.hash(password, { type: argon2.argon2id });
}

export async function verifyPassword(hash: string, password: string): Promise<boolean> {
  try {
    return await argon2.verify(hash, password);
  } catch {
    return false;
  }
}
