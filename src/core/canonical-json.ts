// Canonical JSON as the spec's appendix defines it: keys sorted by Unicode code point, no
// insignificant whitespace, UTF-8, shortest escapes, and only integers in +-(2^53-1). Everything
// hashed or signed goes through encodeCanonicalJson, and every JSON body we accept through
// parseJsonStrict, so both are written for speed: one pass each, native JSON where it is exact.

export const MAX_SAFE_INTEGER = Number.MAX_SAFE_INTEGER; // 2^53 - 1

export class CanonicalJsonError extends Error {
  override name = 'CanonicalJsonError';
}

/** Compares by Unicode code point, which differs from JS's UTF-16 order above U+FFFF. */
export function compareCodePoints(a: string, b: string): number {
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

// ES2024 String.prototype.isWellFormed (Node 20+); the project's lib setting predates it.
const isWellFormed = (s: string): boolean => (s as unknown as { isWellFormed(): boolean }).isWellFormed();

function isPlainObjectProto(value: object): boolean {
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

function numberProblem(value: number): string | undefined {
  if (!Number.isInteger(value)) return 'floats are not allowed in canonical JSON';
  if (value > MAX_SAFE_INTEGER || value < -MAX_SAFE_INTEGER) return 'integer out of range +-(2^53-1)';
  return undefined;
}

function checkNumber(value: number, path: string): void {
  const problem = numberProblem(value);
  if (problem) throw new CanonicalJsonError(`${path}: ${problem}`);
}

// The encoder below runs on every hash and signature, so it carries no path bookkeeping; when it
// fails, this slower walk finds where, so the error names the offending member.
function describeProblem(value: unknown, path: string): string | undefined {
  switch (typeof value) {
    case 'string':
      return isWellFormed(value) ? undefined : `${path}: string contains a lone surrogate`;
    case 'boolean':
      return undefined;
    case 'number': {
      const problem = numberProblem(value);
      return problem && `${path}: ${problem}`;
    }
    case 'object': {
      if (value === null) return undefined;
      if (Array.isArray(value)) {
        for (let i = 0; i < value.length; i++) {
          if (value[i] === undefined) return `${path}[${i}]: undefined is not a JSON value`;
          const p = describeProblem(value[i], `${path}[${i}]`);
          if (p) return p;
        }
        return undefined;
      }
      if (!isPlainObjectProto(value)) return `${path}: not a plain JSON object`;
      for (const key of Object.keys(value)) {
        if (!isWellFormed(key)) return `${path}: key contains a lone surrogate`;
        const v = (value as Record<string, unknown>)[key];
        if (v === undefined) continue;
        const p = describeProblem(v, `${path}.${key}`);
        if (p) return p;
      }
      return undefined;
    }
    default:
      return `${path}: ${typeof value} is not a JSON value`;
  }
}

/** Throws CanonicalJsonError for anything Matrix canonical JSON cannot carry. */
export function assertCanonicalJsonValue(value: unknown, path = '$'): void {
  const problem = describeProblem(value, path);
  if (problem) throw new CanonicalJsonError(problem);
}

class Unencodable extends Error {}
const UNENCODABLE = new Unencodable();

// JSON.stringify on a string emits exactly the canonical escapes (\" \\ \b \f \n \r \t and
// lowercase \u00XX for other controls, everything else literal), matching Python's
// json.dumps(ensure_ascii=False) that the spec's reference uses. Lone surrogates are refused
// rather than escaped: Python cannot UTF-8-encode them, so no other server could hash them.
function encodeString(value: string): string {
  if (!isWellFormed(value)) throw UNENCODABLE;
  return JSON.stringify(value);
}

function encodeValue(value: unknown): string {
  switch (typeof value) {
    case 'string':
      return encodeString(value);
    case 'boolean':
      return value ? 'true' : 'false';
    case 'number':
      if (numberProblem(value)) throw UNENCODABLE;
      // String() prints every safe integer without exponent; -0 must come out as 0.
      return value === 0 ? '0' : String(value);
    case 'object': {
      if (value === null) return 'null';
      if (Array.isArray(value)) {
        if (value.length === 0) return '[]';
        let out = '[';
        for (let i = 0; i < value.length; i++) {
          if (i > 0) out += ',';
          const item: unknown = value[i];
          if (item === undefined) throw UNENCODABLE;
          out += encodeValue(item);
        }
        return `${out}]`;
      }
      if (!isPlainObjectProto(value)) throw UNENCODABLE;
      const obj = value as Record<string, unknown>;
      const keys = Object.keys(obj).sort(compareCodePoints);
      let out = '{';
      let first = true;
      for (let i = 0; i < keys.length; i++) {
        const key = keys[i] as string;
        const v = obj[key];
        // As JSON.stringify does: an absent optional field is the same as a missing one.
        if (v === undefined) continue;
        if (!first) out += ',';
        first = false;
        out += encodeString(key);
        out += ':';
        out += encodeValue(v);
      }
      return `${out}}`;
    }
    default:
      throw UNENCODABLE;
  }
}

/** Encodes a value as Matrix canonical JSON; throws CanonicalJsonError on disallowed values. */
export function encodeCanonicalJson(value: unknown): string {
  try {
    return encodeValue(value);
  } catch (err) {
    if (err !== UNENCODABLE) throw err;
    throw new CanonicalJsonError(describeProblem(value, '$') ?? '$: not encodable as canonical JSON');
  }
}

/** Canonical JSON as UTF-8 bytes: what gets hashed and signed. */
export function canonicalJsonBytes(value: unknown): Buffer {
  return Buffer.from(encodeCanonicalJson(value), 'utf8');
}

export interface ParseJsonOptions {
  /**
   * Refuse what room versions 6+ forbid (strictCanonicalJson): any number written with a
   * fraction or exponent (Python, and so Synapse, reads `1.0` and `1e3` as floats even though
   * JS reads them as integers) and integers outside +-(2^53-1).
   */
  strictNumbers?: boolean;
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COLON = 0x3a;

function isJsonWhitespace(c: number): boolean {
  return c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;
}

/**
 * Parses JSON like JSON.parse, but throws CanonicalJsonError on a duplicate key in any object
 * (JSON.parse silently keeps the last one, which lets two servers read different content out
 * of the same signed bytes). A `"__proto__"` key stays an ordinary own property, as JSON.parse
 * makes it. Syntax errors surface as JSON.parse's SyntaxError.
 *
 * How: JSON.parse does the real work; a scan over the raw text counts object keys (string
 * tokens followed by `:`), jumping from quote to quote with indexOf, and a walk over the result
 * counts own keys. Duplicates collapse on parse, so the counts differ exactly when one exists.
 */
export function parseJsonStrict(text: string, options: ParseJsonOptions = {}): unknown {
  const value: unknown = JSON.parse(text);
  const strict = options.strictNumbers === true;
  // Fast exit for scalars and for documents without any key.
  if (typeof value !== 'object' || value === null) {
    if (strict && typeof value === 'number') checkStrictNumbers(text, 0, text.length, value);
    return value;
  }
  const rawKeys = scanText(text, strict);
  const parsedKeys = countKeys(value, strict);
  if (rawKeys !== parsedKeys) throw new CanonicalJsonError('duplicate key in JSON object');
  return value;
}

/** Counts keys in valid JSON text; in strict mode also refuses fraction/exponent numbers. */
function scanText(text: string, strict: boolean): number {
  let keys = 0;
  let pos = 0;
  const len = text.length;
  while (pos < len) {
    const open = text.indexOf('"', pos);
    const segmentEnd = open === -1 ? len : open;
    if (strict) checkSegmentForFloats(text, pos, segmentEnd);
    if (open === -1) break;
    // Find the closing quote: one preceded by an even number of backslashes.
    let close = open;
    for (;;) {
      close = text.indexOf('"', close + 1);
      let backslashes = 0;
      for (let i = close - 1; text.charCodeAt(i) === BACKSLASH; i--) backslashes++;
      if ((backslashes & 1) === 0) break;
    }
    pos = close + 1;
    while (pos < len && isJsonWhitespace(text.charCodeAt(pos))) pos++;
    if (text.charCodeAt(pos) === COLON) keys++;
  }
  return keys;
}

// Outside strings the only letters are those of true/false/null, so a '.', an 'E', or an 'e'
// right after a digit can only belong to a number with a fraction or exponent.
function checkSegmentForFloats(text: string, from: number, to: number): void {
  for (let i = from; i < to; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x2e || c === 0x45 || (c === 0x65 && i > from && isDigit(text.charCodeAt(i - 1)))) {
      throw new CanonicalJsonError('floats are not allowed in canonical JSON');
    }
  }
}

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}

function checkStrictNumbers(text: string, from: number, to: number, value: number): void {
  checkSegmentForFloats(text, from, to);
  checkNumber(value, '$');
}

// Iterative so that hostile nesting depth cannot overflow the stack after JSON.parse accepted it.
function countKeys(root: object, strict: boolean): number {
  let keys = 0;
  const stack: unknown[] = [root];
  while (stack.length > 0) {
    const v = stack.pop();
    if (typeof v === 'number') {
      if (strict) checkNumber(v, '$');
      continue;
    }
    if (typeof v !== 'object' || v === null) continue;
    if (Array.isArray(v)) {
      for (let i = 0; i < v.length; i++) {
        const item: unknown = v[i];
        if (typeof item === 'object' ? item !== null : strict && typeof item === 'number') stack.push(item);
      }
      continue;
    }
    const obj = v as Record<string, unknown>;
    // Object.keys, not for-in: an enumerable property planted on Object.prototype must not count.
    const own = Object.keys(obj);
    keys += own.length;
    for (let i = 0; i < own.length; i++) {
      const item = obj[own[i] as string];
      if (typeof item === 'object' ? item !== null : strict && typeof item === 'number') stack.push(item);
    }
  }
  return keys;
}
