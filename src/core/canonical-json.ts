// Canonical JSON as the spec's appendix defines it: keys sorted by Unicode code point, no
// insignificant whitespace, UTF-8, shortest escapes. The canonical-json package does the
// serialisation; Matrix adds that only integers in +-(2^53-1) are allowed (no floats, no
// NaN/Infinity), which is checked here.
import { walk } from 'canonical-json';

export const MAX_SAFE_INTEGER = Number.MAX_SAFE_INTEGER; // 2^53 - 1

export class CanonicalJsonError extends Error {
  override name = 'CanonicalJsonError';
}

/** Compares by Unicode code point, which differs from JS's UTF-16 order above U+FFFF. */
function compareCodePoints(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const ca = a.charCodeAt(i);
    const cb = b.charCodeAt(i);
    if (ca === cb) continue;
    // A surrogate (>= 0xD800 and < 0xE000) encodes a code point above U+FFFF, which sorts after
    // every BMP character, including U+E000..U+FFFF that compare higher in UTF-16 units.
    const sa = ca >= 0xd800 && ca < 0xe000;
    const sb = cb >= 0xd800 && cb < 0xe000;
    if (sa !== sb) return sa ? 1 : -1;
    return ca - cb;
  }
  return a.length - b.length;
}

/** Throws CanonicalJsonError for anything Matrix canonical JSON cannot carry. */
export function assertCanonicalJsonValue(value: unknown, path = '$'): void {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return;
    case 'number':
      if (!Number.isInteger(value)) throw new CanonicalJsonError(`${path}: floats are not allowed in canonical JSON`);
      if (value > MAX_SAFE_INTEGER || value < -MAX_SAFE_INTEGER) {
        throw new CanonicalJsonError(`${path}: integer out of range +-(2^53-1)`);
      }
      return;
    case 'object':
      if (value === null) return;
      if (Array.isArray(value)) {
        for (let i = 0; i < value.length; i++) assertCanonicalJsonValue(value[i], `${path}[${i}]`);
        return;
      }
      if (Object.getPrototypeOf(value) !== Object.prototype && Object.getPrototypeOf(value) !== null) {
        throw new CanonicalJsonError(`${path}: not a plain JSON object`);
      }
      for (const key of Object.keys(value)) {
        assertCanonicalJsonValue((value as Record<string, unknown>)[key], `${path}.${key}`);
      }
      return;
    default:
      throw new CanonicalJsonError(`${path}: ${typeof value} is not a JSON value`);
  }
}

/** Encodes a value as Matrix canonical JSON; throws CanonicalJsonError on disallowed values. */
export function encodeCanonicalJson(value: unknown): string {
  assertCanonicalJsonValue(value);
  const chunks: string[] = [];
  walk(value, (chunk) => chunks.push(chunk), compareCodePoints);
  return chunks.join('');
}

/** Canonical JSON as UTF-8 bytes: what gets hashed and signed. */
export function canonicalJsonBytes(value: unknown): Buffer {
  return Buffer.from(encodeCanonicalJson(value), 'utf8');
}
