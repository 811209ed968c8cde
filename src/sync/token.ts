// The sync token: one position per stream, opaque to clients. Format: parts joined by '_', each
// a stream key (letters) followed by its decimal position, e.g. `e42_r7_t3_a9_d0_l5_p2`.
// Parsing is tolerant: a part with a key this version does not know is skipped (a newer process
// on the same database may add streams), a missing part means position 0 (from the start).
// Positions are plain numbers: every stream position is a BIGINT sequence value below 2^53.
import { MatrixError } from '../http/errors.js';

/** The streams a token carries. Order here is the order parts are written. */
export const STREAM_KEYS = {
  /** Room events: the rooms schema's global stream_ordering. */
  events: 'e',
  receipts: 'r',
  typing: 't',
  accountData: 'a',
  toDevice: 'd',
  deviceLists: 'l',
  presence: 'p',
} as const;

export type StreamName = keyof typeof STREAM_KEYS;
export const STREAM_NAMES = Object.keys(STREAM_KEYS) as StreamName[];

export type SyncToken = Record<StreamName, number>;

const NAME_BY_KEY = new Map<string, StreamName>(STREAM_NAMES.map((n) => [STREAM_KEYS[n], n]));
const PART = /^([a-z]+)(\d{1,16})$/;

export function emptyToken(): SyncToken {
  return Object.fromEntries(STREAM_NAMES.map((n) => [n, 0])) as SyncToken;
}

export function formatSyncToken(token: SyncToken): string {
  return STREAM_NAMES.map((n) => `${STREAM_KEYS[n]}${Math.max(0, Math.trunc(token[n]))}`).join('_');
}

/** Parses a token from `since`; 400 M_INVALID_PARAM for something that is not a token at all. */
export function parseSyncToken(text: string): SyncToken {
  const token = emptyToken();
  if (text.length === 0 || text.length > 512) throw new MatrixError('M_INVALID_PARAM', 'Invalid sync token');
  let known = 0;
  for (const part of text.split('_')) {
    const m = PART.exec(part);
    if (!m) throw new MatrixError('M_INVALID_PARAM', 'Invalid sync token');
    const name = NAME_BY_KEY.get(m[1]!);
    if (name === undefined) continue;
    const value = Number(m[2]);
    if (!Number.isSafeInteger(value)) throw new MatrixError('M_INVALID_PARAM', 'Invalid sync token');
    token[name] = value;
    known++;
  }
  if (known === 0) throw new MatrixError('M_INVALID_PARAM', 'Invalid sync token');
  return token;
}

/** The later of two tokens, stream by stream. */
export function maxToken(a: SyncToken, b: SyncToken): SyncToken {
  const out = emptyToken();
  for (const n of STREAM_NAMES) out[n] = Math.max(a[n], b[n]);
  return out;
}
