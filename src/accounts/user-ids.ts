// Registration policy for new user ids, on top of the spec's user id grammar.
import { MatrixError } from '../http/errors.js';

const NEW_LOCALPART = /^[a-z0-9._=\-/+]+$/;

export function parseUserId(userId: string): { localpart: string; serverName: string } | undefined {
  if (!userId.startsWith('@') || userId.length > 255) return undefined;
  const colon = userId.indexOf(':');
  if (colon < 2) return undefined;
  const serverName = userId.slice(colon + 1);
  if (serverName.length === 0) return undefined;
  return { localpart: userId.slice(1, colon), serverName };
}

/** The spec's grammar for new localparts plus Synapse's reservations. */
export function checkNewLocalpart(localpart: string, serverName: string): void {
  if (localpart.length === 0) throw new MatrixError('M_INVALID_USERNAME', 'User ID cannot be empty');
  if (!NEW_LOCALPART.test(localpart)) {
    throw new MatrixError('M_INVALID_USERNAME', "User ID can only contain characters a-z, 0-9, or '=_-./+'");
  }
  if (localpart.startsWith('_')) throw new MatrixError('M_INVALID_USERNAME', 'User ID may not begin with _');
  if (/^\d+$/.test(localpart)) throw new MatrixError('M_INVALID_USERNAME', 'Numeric user IDs are reserved for guest users.');
  if (`@${localpart}:${serverName}`.length > 255) throw new MatrixError('M_INVALID_USERNAME', 'User ID may not be longer than 255 characters');
}
