// GET /_matrix/key/v2/server: the server's own published keys, signed by itself
// (server-server API, "Publishing Keys").
import { encodeBase64 } from '../core/base64.js';
import { signJson, type SigningKey } from '../core/signing.js';
import type { RouteTable } from '../http/routes.js';

/** How long other servers may cache our key (Synapse publishes a day ahead too). */
const KEY_VALIDITY_MS = 24 * 3600 * 1000;

export function registerKeyRoutes(routes: RouteTable, serverName: string, key: SigningKey): void {
  const handler = () =>
    signJson(
      {
        server_name: serverName,
        valid_until_ts: Date.now() + KEY_VALIDITY_MS,
        verify_keys: { [key.keyId]: { key: encodeBase64(key.publicKey) } },
        old_verify_keys: {},
      },
      serverName,
      key,
    );
  routes.add(['/_matrix/key/v2/server', '/_matrix/key/v2/server/:keyId'], { GET: { auth: 'none', handler } });
}
