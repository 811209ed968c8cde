// The Synapse-compatible admin API (so existing admin tools work).
import { MatrixError, forbidden } from '../http/errors.js';
import type { RouteTable } from '../http/routes.js';
import { requester } from '../http/types.js';
import { compileBody } from '../http/validate.js';
import type { AccountService } from '../accounts/service.js';
import { PRAT_VERSION } from '../version.js';

const sharedSecretRegisterBody = compileBody<{
  nonce: string;
  username: string;
  password: string;
  admin?: boolean;
  user_type?: string | null;
  displayname?: string;
  mac: string;
}>(
  {
    type: 'object',
    required: ['nonce', 'username', 'password', 'mac'],
    properties: {
      nonce: { type: 'string' },
      username: { type: 'string', minLength: 1 },
      password: { type: 'string', minLength: 1, maxLength: 512 },
      admin: { type: 'boolean' },
      user_type: { type: ['string', 'null'] },
      displayname: { type: 'string' },
      mac: { type: 'string', pattern: '^[0-9a-fA-F]+$' },
    },
  },
  { missingErrcode: 'M_MISSING_PARAM' },
);

/** Throws M_FORBIDDEN unless the caller is a server admin. */
export async function requireAdmin(accounts: AccountService, userId: string): Promise<void> {
  if (!(await accounts.isAdmin(userId))) throw forbidden('You are not a server admin');
}

export function registerAdminRoutes(routes: RouteTable, accounts: AccountService): void {
  routes.add('/_synapse/admin/v1/server_version', {
    GET: { auth: 'none', handler: () => ({ server_version: PRAT_VERSION }) },
  });
  routes.add('/_synapse/admin/v1/register', {
    GET: {
      auth: 'none',
      rateLimit: 'registration',
      handler: async () => {
        // Synapse answers 400 on both methods when no shared secret is configured.
        if (!accounts.sharedSecretRegistrationEnabled) throw new MatrixError('M_UNKNOWN', 'Shared secret registration is not enabled', { status: 400 });
        return { nonce: await accounts.newRegistrationNonce() };
      },
    },
    POST: {
      auth: 'none',
      rateLimit: 'registration',
      body: sharedSecretRegisterBody,
      handler: (req) => accounts.registerWithSharedSecret(req.body as ReturnType<typeof sharedSecretRegisterBody>),
    },
  });
  routes.add('/_synapse/admin/v1/registration_tokens/new', {
    POST: {
      body: compileBody<{ token?: string; uses_allowed?: number | null; expiry_time?: number | null }>({
        type: 'object',
        properties: {
          token: { type: 'string', pattern: '^[A-Za-z0-9._~-]{1,64}$' },
          uses_allowed: { type: ['integer', 'null'], minimum: 0 },
          expiry_time: { type: ['integer', 'null'], minimum: 0 },
        },
      }),
      handler: async (req) => {
        await requireAdmin(accounts, requester(req).userId);
        const b = req.body as { token?: string; uses_allowed?: number | null; expiry_time?: number | null };
        const token = await accounts.createRegistrationToken(b.token, b.uses_allowed ?? null, b.expiry_time ?? null);
        return { token, uses_allowed: b.uses_allowed ?? null, pending: 0, completed: 0, expiry_time: b.expiry_time ?? null };
      },
    },
  });
}
