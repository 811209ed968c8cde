// Server-side key backups (spec: client-server API, "Server-side key backups"). The server
// stores encrypted session keys per backup version and applies the spec's rule for which copy
// of a session to keep.
import type { Database } from '../db/pool.js';
import { MatrixError } from '../http/errors.js';
import * as store from './store/backup.js';
import type { Json } from './key-json.js';

export interface KeyBackupData {
  first_message_index: number;
  forwarded_count: number;
  is_verified: boolean;
  session_data: Json;
}

export type RoomsBackup = Record<string, { sessions: Record<string, KeyBackupData> }>;

const noBackup = () => new MatrixError('M_NOT_FOUND', 'Unknown backup version');

/** Versions are decimal numbers we hand out; anything else names no backup. */
function parseVersion(version: string): number | undefined {
  return /^[1-9]\d{0,14}$/.test(version) ? Number(version) : undefined;
}

/**
 * The spec's rule: a different is_verified keeps the verified copy; then the lower
 * first_message_index wins; then the lower forwarded_count. Ties keep the stored copy.
 */
export function shouldReplace(stored: Pick<KeyBackupData, 'first_message_index' | 'forwarded_count' | 'is_verified'>, offered: typeof stored): boolean {
  if (stored.is_verified !== offered.is_verified) return offered.is_verified;
  if (stored.first_message_index !== offered.first_message_index) return offered.first_message_index < stored.first_message_index;
  return offered.forwarded_count < stored.forwarded_count;
}

export class BackupService {
  constructor(private readonly db: Database) {}

  async createVersion(userId: string, algorithm: string, authData: Json): Promise<{ version: string }> {
    const version = await this.db.withTx('backup_create_version', async (tx) => {
      await store.lockUserBackups(tx, userId);
      return store.createVersion(tx, userId, algorithm, JSON.stringify(authData));
    });
    return { version: String(version) };
  }

  /** GET /room_keys/version[/{version}]: the latest when `version` is absent. */
  async getVersion(userId: string, version?: string): Promise<{ algorithm: string; auth_data: Json; version: string; etag: string; count: number }> {
    let row: store.VersionRow | undefined;
    if (version === undefined) row = await store.latestVersion(this.db, userId);
    else {
      const v = parseVersion(version);
      row = v !== undefined ? await store.getVersion(this.db, userId, v) : undefined;
    }
    if (!row) throw version === undefined ? new MatrixError('M_NOT_FOUND', 'No current backup version') : noBackup();
    return {
      algorithm: row.algorithm,
      auth_data: JSON.parse(row.auth_data) as Json,
      version: String(row.version),
      etag: String(row.etag),
      count: await store.countKeys(this.db, userId, row.version),
    };
  }

  /** PUT /room_keys/version/{version}: only auth_data changes; the algorithm must stay. */
  async updateVersion(userId: string, version: string, body: { algorithm: string; auth_data: Json; version?: string }): Promise<void> {
    if (body.version !== undefined && body.version !== version) {
      throw new MatrixError('M_INVALID_PARAM', 'The version in the body does not match the version in the path');
    }
    const v = parseVersion(version);
    const row = v !== undefined ? await store.getVersion(this.db, userId, v) : undefined;
    if (!row) throw noBackup();
    if (row.algorithm !== body.algorithm) throw new MatrixError('M_INVALID_PARAM', 'Algorithm does not match');
    if (!(await store.updateAuthData(this.db, userId, row.version, JSON.stringify(body.auth_data)))) throw noBackup();
  }

  async deleteVersion(userId: string, version: string): Promise<void> {
    const v = parseVersion(version);
    const deleted =
      v !== undefined &&
      (await this.db.withTx('backup_delete_version', async (tx) => {
        await store.lockUserBackups(tx, userId);
        return store.deleteVersion(tx, userId, v);
      }));
    if (!deleted) throw noBackup();
  }

  /** PUT /room_keys/keys[...]: only into the current (latest) version. */
  async putKeys(userId: string, version: string, rooms: RoomsBackup): Promise<{ etag: string; count: number }> {
    return this.db.withTx('backup_put_keys', async (tx) => {
      await store.lockUserBackups(tx, userId);
      const current = await store.latestVersion(tx, userId);
      if (!current) throw new MatrixError('M_NOT_FOUND', 'No current backup version');
      if (String(current.version) !== version) {
        throw new MatrixError('M_WRONG_ROOM_KEYS_VERSION', 'Wrong backup version.', { extra: { current_version: String(current.version) } });
      }
      const offered = Object.entries(rooms).flatMap(([roomId, room]) =>
        Object.entries(room.sessions).map(([sessionId, data]) => ({ roomId, sessionId, data })),
      );
      const stored = await store.getSessionsForUpdate(tx, userId, current.version, offered);
      const storedBy = new Map(stored.map((r) => [`${r.room_id}\u0000${r.session_id}`, r]));
      const replacing = new Map<string, store.RoomKeyRow>();
      for (const o of offered) {
        const key = `${o.roomId}\u0000${o.sessionId}`;
        const existing = replacing.get(key) ?? storedBy.get(key);
        if (existing && !shouldReplace(existing, o.data)) continue;
        replacing.set(key, {
          room_id: o.roomId,
          session_id: o.sessionId,
          first_message_index: o.data.first_message_index,
          forwarded_count: o.data.forwarded_count,
          is_verified: o.data.is_verified,
          session_data: JSON.stringify(o.data.session_data),
        });
      }
      await store.upsertSessions(tx, userId, current.version, [...replacing.values()]);
      // The etag moves only when the stored keys changed, so a client comparing it learns
      // whether another client has written to the backup.
      const etag = replacing.size > 0 ? await store.bumpEtag(tx, userId, current.version) : current.etag;
      return { etag: String(etag), count: await store.countKeys(tx, userId, current.version) };
    });
  }

  /** GET /room_keys/keys[/{roomId}[/{sessionId}]] from any existing version. */
  async getKeys(userId: string, version: string, roomId?: string, sessionId?: string): Promise<Json> {
    const v = parseVersion(version);
    const row = v !== undefined ? await store.getVersion(this.db, userId, v) : undefined;
    if (!row) throw noBackup();
    const rows = await store.selectSessions(this.db, userId, row.version, roomId ?? null, sessionId ?? null);
    const data = (r: store.RoomKeyRow): KeyBackupData => ({
      first_message_index: r.first_message_index,
      forwarded_count: r.forwarded_count,
      is_verified: r.is_verified,
      session_data: JSON.parse(r.session_data) as Json,
    });
    if (sessionId !== undefined) {
      if (rows.length === 0) throw new MatrixError('M_NOT_FOUND', 'No room_keys found');
      return data(rows[0]!) as unknown as Json;
    }
    if (roomId !== undefined) return { sessions: Object.fromEntries(rows.map((r) => [r.session_id, data(r)])) };
    const out: Record<string, { sessions: Record<string, KeyBackupData> }> = {};
    for (const r of rows) (out[r.room_id] ??= { sessions: {} }).sessions[r.session_id] = data(r);
    return { rooms: out };
  }

  /** DELETE /room_keys/keys[/{roomId}[/{sessionId}]] in any existing version. */
  async deleteKeys(userId: string, version: string, roomId?: string, sessionId?: string): Promise<{ etag: string; count: number }> {
    const v = parseVersion(version);
    return this.db.withTx('backup_delete_keys', async (tx) => {
      await store.lockUserBackups(tx, userId);
      const row = v !== undefined ? await store.getVersion(tx, userId, v) : undefined;
      if (!row) throw noBackup();
      const removed = await store.deleteSessions(tx, userId, row.version, roomId ?? null, sessionId ?? null);
      const etag = removed > 0 ? await store.bumpEtag(tx, userId, row.version) : row.etag;
      return { etag: String(etag), count: await store.countKeys(tx, userId, row.version) };
    });
  }

  /** Deactivation: backups belong to the account. */
  readonly onDeactivated = async (userId: string): Promise<void> => {
    await store.deleteBackupsOfUser(this.db, userId);
  };
}
