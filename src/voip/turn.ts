// TURN credentials in coturn's `use-auth-secret` scheme (the TURN REST API draft, as Synapse
// implements it): the username is `<expiry unix seconds>:<user id>`, the password the standard
// base64 of HMAC-SHA1(secret, username). coturn recomputes the HMAC with its
// `static-auth-secret` and refuses the username once the expiry has passed.
import { createHmac } from 'node:crypto';
import type { PratConfig } from '../config/schema.js';
import { forbidden } from '../http/errors.js';
import type { Requester } from '../http/types.js';

export interface TurnCredentials {
  username: string;
  password: string;
  uris: string[];
  ttl: number;
}

export function turnCredentials(secret: string, userId: string, lifetimeSeconds: number, nowMs: number): { username: string; password: string } {
  const expiry = Math.floor(nowMs / 1000) + lifetimeSeconds;
  const username = `${expiry}:${userId}`;
  // Padded standard base64: coturn compares against its own base64 of the HMAC.
  const password = createHmac('sha1', secret).update(username).digest('base64');
  return { username, password };
}

/**
 * GET /voip/turnServer. `{}` when TURN is not configured: the spec's schema has no answer for
 * that case; `{}` is Synapse's, and matrix-js-sdk (Element) reads it as "call without TURN".
 */
export function turnServerResponse(turn: PratConfig['turn'], requester: Requester, nowMs = Date.now()): TurnCredentials | Record<string, never> {
  if (turn.uris.length === 0 || !turn.shared_secret) return {};
  if (requester.isGuest && !turn.allow_guests) throw forbidden('Guest users may not use the TURN server');
  return { ...turnCredentials(turn.shared_secret, requester.userId, turn.user_lifetime_seconds, nowMs), uris: [...turn.uris], ttl: turn.user_lifetime_seconds };
}
