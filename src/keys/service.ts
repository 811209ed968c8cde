// E2EE keys: device keys, one-time and fallback keys, key queries and claims, the device-list
// change log, and clean-up when devices go. Cross-signing (cross-signing.ts), backups
// (backup.ts) and to-device messages (to-device.ts) are their own services.
import type { Database, Queryable } from '../db/pool.js';
import { MatrixError } from '../http/errors.js';
import type { Requester } from '../http/types.js';
import type { Logger } from '../logger.js';
import { parseUserId } from '../accounts/user-ids.js';
import * as deviceKeys from './store/device-keys.js';
import * as crossSigning from './store/cross-signing.js';
import * as streams from './store/streams.js';
import * as toDevice from './store/to-device.js';
import { checkDeviceKeysShape, isObject, parseKeyMap, sameSignedContent, type Json, type ParsedKey } from './key-json.js';
import { deviceListPosition, emitStreamChange, type StreamHeads, type StreamListener } from './positions.js';

/**
 * What keys needs to know about rooms. Rooms are not built yet; until they are, nobody shares
 * a room with anyone (NO_ROOMS). The rooms side replaces it in the composition root.
 */
export interface RoomMembershipView {
  /** Users who share at least one joined room with `userId` (`userId` itself included). */
  usersSharingRooms(userId: string): Promise<string[]>;
  /**
   * Between two sync tokens: users who started sharing a room with `userId` (reported as
   * device-list changes) and users who no longer share any (device_lists.left).
   */
  membershipChanges(userId: string, fromToken: string, toToken: string | undefined): Promise<{ joined: string[]; left: string[] }>;
}

export const NO_ROOMS: RoomMembershipView = {
  usersSharingRooms: async (userId) => [userId],
  membershipChanges: async () => ({ joined: [], left: [] }),
};

/** A homeserver that could not be asked (no federation client yet, or unreachable). */
export interface RemoteKeys {
  query(serverName: string, deviceKeys: Record<string, string[]>): Promise<Json>;
  claim(serverName: string, oneTimeKeys: Record<string, Record<string, string>>): Promise<Json>;
}

export interface UploadBody {
  device_keys?: unknown;
  one_time_keys?: unknown;
  fallback_keys?: unknown;
}

export interface QueryResult {
  device_keys: Record<string, Record<string, Json>>;
  master_keys: Record<string, Json>;
  self_signing_keys: Record<string, Json>;
  user_signing_keys: Record<string, Json>;
  failures: Record<string, Json>;
}

/**
 * Listed even at 0 in /keys/upload and sync counts, as Synapse does: older clients treat a
 * missing entry as "unknown" rather than "none left" and do not top their keys up.
 */
const ALWAYS_COUNTED_ALGORITHM = 'signed_curve25519';

export class KeysService {
  readonly streamListeners: StreamListener[] = [];
  /**
   * Told after a commit that changed devices' key figures (one-time key counts, unused fallback
   * keys): sync's cache of them (other processes hear it from the database's announcement).
   */
  readonly keyFiguresListeners: ((devices: { userId: string; deviceId: string }[]) => void)[] = [];
  membership: RoomMembershipView = NO_ROOMS;
  remote: RemoteKeys | undefined;

  constructor(
    private readonly db: Database,
    private readonly serverName: string,
    private readonly log: Logger,
  ) {}

  // ---- upload ---------------------------------------------------------------------------

  async upload(requester: Requester, body: UploadBody): Promise<{ one_time_key_counts: Record<string, number> }> {
    const { userId, deviceId } = requester;
    let device: Json | undefined;
    if (body.device_keys !== undefined) {
      checkDeviceKeysShape(body.device_keys);
      device = body.device_keys;
      // Keys of another user or device would let one device publish identity keys for another.
      if (device['user_id'] !== userId) throw new MatrixError('M_BAD_JSON', "'device_keys.user_id' does not match the authenticated user");
      if (device['device_id'] !== deviceId) throw new MatrixError('M_BAD_JSON', "'device_keys.device_id' does not match the authenticated device");
    }
    const oneTime = body.one_time_keys !== undefined ? parseKeyMap('one_time_keys', body.one_time_keys) : [];
    const fallback = body.fallback_keys !== undefined ? parseKeyMap('fallback_keys', body.fallback_keys) : [];
    const fallbackAlgorithms = new Set<string>();
    for (const k of fallback) {
      if (fallbackAlgorithms.has(k.algorithm)) {
        throw new MatrixError('M_INVALID_PARAM', `Only one fallback key per algorithm may be uploaded (${k.algorithm})`);
      }
      fallbackAlgorithms.add(k.algorithm);
    }

    const changedAt = await this.db.withTx('keys_upload', async (tx) => {
      let position: number | undefined;
      if (device) position = await this.storeDeviceKeys(tx, userId, deviceId, device);
      await this.storeOneTimeKeys(tx, userId, deviceId, oneTime);
      for (const k of fallback) {
        const existing = await deviceKeys.getFallbackKey(tx, userId, deviceId, k.algorithm);
        // The same key again keeps its used flag: a retried upload must not revive a spent key.
        if (existing && existing.key_id === k.keyId && sameSignedContent(JSON.parse(existing.key_json), k.value)) continue;
        await deviceKeys.setFallbackKey(tx, userId, deviceId, k.algorithm, k.keyId, JSON.stringify(k.value));
      }
      return position;
    });
    if (changedAt !== undefined) this.emit('deviceLists', changedAt, [userId]);
    if (oneTime.length > 0 || fallback.length > 0) this.keyFiguresChanged([{ userId, deviceId }]);
    return { one_time_key_counts: await this.oneTimeKeyCounts(userId, deviceId) };
  }

  /** Stores new or changed device keys; returns the device-list position when they changed. */
  private async storeDeviceKeys(tx: Queryable, userId: string, deviceId: string, device: Json): Promise<number | undefined> {
    const storedText = await deviceKeys.getDeviceKeys(tx, userId, deviceId);
    if (storedText !== undefined) {
      const stored = JSON.parse(storedText) as Json;
      // Identity keys are what other users verified: a different key under an existing key id
      // is refused, so a leaked access token cannot swap a verified device's keys.
      const oldKeys = (stored['keys'] ?? {}) as Record<string, string>;
      const newKeys = device['keys'] as Record<string, string>;
      for (const [id, value] of Object.entries(newKeys)) {
        if (id in oldKeys && oldKeys[id] !== value) {
          throw new MatrixError('M_INVALID_PARAM', `Device key ${id} already exists with a different value; a new identity needs a new device`);
        }
      }
      if (sameSignedContent(stored, device)) {
        // Same keys; only the signatures may differ, and the latest upload's are kept as given.
        if (JSON.stringify(stored['signatures']) !== JSON.stringify(device['signatures'])) {
          await deviceKeys.setDeviceKeys(tx, userId, deviceId, JSON.stringify(device));
        }
        return undefined;
      }
      // The signed content changed: signatures others uploaded on the old content no longer hold.
      await crossSigning.deleteSignaturesOn(tx, userId, [deviceId]);
    }
    await deviceKeys.setDeviceKeys(tx, userId, deviceId, JSON.stringify(device));
    return streams.recordDeviceListChanges(tx, [{ userId }]);
  }

  private async storeOneTimeKeys(tx: Queryable, userId: string, deviceId: string, keys: ParsedKey[]): Promise<void> {
    if (keys.length === 0) return;
    const existing = await deviceKeys.getOneTimeKeys(tx, userId, deviceId, keys);
    const fresh: { algorithm: string; keyId: string; keyJson: string }[] = [];
    for (const k of keys) {
      const old = existing.get(`${k.algorithm}:${k.keyId}`);
      if (old === undefined) {
        fresh.push({ algorithm: k.algorithm, keyId: k.keyId, keyJson: JSON.stringify(k.value) });
      } else if (!sameSignedContent(JSON.parse(old), k.value)) {
        // A client that lost its keys and reuses ids would hand out keys nobody can decrypt to.
        throw new MatrixError('M_INVALID_PARAM', `One-time key ${k.algorithm}:${k.keyId} already exists with a different value`);
      }
    }
    await deviceKeys.insertOneTimeKeys(tx, userId, deviceId, fresh);
  }

  async oneTimeKeyCounts(userId: string, deviceId: string, db: Queryable = this.db): Promise<Record<string, number>> {
    return { [ALWAYS_COUNTED_ALGORITHM]: 0, ...(await deviceKeys.countOneTimeKeys(db, userId, deviceId)) };
  }

  /** Sync's device_one_time_keys_count and device_unused_fallback_key_types, in one query. */
  async syncKeyFigures(userId: string, deviceId: string, db: Queryable = this.db): Promise<{ counts: Record<string, number>; fallback: string[] }> {
    return syncKeyFiguresOf(await deviceKeys.keyFiguresForSync(db, userId, deviceId));
  }


  // ---- query ----------------------------------------------------------------------------

  async query(requester: Requester, wanted: Record<string, string[]>): Promise<QueryResult> {
    const result: QueryResult = { device_keys: {}, master_keys: {}, self_signing_keys: {}, user_signing_keys: {}, failures: {} };
    const allOf: string[] = [];
    const pairs: { userId: string; deviceId: string }[] = [];
    const remote = new Map<string, Record<string, string[]>>();
    for (const [userId, devices] of Object.entries(wanted)) {
      const parsed = parseUserId(userId);
      if (!parsed) throw new MatrixError('M_INVALID_PARAM', `Invalid user id: ${userId}`);
      if (parsed.serverName !== this.serverName) {
        const forServer = remote.get(parsed.serverName) ?? {};
        forServer[userId] = devices;
        remote.set(parsed.serverName, forServer);
        continue;
      }
      result.device_keys[userId] = {};
      if (devices.length === 0) allOf.push(userId);
      else for (const deviceId of new Set(devices)) pairs.push({ userId, deviceId });
    }

    const localUsers = Object.keys(result.device_keys);
    const [rows, csKeys] = await Promise.all([
      deviceKeys.queryDeviceKeys(this.db, allOf, pairs),
      crossSigning.getCrossSigningKeys(this.db, localUsers, ['master', 'self_signing', 'user_signing']),
    ]);
    // user_signing keys only to their owner: they would reveal whom the owner has verified.
    const visibleCs = csKeys.filter((k) => k.key_type !== 'user_signing' || k.user_id === requester.userId);
    const signatures = await crossSigning.visibleSignatures(
      this.db,
      [
        ...rows.map((r) => ({ userId: r.user_id, keyId: r.device_id })),
        ...visibleCs.map((k) => ({ userId: k.user_id, keyId: k.key_id.slice('ed25519:'.length) })),
      ],
      requester.userId,
    );
    const sigsByTarget = new Map<string, crossSigning.SignatureRow[]>();
    for (const s of signatures) {
      const key = `${s.target_user_id}\u0000${s.target_key_id}`;
      sigsByTarget.set(key, [...(sigsByTarget.get(key) ?? []), s]);
    }
    const withSignatures = (userId: string, targetKeyId: string, obj: Json): Json =>
      mergeSignatures(obj, sigsByTarget.get(`${userId}\u0000${targetKeyId}`) ?? []);

    for (const row of rows) {
      const obj = withSignatures(row.user_id, row.device_id, JSON.parse(row.key_json) as Json);
      const unsigned = isObject(obj['unsigned']) ? { ...obj['unsigned'] } : {};
      if (row.display_name !== null) unsigned['device_display_name'] = row.display_name;
      result.device_keys[row.user_id]![row.device_id] = { ...obj, unsigned };
    }
    for (const k of visibleCs) {
      const obj = withSignatures(k.user_id, k.key_id.slice('ed25519:'.length), JSON.parse(k.key_json) as Json);
      const target = k.key_type === 'master' ? result.master_keys : k.key_type === 'self_signing' ? result.self_signing_keys : result.user_signing_keys;
      target[k.user_id] = obj;
    }

    for (const [server, users] of remote) {
      try {
        if (!this.remote) throw new Error('federation is not available');
        const answer = await this.remote.query(server, users);
        for (const field of ['device_keys', 'master_keys', 'self_signing_keys'] as const) {
          if (isObject(answer[field])) Object.assign(result[field], answer[field]);
        }
      } catch (err) {
        result.failures[server] = { status: 503, message: (err as Error).message };
      }
    }
    return result;
  }

  // ---- claim ----------------------------------------------------------------------------

  async claim(wanted: Record<string, Record<string, string>>): Promise<{ one_time_keys: Record<string, Record<string, Json>>; failures: Record<string, Json> }> {
    const oneTimeKeys: Record<string, Record<string, Json>> = {};
    const failures: Record<string, Json> = {};
    const local: deviceKeys.ClaimRequest[] = [];
    const remote = new Map<string, Record<string, Record<string, string>>>();
    for (const [userId, devices] of Object.entries(wanted)) {
      const parsed = parseUserId(userId);
      if (!parsed) throw new MatrixError('M_INVALID_PARAM', `Invalid user id: ${userId}`);
      if (parsed.serverName !== this.serverName) {
        const forServer = remote.get(parsed.serverName) ?? {};
        forServer[userId] = devices;
        remote.set(parsed.serverName, forServer);
        continue;
      }
      for (const [deviceId, algorithm] of Object.entries(devices)) local.push({ userId, deviceId, algorithm });
    }

    // One-time keys first (each handed out once, see the store), then the fallback key of
    // every device that had none left.
    const claimed = await deviceKeys.claimOneTimeKeys(this.db, local);
    const served = new Set(claimed.map((c) => `${c.userId}\u0000${c.deviceId}`));
    const rest = local.filter((w) => !served.has(`${w.userId}\u0000${w.deviceId}`));
    const fallbacks = await deviceKeys.claimFallbackKeys(this.db, rest);
    this.keyFiguresChanged([...claimed, ...fallbacks]);
    for (const c of [...claimed, ...fallbacks]) {
      const forUser = (oneTimeKeys[c.userId] ??= {});
      forUser[c.deviceId] = { [`${c.algorithm}:${c.keyId}`]: JSON.parse(c.keyJson) };
    }

    for (const [server, users] of remote) {
      try {
        if (!this.remote) throw new Error('federation is not available');
        const answer = await this.remote.claim(server, users);
        if (isObject(answer['one_time_keys'])) Object.assign(oneTimeKeys, answer['one_time_keys']);
      } catch (err) {
        failures[server] = { status: 503, message: (err as Error).message };
      }
    }
    return { one_time_keys: oneTimeKeys, failures };
  }

  // ---- device lists ---------------------------------------------------------------------

  /** GET /keys/changes: `from` and `to` are sync tokens (next_batch values); no `to`: up to now. */
  async changes(requester: Requester, from: string, to: string | undefined): Promise<{ changed: string[]; left: string[] }> {
    const fromPos = deviceListPosition(from);
    const toPos = to !== undefined ? deviceListPosition(to) : await streams.head(this.db, 'device_lists');
    const viewer = requester.userId;
    const [changed, membership] = await Promise.all([
      this.changedUsersBetween(viewer, fromPos, toPos),
      this.membership.membershipChanges(viewer, from, to),
    ]);
    const changedSet = new Set([...changed, ...membership.joined]);
    const left = membership.left.filter((u) => !changedSet.has(u));
    return { changed: [...changedSet].sort(), left: left.sort() };
  }

  /** Users whose keys changed in (from, to] that `viewer` shares a room with (or may see privately). */
  async changedUsersBetween(viewer: string, from: number, to: number, db: Queryable = this.db, among?: string[]): Promise<string[]> {
    if (to <= from) return [];
    // Sync passes `among`, read in its own snapshot: asking the membership view here would take
    // a second pool connection while the snapshot holds one (a deadlock when the pool is full).
    among ??= await this.membership.usersSharingRooms(viewer);
    return streams.changedUsers(db, viewer, from, to, among);
  }

  async streamHeads(db: Queryable = this.db): Promise<StreamHeads> {
    const [toDeviceHead, deviceListsHead] = await Promise.all([streams.head(db, 'to_device'), streams.head(db, 'device_lists')]);
    return { toDevice: toDeviceHead, deviceLists: deviceListsHead };
  }

  /** Subscribed to AccountService.devicesDeletedListeners: a device's keys and queue go with it. */
  readonly onDevicesDeleted = async (userId: string, deviceIds: string[]): Promise<void> => {
    const position = await this.db.withTx('keys_devices_deleted', async (tx) => {
      await deviceKeys.deleteKeysOfDevices(tx, userId, deviceIds);
      await crossSigning.deleteSignaturesOn(tx, userId, deviceIds);
      await toDevice.deleteDeviceQueues(tx, userId, deviceIds);
      return streams.recordDeviceListChanges(tx, [{ userId }]);
    });
    this.emit('deviceLists', position, [userId]);
    this.keyFiguresChanged(deviceIds.map((deviceId) => ({ userId, deviceId })));
  };

  /**
   * Subscribed to AccountService.deviceRenamedListeners: /keys/query shows the display name
   * (unsigned.device_display_name), so users who share a room re-query, as Synapse has them do.
   */
  readonly onDeviceRenamed = async (userId: string, _deviceId: string): Promise<void> => {
    const position = await this.db.withTx('keys_device_renamed', (tx) => streams.recordDeviceListChanges(tx, [{ userId }]));
    this.emit('deviceLists', position, [userId]);
  };

  /** Subscribed to AccountService.deactivationListeners: cross-signing identity goes too. */
  readonly onDeactivated = async (userId: string): Promise<void> => {
    const position = await this.db.withTx('keys_deactivated', async (tx) => {
      await crossSigning.deleteCrossSigningOfUser(tx, userId);
      return streams.recordDeviceListChanges(tx, [{ userId }]);
    });
    this.emit('deviceLists', position, [userId]);
  };

  private keyFiguresChanged(devices: { userId: string; deviceId: string }[]): void {
    if (devices.length > 0) emitStreamChange(this.keyFiguresListeners, devices, (err) => this.log.warn({ err }, 'key figures listener failed'));
  }

  /** Tells sync's listeners about a committed change (cross-signing and to-device use it too). */
  emit(stream: 'deviceLists' | 'toDevice', position: number, userIds: string[]): void {
    emitStreamChange(this.streamListeners, { stream, position, userIds }, (err) => this.log.warn({ err }, 'stream listener failed'));
  }
}

/** Adds uploaded signatures to an object's own, without touching the stored copy. */
function mergeSignatures(obj: Json, rows: crossSigning.SignatureRow[]): Json {
  if (rows.length === 0) return obj;
  const signatures: Record<string, Record<string, string>> = {};
  for (const [user, sigs] of Object.entries(isObject(obj['signatures']) ? obj['signatures'] : {})) {
    signatures[user] = { ...(sigs as Record<string, string>) };
  }
  for (const r of rows) (signatures[r.signer_user_id] ??= {})[r.signer_key_id] = r.signature;
  return { ...obj, signatures };
}

/** A sync's key figures from what KEY_FIGURES_FOR_SYNC_SQL read. */
export function syncKeyFiguresOf(row: { counts: Record<string, number>; fallback: string[] }): { counts: Record<string, number>; fallback: string[] } {
  return { counts: { [ALWAYS_COUNTED_ALGORITHM]: 0, ...row.counts }, fallback: row.fallback };
}
