// Server-admin helpers for spec tests: shared-secret registration computed exactly as Synapse's
// synapse/_scripts/register_new_matrix_user.py does, so the tests double as a compatibility check.
import { createHmac } from 'node:crypto';
import { TestClient } from './client.js';

export const TEST_SHARED_SECRET = 'test-shared-secret';

/** HMAC-SHA1 over nonce NUL username NUL password NUL ("admin" | "notadmin") [NUL user_type]. */
export function sharedSecretMac(secret: string, nonce: string, username: string, password: string, admin: boolean, userType?: string): string {
  const mac = createHmac('sha1', Buffer.from(secret, 'utf8'));
  mac.update(Buffer.from(nonce, 'utf8'));
  mac.update(Buffer.from([0]));
  mac.update(Buffer.from(username, 'utf8'));
  mac.update(Buffer.from([0]));
  mac.update(Buffer.from(password, 'utf8'));
  mac.update(Buffer.from([0]));
  mac.update(admin ? 'admin' : 'notadmin');
  if (userType) {
    mac.update(Buffer.from([0]));
    mac.update(Buffer.from(userType, 'utf8'));
  }
  return mac.digest('hex');
}

/** Registers (and logs in) a user through /_synapse/admin/v1/register. */
export async function registerWithSharedSecret(
  baseUrl: string,
  username: string,
  password: string,
  admin: boolean,
  secret = TEST_SHARED_SECRET,
): Promise<TestClient> {
  const client = new TestClient(baseUrl);
  const nonce = (await client.get('/_synapse/admin/v1/register')).body.nonce as string;
  const r = await client.post('/_synapse/admin/v1/register', {
    nonce,
    username,
    password,
    admin,
    mac: sharedSecretMac(secret, nonce, username, password, admin),
  });
  if (r.status !== 200) throw new Error(`shared-secret registration of ${username} failed: ${r.status} ${r.text}`);
  client.token = r.body.access_token;
  client.userId = r.body.user_id;
  client.deviceId = r.body.device_id;
  client.password = password;
  return client;
}
