// Accounts: registration, login, tokens, devices, passwords, deactivation and profiles.
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { PratConfig } from '../config/schema.js';
import type { Database, Queryable } from '../db/pool.js';
import { MatrixError, forbidden, notFound } from '../http/errors.js';
import type { Requester } from '../http/types.js';
import type { Logger } from '../logger.js';
import * as store from './store.js';
import { TokenCache } from './token-cache.js';
import {
  hashPassword,
  hashToken,
  newAccessToken,
  newDeviceId,
  newRefreshToken,
  randomString,
  verifyPassword,
} from './secrets.js';
import type { StageChecker, UiaRequest, UiaSession, UserInteractiveAuth } from './uia.js';
import { checkNewLocalpart, parseUserId } from './user-ids.js';

/** Lifetime of an access token issued with a refresh token (Synapse's default: 5 minutes). */
export const REFRESHABLE_TOKEN_LIFETIME_MS = 5 * 60 * 1000;
const NONCE_LIFETIME_MS = 60 * 1000;
const DEVICE_TOUCH_INTERVAL_MS = 60 * 1000;
export const MAX_DISPLAYNAME_LENGTH = 256;
export const MAX_AVATAR_URL_LENGTH = 1000;

export interface Session {
  user_id: string;
  device_id: string;
  access_token: string;
  refresh_token?: string;
  expires_in_ms?: number;
}

export interface LoginDevice {
  deviceId?: string;
  displayName?: string;
  refreshToken?: boolean;
}

/** Called after a profile change, so rooms can update member events. */
export type ProfileListener = (userId: string, profile: { displayname: string | null; avatar_url: string | null }) => Promise<void>;
/** Called after devices are deleted or an account is deactivated (keys, rooms react). */
export type DevicesDeletedListener = (userId: string, deviceIds: string[]) => Promise<void>;

export class AccountService {
  private readonly lastTouch = new Map<number, number>();
  readonly profileListeners: ProfileListener[] = [];
  readonly devicesDeletedListeners: DevicesDeletedListener[] = [];
  /** Called after a device's display name changed (keys/query shows it: a device-list change). */
  readonly deviceRenamedListeners: ((userId: string, deviceId: string) => Promise<void>)[] = [];
  readonly deactivationListeners: ((userId: string) => Promise<void>)[] = [];
  /** Tokens seen recently; `authChanged` hears the revocations of other processes. */
  private readonly tokenCache = new TokenCache();

  constructor(
    private readonly db: Database,
    private readonly config: PratConfig,
    private readonly uia: UserInteractiveAuth,
    private readonly log: Logger,
  ) {}

  get serverName(): string {
    return this.config.server_name;
  }

  /** A user's tokens or standing changed in the database (the prat_auth announcement). */
  authChanged(userId: string): void {
    this.tokenCache.invalidateUser(userId);
  }

  get registrationEnabled(): boolean {
    return this.config.registration.enabled;
  }

  get sharedSecretRegistrationEnabled(): boolean {
    return this.config.registration.shared_secret !== undefined;
  }

  // ---- tokens ---------------------------------------------------------------------------

  /** Resolves an access token to its user and device; 401 M_UNKNOWN_TOKEN otherwise. */
  async authenticate(token: string, client: { ip?: string; userAgent?: string } = {}): Promise<Requester> {
    // Keyed by the token itself: hashing it costs more than the rest of a cache hit.
    const row = await this.tokenCache.get(token, () => store.findAccessToken(this.db, hashToken(token)));
    if (!row || row.deactivated) throw new MatrixError('M_UNKNOWN_TOKEN', 'Unknown access token', { extra: { soft_logout: false } });
    if (row.expires_ts !== null && row.expires_ts <= Date.now()) {
      // soft_logout tells the client to refresh (or log in again) without wiping its E2EE keys.
      throw new MatrixError('M_UNKNOWN_TOKEN', 'Access token has expired', { extra: { soft_logout: true } });
    }
    if (!row.used) {
      await store.markTokenUsed(this.db, row.id, row.refresh_token_id);
      row.used = true;
      // The refresh this token came from retired its predecessor's access tokens (cascade).
      if (row.refresh_token_id !== null) this.tokenCache.invalidateUser(row.user_id);
    }
    const now = Date.now();
    if ((this.lastTouch.get(row.id) ?? 0) < now - DEVICE_TOUCH_INTERVAL_MS) {
      this.lastTouch.set(row.id, now);
      if (this.lastTouch.size > 100_000) this.lastTouch.clear();
      // Awaited (once a minute per token) so a device list right after a request shows it seen.
      await store.touchDevice(this.db, row.user_id, row.device_id, client.ip ?? null, client.userAgent ?? null).catch((err) =>
        this.log.warn({ err }, 'could not record device last-seen'),
      );
    }
    return { userId: row.user_id, deviceId: row.device_id, isGuest: row.is_guest, isAdmin: row.is_admin, tokenId: row.id };
  }

  /** Creates (or reuses) a device and issues its tokens. */
  async createSession(db: Queryable, userId: string, device: LoginDevice): Promise<Session> {
    const deviceId = device.deviceId ?? newDeviceId();
    await store.upsertDevice(db, userId, deviceId, device.displayName ?? null);
    const accessToken = newAccessToken();
    const session: Session = { user_id: userId, device_id: deviceId, access_token: accessToken };
    let refreshTokenId: number | null = null;
    if (device.refreshToken) {
      const refreshToken = newRefreshToken();
      refreshTokenId = await store.insertRefreshToken(db, { hash: hashToken(refreshToken), userId, deviceId });
      session.refresh_token = refreshToken;
      session.expires_in_ms = REFRESHABLE_TOKEN_LIFETIME_MS;
    }
    await store.insertAccessToken(db, {
      hash: hashToken(accessToken),
      userId,
      deviceId,
      expiresTs: refreshTokenId !== null ? Date.now() + REFRESHABLE_TOKEN_LIFETIME_MS : null,
      refreshTokenId,
    });
    return session;
  }

  async refresh(refreshToken: string): Promise<{ access_token: string; refresh_token: string; expires_in_ms: number }> {
    return this.db.withTx('refresh_token', async (tx) => {
      const row = await store.findRefreshTokenForUpdate(tx, hashToken(refreshToken));
      // A refresh token is spent once the access token it was exchanged for has been used.
      if (!row || row.next_used) throw new MatrixError('M_UNKNOWN_TOKEN', 'Unknown refresh token', { extra: { soft_logout: false } });
      const next = newRefreshToken();
      const nextId = await store.insertRefreshToken(tx, { hash: hashToken(next), userId: row.user_id, deviceId: row.device_id });
      await store.setNextRefreshToken(tx, row.id, nextId);
      const access = newAccessToken();
      await store.insertAccessToken(tx, {
        hash: hashToken(access),
        userId: row.user_id,
        deviceId: row.device_id,
        expiresTs: Date.now() + REFRESHABLE_TOKEN_LIFETIME_MS,
        refreshTokenId: nextId,
      });
      return { access_token: access, refresh_token: next, expires_in_ms: REFRESHABLE_TOKEN_LIFETIME_MS };
    });
  }

  /** Logout ends the device, as Synapse does: its tokens, keys and to-device queue go with it. */
  async logout(requester: Requester): Promise<void> {
    await this.deleteDevices(requester.userId, [requester.deviceId]);
  }

  async logoutAll(userId: string): Promise<void> {
    const deleted = await this.db.withTx('logout_all', async (tx) => {
      const ids = await store.deleteDevicesExcept(tx, userId, null);
      await store.deleteAllTokens(tx, userId);
      return ids;
    });
    await this.notifyDevicesDeleted(userId, deleted);
  }

  // ---- registration ---------------------------------------------------------------------

  registrationFlows(): string[][] {
    return this.config.registration.require_token ? [['m.login.registration_token']] : [['m.login.dummy']];
  }

  /** Checks a wanted username; throws M_INVALID_USERNAME or M_USER_IN_USE. */
  async checkUsernameAvailable(username: string): Promise<string> {
    const localpart = username.toLowerCase();
    checkNewLocalpart(localpart, this.serverName);
    const userId = `@${localpart}:${this.serverName}`;
    if (await store.userExists(this.db, userId)) throw new MatrixError('M_USER_IN_USE', 'User ID already taken.');
    return userId;
  }

  async register(
    request: UiaRequest,
    params: {
      kind: 'user' | 'guest';
      username?: string;
      password?: string;
      inhibitLogin: boolean;
      device: LoginDevice;
    },
  ): Promise<Partial<Session> & { user_id: string }> {
    if (params.kind === 'guest') {
      if (!this.config.registration.allow_guests) throw forbidden('Guest access is disabled');
      const localpart = String(await store.nextGeneratedLocalpart(this.db));
      const userId = `@${localpart}:${this.serverName}`;
      return this.db.withTx('register_guest', async (tx) => {
        if (!(await store.insertUser(tx, { userId, passwordHash: null, isAdmin: false, isGuest: true, displayname: localpart }))) {
          throw new MatrixError('M_USER_IN_USE', 'User ID already taken.');
        }
        // The spec: for guests everything but initial_device_display_name is ignored and the
        // server picks the device. No refresh tokens either (Synapse ignores the ask for guests).
        return this.createSession(tx, userId, {
          ...(params.device.displayName !== undefined ? { displayName: params.device.displayName } : {}),
          refreshToken: false,
        });
      });
    }
    if (!this.config.registration.enabled) throw forbidden('Registration has been disabled');
    // Validate what can be validated before starting UIA, so a taken name fails fast.
    if (params.username !== undefined) await this.checkUsernameAvailable(params.username);
    const session = await this.uia.check(
      request,
      this.registrationFlows(),
      {
        'm.login.dummy': async () => ({ ok: true }),
        'm.login.registration_token': this.checkRegistrationTokenStage,
      },
      // The password is not kept in the session in the clear; its hash is, so that a client
      // which sent it only with the first request (as Synapse allows) still gets it set.
      async (s) => {
        if (params.password !== undefined) s.results['password_hash'] = await hashPassword(params.password);
      },
    );
    // Parameters come from the whole session: the first request's, overridden by later ones.
    const cd = session.clientdict;
    const username = typeof cd['username'] === 'string' ? cd['username'] : undefined;
    const passwordHash = typeof session.results['password_hash'] === 'string' ? session.results['password_hash'] : undefined;
    if (passwordHash === undefined) throw new MatrixError('M_MISSING_PARAM', 'Missing password.');
    const device: LoginDevice = {
      ...(typeof cd['device_id'] === 'string' ? { deviceId: cd['device_id'] } : {}),
      ...(typeof cd['initial_device_display_name'] === 'string' ? { displayName: cd['initial_device_display_name'] } : {}),
      refreshToken: cd['refresh_token'] === true,
    };
    const inhibitLogin = cd['inhibit_login'] === true;
    const userId = username !== undefined ? await this.checkUsernameAvailable(username) : `@${await store.nextGeneratedLocalpart(this.db)}:${this.serverName}`;
    const localpart = parseUserId(userId)!.localpart;
    const result = await this.db.withTx('register', async (tx) => {
      if (!(await store.insertUser(tx, { userId, passwordHash, isAdmin: false, isGuest: false, displayname: localpart }))) {
        throw new MatrixError('M_USER_IN_USE', 'User ID already taken.');
      }
      const token = session.results['m.login.registration_token'];
      if (typeof token === 'string') await store.adjustRegistrationTokenUse(tx, token, -1, 1);
      await this.uia.finish(session, tx);
      if (inhibitLogin) return { user_id: userId };
      return this.createSession(tx, userId, device);
    });
    this.log.info({ userId }, 'registered user');
    return result;
  }

  private readonly checkRegistrationTokenStage: StageChecker = async (auth, session) => {
    const token = auth['token'];
    if (typeof token !== 'string') return { ok: false, errcode: 'M_MISSING_PARAM', error: 'Missing registration token' };
    // Already passed in this session: counting the token pending again would leak a use.
    const claimed = session.results['m.login.registration_token'];
    if (typeof claimed === 'string') return { ok: true, result: claimed };
    return this.db.withTx('registration_token_stage', async (tx) => {
      const row = await store.getRegistrationToken(tx, token, true);
      if (!row || !registrationTokenUsable(row)) return { ok: false, errcode: 'M_UNAUTHORIZED', error: 'Invalid registration token' };
      // Counted as pending until the registration completes, so uses_allowed holds under races.
      await store.adjustRegistrationTokenUse(tx, token, 1, 0);
      return { ok: true, result: token };
    });
  };

  async registrationTokenValid(token: string): Promise<boolean> {
    const row = await store.getRegistrationToken(this.db, token);
    return row !== undefined && registrationTokenUsable(row);
  }

  async createRegistrationToken(token: string | undefined, usesAllowed: number | null, expiryTime: number | null): Promise<string> {
    // As Synapse: a token born expired is a mistake, not a wish.
    if (expiryTime !== null && expiryTime < Date.now()) throw new MatrixError('M_INVALID_PARAM', 'expiry_time must not be in the past');
    const value = token ?? randomString(12);
    if (!(await store.insertRegistrationToken(this.db, { token: value, usesAllowed, expiryTime }))) {
      throw new MatrixError('M_INVALID_PARAM', 'Registration token already exists');
    }
    return value;
  }

  /** Registers without UIA: the CLI and the shared-secret admin API. */
  async registerDirect(p: {
    localpart: string;
    password: string | null;
    admin: boolean;
    displayname?: string;
    login: boolean;
  }): Promise<Partial<Session> & { user_id: string }> {
    const localpart = p.localpart.toLowerCase();
    checkNewLocalpart(localpart, this.serverName);
    const userId = `@${localpart}:${this.serverName}`;
    const passwordHash = p.password ? await hashPassword(p.password) : null;
    return this.db.withTx('register_direct', async (tx) => {
      if (!(await store.insertUser(tx, { userId, passwordHash, isAdmin: p.admin, isGuest: false, displayname: p.displayname ?? localpart }))) {
        throw new MatrixError('M_USER_IN_USE', 'User ID already taken.');
      }
      return p.login ? this.createSession(tx, userId, {}) : { user_id: userId };
    });
  }

  async newRegistrationNonce(): Promise<string> {
    const nonce = randomString(24);
    await store.insertNonce(this.db, nonce);
    return nonce;
  }

  /** Synapse's shared-secret registration: HMAC-SHA1 over nonce, user, password, admin flag. */
  async registerWithSharedSecret(body: {
    nonce: string;
    username: string;
    password: string;
    admin?: boolean;
    user_type?: string | null;
    displayname?: string;
    mac: string;
  }): Promise<Session & { home_server: string }> {
    const secret = this.config.registration.shared_secret;
    if (!secret) throw new MatrixError('M_UNKNOWN', 'Shared secret registration is not enabled', { status: 400 });
    if (!(await store.consumeNonce(this.db, body.nonce, NONCE_LIFETIME_MS))) {
      throw new MatrixError('M_UNKNOWN', 'unrecognised nonce', { status: 400 });
    }
    const mac = createHmac('sha1', secret);
    mac.update(body.nonce).update('\x00').update(body.username).update('\x00').update(body.password).update('\x00');
    mac.update(body.admin ? 'admin' : 'notadmin');
    if (body.user_type) mac.update('\x00').update(body.user_type);
    const expected = mac.digest();
    const given = Buffer.from(body.mac, 'hex');
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) throw forbidden('HMAC incorrect');
    const result = await this.registerDirect({
      localpart: body.username,
      password: body.password,
      admin: body.admin ?? false,
      ...(body.displayname !== undefined ? { displayname: body.displayname } : {}),
      login: true,
    });
    return { ...(result as Session), home_server: this.serverName };
  }

  // ---- login ----------------------------------------------------------------------------

  /** Resolves the identifier of a login or UIA password stage to a local user id. */
  resolveIdentifier(body: Record<string, unknown>): string {
    const identifier = body['identifier'];
    let user: unknown;
    if (identifier !== undefined) {
      if (typeof identifier !== 'object' || identifier === null) throw new MatrixError('M_BAD_JSON', "'identifier' must be an object");
      const id = identifier as Record<string, unknown>;
      if (id['type'] !== 'm.id.user') throw new MatrixError('M_UNKNOWN', `Unsupported identifier type: ${String(id['type'])}`, { status: 400 });
      user = id['user'];
    } else {
      user = body['user'];
    }
    if (typeof user !== 'string' || user.length === 0) throw new MatrixError('M_MISSING_PARAM', 'Missing user identifier');
    if (user.startsWith('@')) {
      const parsed = parseUserId(user);
      if (!parsed) throw new MatrixError('M_INVALID_PARAM', 'Invalid user id');
      return `@${parsed.localpart.toLowerCase()}:${parsed.serverName}`;
    }
    return `@${user.toLowerCase()}:${this.serverName}`;
  }

  /** Checks a password; the same answer for an unknown user and a wrong password. */
  async checkPassword(userId: string, password: string): Promise<store.UserRow> {
    const user = await store.getUser(this.db, userId);
    if (!user || !user.password_hash || !(await verifyPassword(user.password_hash, password))) {
      throw forbidden('Invalid username or password');
    }
    if (user.deactivated) throw new MatrixError('M_USER_DEACTIVATED', 'This account has been deactivated');
    return user;
  }

  async loginWithPassword(body: Record<string, unknown>, device: LoginDevice): Promise<Session> {
    const userId = this.resolveIdentifier(body);
    const password = body['password'];
    if (typeof password !== 'string') throw new MatrixError('M_MISSING_PARAM', 'Missing password');
    const user = await this.checkPassword(userId, password);
    const session = await this.db.withTx('login', (tx) => this.createSession(tx, user.user_id, device));
    this.log.info({ userId: user.user_id, deviceId: session.device_id }, 'login');
    return session;
  }

  /** The m.login.password UIA stage for an operation on the requester's own account. */
  passwordStage(userId: string): StageChecker {
    return async (auth) => {
      const password = auth['password'];
      if (typeof password !== 'string') return { ok: false, errcode: 'M_MISSING_PARAM', error: 'Missing password' };
      let who: string;
      try {
        who = this.resolveIdentifier(auth);
      } catch (err) {
        return { ok: false, errcode: (err as MatrixError).errcode ?? 'M_BAD_JSON', error: (err as Error).message };
      }
      if (who !== userId) return { ok: false, errcode: 'M_FORBIDDEN', error: 'Authenticated user does not match the requester' };
      try {
        await this.checkPassword(userId, password);
      } catch {
        return { ok: false, errcode: 'M_FORBIDDEN', error: 'Invalid password' };
      }
      return { ok: true };
    };
  }

  /** UIA for operations on one's own account: a password, or nothing for passwordless users. */
  async requireOwnAuth(requester: Requester, request: UiaRequest): Promise<UiaSession> {
    const user = await store.getUser(this.db, requester.userId);
    const flows = user?.password_hash ? [['m.login.password']] : [['m.login.dummy']];
    return this.uia.check(request, flows, {
      'm.login.password': this.passwordStage(requester.userId),
      'm.login.dummy': async () => ({ ok: true }),
    });
  }

  async changePassword(requester: Requester, request: UiaRequest, newPassword: string, logoutDevices: boolean): Promise<void> {
    const session = await this.requireOwnAuth(requester, request);
    const hash = await hashPassword(newPassword);
    const deleted = await this.db.withTx('change_password', async (tx) => {
      await store.setPasswordHash(tx, requester.userId, hash);
      await this.uia.finish(session, tx);
      return logoutDevices ? store.deleteDevicesExcept(tx, requester.userId, requester.deviceId) : [];
    });
    await this.notifyDevicesDeleted(requester.userId, deleted);
  }

  async deactivate(requester: Requester, request: UiaRequest): Promise<void> {
    const session = await this.requireOwnAuth(requester, request);
    await this.deactivateUser(requester.userId, session);
  }

  /** Revokes every token and device; the user id stays taken forever. */
  async deactivateUser(userId: string, session?: UiaSession): Promise<void> {
    const deleted = await this.db.withTx('deactivate', async (tx) => {
      const ids = await store.deleteDevicesExcept(tx, userId, null);
      await store.deleteAllTokens(tx, userId);
      await store.markDeactivated(tx, userId);
      if (session) await this.uia.finish(session, tx);
      return ids;
    });
    this.tokenCache.invalidateUser(userId);
    await this.notifyDevicesDeleted(userId, deleted);
    for (const listener of this.deactivationListeners) await listener(userId);
    this.log.info({ userId }, 'deactivated user');
  }

  // ---- devices --------------------------------------------------------------------------

  listDevices(userId: string) {
    return store.listDevices(this.db, userId);
  }

  async getDevice(userId: string, deviceId: string) {
    const device = await store.getDevice(this.db, userId, deviceId);
    if (!device) throw notFound('Device not found');
    return device;
  }

  async renameDevice(userId: string, deviceId: string, displayName: string | null): Promise<void> {
    if (!(await store.setDeviceDisplayName(this.db, userId, deviceId, displayName))) throw notFound('Device not found');
    for (const listener of this.deviceRenamedListeners) await listener(userId, deviceId);
  }

  async deleteDevicesWithAuth(requester: Requester, request: UiaRequest, deviceIds: string[]): Promise<void> {
    const session = await this.requireOwnAuth(requester, request);
    await this.uia.finish(session);
    await this.deleteDevices(requester.userId, deviceIds);
  }

  async deleteDevices(userId: string, deviceIds: string[]): Promise<void> {
    const deleted = await store.deleteDevices(this.db, userId, deviceIds);
    await this.notifyDevicesDeleted(userId, deleted);
  }

  private async notifyDevicesDeleted(userId: string, deviceIds: string[]): Promise<void> {
    // Their tokens went with them (other processes hear it from the prat_auth trigger).
    this.tokenCache.invalidateUser(userId);
    if (deviceIds.length === 0) return;
    for (const listener of this.devicesDeletedListeners) await listener(userId, deviceIds);
  }

  // ---- profiles -------------------------------------------------------------------------

  async getProfile(userId: string): Promise<{ displayname?: string; avatar_url?: string }> {
    const user = await store.getUser(this.db, userId);
    if (!user || user.deactivated) throw notFound('Profile was not found');
    return {
      ...(user.displayname !== null ? { displayname: user.displayname } : {}),
      ...(user.avatar_url !== null ? { avatar_url: user.avatar_url } : {}),
    };
  }

  async setProfileField(requester: Requester, userId: string, field: 'displayname' | 'avatar_url', value: string | null): Promise<void> {
    if (!parseUserId(userId)) throw new MatrixError('M_INVALID_PARAM', 'Invalid user id');
    if (userId !== requester.userId && !requester.isAdmin) throw forbidden("Cannot set another user's profile");
    const user = await store.getUser(this.db, userId);
    if (!user || user.deactivated) throw notFound('Profile was not found');
    const max = field === 'displayname' ? MAX_DISPLAYNAME_LENGTH : MAX_AVATAR_URL_LENGTH;
    if (value !== null && value.length > max) throw new MatrixError('M_INVALID_PARAM', `${field} is too long (max ${max})`);
    if (field === 'avatar_url' && value !== null && value !== '' && !value.startsWith('mxc://')) {
      throw new MatrixError('M_INVALID_PARAM', 'avatar_url must be an mxc:// URI');
    }
    await store.setProfileField(this.db, userId, field, value === '' ? null : value);
    const updated = { ...user, [field]: value === '' ? null : value };
    for (const listener of this.profileListeners) {
      await listener(userId, { displayname: updated.displayname, avatar_url: updated.avatar_url });
    }
  }

  async isAdmin(userId: string): Promise<boolean> {
    return (await store.getUser(this.db, userId))?.is_admin ?? false;
  }
}

function registrationTokenUsable(row: store.RegistrationTokenRow): boolean {
  if (row.expiry_time !== null && row.expiry_time <= Date.now()) return false;
  if (row.uses_allowed !== null && row.pending + row.completed >= row.uses_allowed) return false;
  return true;
}
