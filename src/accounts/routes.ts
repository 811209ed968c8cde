// Client API endpoints of accounts: register, login, logout, refresh, whoami, password,
// deactivate, devices, profiles.
import type { Request } from 'express';
import { MatrixError, forbidden, invalidParam } from '../http/errors.js';
import type { RouteTable } from '../http/routes.js';
import { requester } from '../http/types.js';
import { compileBody } from '../http/validate.js';
import type { AccountService, LoginDevice } from './service.js';
import type { UiaRequest } from './uia.js';

const str = { type: 'string' } as const;
const bool = { type: 'boolean' } as const;
const authDict = { type: 'object' } as const;

const registerBody = compileBody<{
  username?: string;
  password?: string;
  device_id?: string;
  initial_device_display_name?: string;
  inhibit_login?: boolean;
  refresh_token?: boolean;
  auth?: Record<string, unknown>;
}>({
  type: 'object',
  properties: {
    username: str,
    password: { type: 'string', maxLength: 512 },
    device_id: { type: 'string', minLength: 1, maxLength: 255 },
    initial_device_display_name: { type: 'string', maxLength: 512 },
    inhibit_login: bool,
    refresh_token: bool,
    auth: authDict,
  },
});

const loginBody = compileBody<{
  type: string;
  identifier?: Record<string, unknown>;
  user?: string;
  password?: string;
  device_id?: string;
  initial_device_display_name?: string;
  refresh_token?: boolean;
}>(
  {
    type: 'object',
    required: ['type'],
    properties: {
      type: str,
      identifier: { type: 'object' },
      user: str,
      password: str,
      device_id: { type: 'string', minLength: 1, maxLength: 255 },
      initial_device_display_name: { type: 'string', maxLength: 512 },
      refresh_token: bool,
    },
  },
  { missingErrcode: 'M_MISSING_PARAM' },
);

const refreshBody = compileBody<{ refresh_token: string }>(
  { type: 'object', required: ['refresh_token'], properties: { refresh_token: str } },
  { missingErrcode: 'M_MISSING_PARAM' },
);
const passwordBody = compileBody<{ new_password: string; logout_devices?: boolean; auth?: Record<string, unknown> }>(
  {
    type: 'object',
    required: ['new_password'],
    properties: { new_password: { type: 'string', minLength: 1, maxLength: 512 }, logout_devices: bool, auth: authDict },
  },
  { missingErrcode: 'M_MISSING_PARAM' },
);
const uiaOnlyBody = compileBody<{ auth?: Record<string, unknown> }>({ type: 'object', properties: { auth: authDict } });
const deleteDevicesBody = compileBody<{ devices: string[]; auth?: Record<string, unknown> }>(
  { type: 'object', required: ['devices'], properties: { devices: { type: 'array', items: str, maxItems: 1000 }, auth: authDict } },
  { missingErrcode: 'M_MISSING_PARAM' },
);
const deviceUpdateBody = compileBody<{ display_name?: string | null }>({
  type: 'object',
  properties: { display_name: { type: ['string', 'null'], maxLength: 512 } },
});
// The spec: a PUT without its key is 400 M_MISSING_PARAM (not a silent clear). null clears.
const displaynameBody = compileBody<{ displayname: string | null }>(
  { type: 'object', required: ['displayname'], properties: { displayname: { type: ['string', 'null'] } } },
  { missingErrcode: 'M_MISSING_PARAM' },
);
const avatarBody = compileBody<{ avatar_url: string | null }>(
  { type: 'object', required: ['avatar_url'], properties: { avatar_url: { type: ['string', 'null'] } } },
  { missingErrcode: 'M_MISSING_PARAM' },
);

/** The operation a UIA session is bound to: method and path, r0 read as v3. */
export function uiaRequest(req: Request): UiaRequest {
  const uri = req.path.replace('/_matrix/client/r0/', '/_matrix/client/v3/');
  return {
    method: req.method,
    // Bound to the caller too (as Synapse checks): a session another user completed (the
    // operation then failing) must not authorise the same operation on someone else's account.
    uri: req.requester ? `${uri} ${req.requester.userId}` : uri,
    body: (req.body ?? {}) as Record<string, unknown>,
  };
}

function loginDevice(body: { device_id?: string; initial_device_display_name?: string; refresh_token?: boolean }): LoginDevice {
  return {
    ...(body.device_id !== undefined ? { deviceId: body.device_id } : {}),
    ...(body.initial_device_display_name !== undefined ? { displayName: body.initial_device_display_name } : {}),
    refreshToken: body.refresh_token === true,
  };
}

export function registerAccountRoutes(routes: RouteTable, accounts: AccountService): void {
  routes.client('/register', {
    POST: {
      auth: 'none',
      rateLimit: 'registration',
      body: registerBody,
      handler: async (req) => {
        const kind = req.query['kind'] ?? 'user';
        if (kind !== 'user' && kind !== 'guest') throw invalidParam("kind must be 'user' or 'guest'");
        const body = req.body as ReturnType<typeof registerBody>;
        return accounts.register(uiaRequest(req), {
          kind,
          ...(body.username !== undefined ? { username: body.username } : {}),
          ...(body.password !== undefined ? { password: body.password } : {}),
          inhibitLogin: body.inhibit_login === true,
          device: loginDevice(body),
        });
      },
    },
  });

  routes.client('/register/available', {
    GET: {
      auth: 'none',
      rateLimit: 'registration',
      handler: async (req) => {
        const username = req.query['username'];
        if (typeof username !== 'string') throw new MatrixError('M_MISSING_PARAM', 'Missing username');
        // As Synapse: no probing of user names on a server that registers nobody.
        if (!accounts.registrationEnabled) throw forbidden('Registration has been disabled');
        await accounts.checkUsernameAvailable(username);
        return { available: true };
      },
    },
  });

  routes.clientV1('/register/m.login.registration_token/validity', {
    GET: {
      auth: 'none',
      rateLimit: 'registration',
      handler: async (req) => {
        const token = req.query['token'];
        // The spec: a server that does not permit registration considers every token invalid (403).
        if (!accounts.registrationEnabled) throw forbidden('Registration has been disabled');
        if (typeof token !== 'string') throw new MatrixError('M_MISSING_PARAM', 'Missing token');
        if (!/^[A-Za-z0-9._~-]{1,64}$/.test(token)) throw invalidParam('Invalid token');
        return { valid: await accounts.registrationTokenValid(token) };
      },
    },
  });

  routes.client('/login', {
    GET: { auth: 'none', handler: () => ({ flows: [{ type: 'm.login.password' }] }) },
    POST: {
      auth: 'none',
      rateLimit: 'login',
      body: loginBody,
      handler: async (req) => {
        const body = req.body as ReturnType<typeof loginBody>;
        if (body.type !== 'm.login.password') throw new MatrixError('M_UNKNOWN', `Unknown login type ${body.type}`, { status: 400 });
        return accounts.loginWithPassword(req.body as Record<string, unknown>, loginDevice(body));
      },
    },
  });

  routes.client('/refresh', {
    POST: {
      auth: 'none',
      rateLimit: 'login',
      body: refreshBody,
      handler: (req) => accounts.refresh((req.body as { refresh_token: string }).refresh_token),
    },
  });

  routes.client('/logout', {
    POST: { guests: true, handler: async (req) => accounts.logout(requester(req)).then(() => ({})) },
  });
  routes.client('/logout/all', {
    POST: { guests: true, handler: async (req) => accounts.logoutAll(requester(req).userId).then(() => ({})) },
  });

  routes.client('/account/whoami', {
    GET: {
      guests: true,
      handler: (req) => {
        const r = requester(req);
        return { user_id: r.userId, device_id: r.deviceId, is_guest: r.isGuest };
      },
    },
  });

  routes.client('/account/password', {
    POST: {
      body: passwordBody,
      handler: async (req) => {
        const body = req.body as ReturnType<typeof passwordBody>;
        await accounts.changePassword(requester(req), uiaRequest(req), body.new_password, body.logout_devices ?? true);
        return {};
      },
    },
  });

  routes.client('/account/deactivate', {
    POST: {
      body: compileBody({ type: 'object', properties: { auth: authDict, erase: bool, id_server: str } }),
      handler: async (req) => {
        await accounts.deactivate(requester(req), uiaRequest(req));
        return { id_server_unbind_result: 'no-support' };
      },
    },
  });

  routes.client('/devices', {
    GET: {
      handler: async (req) => ({ devices: (await accounts.listDevices(requester(req).userId)).map(deviceJson) }),
    },
  });
  routes.client('/devices/:deviceId', {
    GET: { handler: async (req) => deviceJson(await accounts.getDevice(requester(req).userId, String(req.params['deviceId']))) },
    PUT: {
      body: deviceUpdateBody,
      handler: async (req) => {
        const body = req.body as ReturnType<typeof deviceUpdateBody>;
        const userId = requester(req).userId;
        const deviceId = String(req.params['deviceId']);
        // The spec: without display_name the name is unchanged (but the device must exist).
        if (body.display_name === undefined) await accounts.getDevice(userId, deviceId);
        else await accounts.renameDevice(userId, deviceId, body.display_name);
        return {};
      },
    },
    DELETE: {
      body: uiaOnlyBody,
      handler: async (req) => {
        const r = requester(req);
        const deviceId = String(req.params['deviceId']);
        await accounts.getDevice(r.userId, deviceId);
        await accounts.deleteDevicesWithAuth(r, uiaRequest(req), [deviceId]);
        return {};
      },
    },
  });
  routes.client('/delete_devices', {
    POST: {
      body: deleteDevicesBody,
      handler: async (req) => {
        const body = req.body as ReturnType<typeof deleteDevicesBody>;
        await accounts.deleteDevicesWithAuth(requester(req), uiaRequest(req), body.devices);
        return {};
      },
    },
  });

  routes.client('/profile/:userId', {
    GET: { auth: 'optional', guests: true, handler: (req) => accounts.getProfile(String(req.params['userId'])) },
  });
  routes.client('/profile/:userId/displayname', {
    GET: {
      auth: 'optional',
      guests: true,
      handler: async (req) => {
        const p = await accounts.getProfile(String(req.params['userId']));
        return p.displayname !== undefined ? { displayname: p.displayname } : {};
      },
    },
    PUT: {
      guests: true,
      body: displaynameBody,
      handler: async (req) => {
        const value = (req.body as ReturnType<typeof displaynameBody>).displayname ?? null;
        await accounts.setProfileField(requester(req), String(req.params['userId']), 'displayname', value);
        return {};
      },
    },
  });
  routes.client('/profile/:userId/avatar_url', {
    GET: {
      auth: 'optional',
      guests: true,
      handler: async (req) => {
        const p = await accounts.getProfile(String(req.params['userId']));
        return p.avatar_url !== undefined ? { avatar_url: p.avatar_url } : {};
      },
    },
    PUT: {
      guests: true,
      body: avatarBody,
      handler: async (req) => {
        const value = (req.body as ReturnType<typeof avatarBody>).avatar_url ?? null;
        await accounts.setProfileField(requester(req), String(req.params['userId']), 'avatar_url', value);
        return {};
      },
    },
  });
}

function deviceJson(d: { device_id: string; display_name: string | null; last_seen_ts: number | null; last_seen_ip: string | null }) {
  return {
    device_id: d.device_id,
    ...(d.display_name !== null ? { display_name: d.display_name } : {}),
    ...(d.last_seen_ts !== null ? { last_seen_ts: d.last_seen_ts } : {}),
    ...(d.last_seen_ip !== null ? { last_seen_ip: d.last_seen_ip } : {}),
  };
}
