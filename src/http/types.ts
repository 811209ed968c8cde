import type { Request } from 'express';

/** Who is calling, set by the access-token middleware. */
export interface Requester {
  userId: string;
  deviceId: string;
  isGuest: boolean;
  isAdmin: boolean;
  /** The access token's row id: logout revokes exactly this one. */
  tokenId: number;
}

declare module 'express-serve-static-core' {
  interface Request {
    id: string;
    requester?: Requester;
    /** The raw body bytes (JSON routes parse them; media routes stream instead). */
    rawBody?: Buffer;
  }
}

export function requester(req: Request): Requester {
  if (!req.requester) throw new Error('route declared without auth used requester()');
  return req.requester;
}
