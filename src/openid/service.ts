// OpenID (spec: client-server API "OpenID", server-server API "OpenID"): a client asks for a
// short-lived token it hands to a third party (an integration manager, a widget, Element Call's
// SFU auth service), which asks this server whose token it is. The token proves nothing else:
// it is not an access token.
import type { Database } from '../db/pool.js';
import { MatrixError, forbidden } from '../http/errors.js';
import type { Requester } from '../http/types.js';
import type { Logger } from '../logger.js';
import { hashToken, randomString } from '../accounts/secrets.js';
import * as store from './store.js';

/** Synapse's lifetime: one hour. */
export const OPENID_TOKEN_LIFETIME_MS = 3600 * 1000;

export class OpenIdService {
  constructor(
    private readonly db: Database,
    private readonly serverName: string,
    private readonly log: Logger,
  ) {}

  async requestToken(requester: Requester, userId: string): Promise<{ access_token: string; token_type: 'Bearer'; matrix_server_name: string; expires_in: number }> {
    if (userId !== requester.userId) throw forbidden('Cannot request an OpenID token for another user');
    const token = randomString(24);
    const now = Date.now();
    await store.insertToken(this.db, hashToken(token), userId, now + OPENID_TOKEN_LIFETIME_MS);
    store.pruneExpired(this.db, now).catch((err) => this.log.warn({ err }, 'could not prune OpenID tokens'));
    return { access_token: token, token_type: 'Bearer', matrix_server_name: this.serverName, expires_in: OPENID_TOKEN_LIFETIME_MS / 1000 };
  }

  /** GET /_matrix/federation/v1/openid/userinfo */
  async userInfo(token: string | undefined): Promise<{ sub: string }> {
    if (!token) throw new MatrixError('M_MISSING_TOKEN', 'Missing access_token');
    const userId = await store.findUser(this.db, hashToken(token), Date.now());
    if (!userId) throw new MatrixError('M_UNKNOWN_TOKEN', 'Access token unknown or expired');
    return { sub: userId };
  }

  readonly onDeactivated = async (userId: string): Promise<void> => {
    await store.deleteTokensOfUser(this.db, userId);
  };
}
