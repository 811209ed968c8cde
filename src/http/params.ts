// Reading path and query parameters the same way in every router.
import type { Request } from 'express';
import { MatrixError } from './errors.js';

export function pathParam(req: Request, name: string): string {
  const v = req.params[name];
  return typeof v === 'string' ? v : '';
}

/** A query parameter given at most once; a repeated one is refused rather than guessed at. */
export function queryParam(req: Request, name: string): string | undefined {
  const v = req.query[name];
  if (v === undefined) return undefined;
  if (typeof v !== 'string') throw new MatrixError('M_INVALID_PARAM', `'${name}' must be given once`);
  return v;
}

/** The named string query parameters that are present. */
export function queryParams<K extends string>(req: Request, names: readonly K[]): Partial<Record<K, string>> {
  const out: Partial<Record<K, string>> = {};
  for (const n of names) {
    const v = queryParam(req, n);
    if (v !== undefined) out[n] = v;
  }
  return out;
}

/** The `roomId` path parameter, which must at least look like a room id. */
export function roomIdParam(req: Request): string {
  const roomId = pathParam(req, 'roomId');
  if (!roomId.startsWith('!') || Buffer.byteLength(roomId) > 255) {
    throw new MatrixError('M_INVALID_PARAM', `${JSON.stringify(roomId)} is not a room id`);
  }
  return roomId;
}
