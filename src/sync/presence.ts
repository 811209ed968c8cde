// Presence: a user's state (online, unavailable, offline, busy), status message and activity.
// Changes take the next presence position and wake the user and everyone sharing a room with
// them. Activity alone (a sync, a request) is recorded without a position: last_active_ago is
// computed at read time, and only a state change is a stream change.
import type { Database, Queryable } from '../db/pool.js';
import { MatrixError } from '../http/errors.js';
import type { Notifier } from './notifier.js';
import { nextPosition } from './store/positions.js';
import * as store from './store/presence.js';

export type PresenceState = 'online' | 'offline' | 'unavailable' | 'busy';
// The spec's three states; 'busy' (MSC3026) is accepted by the schema but not offered yet.
export const PRESENCE_STATES: readonly PresenceState[] = ['online', 'offline', 'unavailable'];
/** Activity within this window counts as currently_active (Synapse uses one minute). */
export const CURRENTLY_ACTIVE_MS = 60_000;
/** How often a busy syncing client's activity is written at most. */
const ACTIVITY_WRITE_INTERVAL_MS = 30_000;

export interface PresenceContent {
  presence: PresenceState;
  last_active_ago?: number;
  status_msg?: string;
  currently_active?: boolean;
}

export function presenceContent(row: store.PresenceRow, now = Date.now()): PresenceContent {
  const out: PresenceContent = { presence: row.state, last_active_ago: Math.max(0, now - row.last_active_ts) };
  if (row.status_msg !== null) out.status_msg = row.status_msg;
  if (row.state !== 'offline') out.currently_active = now - row.last_active_ts < CURRENTLY_ACTIVE_MS;
  return out;
}

export class PresenceService {
  private readonly lastWrite = new Map<string, number>();

  constructor(
    private readonly db: Database,
    private readonly notifier: Notifier,
    readonly enabled: boolean,
    /** Users to wake on a change of this user's presence (those sharing a room, and the user). */
    private readonly audience: (db: Queryable, userId: string) => Promise<string[]>,
  ) {}

  async get(userId: string): Promise<PresenceContent> {
    if (!this.enabled) return { presence: 'offline' };
    const row = await store.getPresence(this.db, userId);
    if (!row) return { presence: 'offline' };
    return presenceContent(row);
  }

  /**
   * Sets the state (PUT /presence or a sync's set_presence). `statusMsg` undefined keeps the
   * current message. A state or message change is a stream change; otherwise only activity is
   * recorded, at most every 30 s.
   */
  async set(userId: string, state: PresenceState, statusMsg?: string | null, opts: { fromSync?: boolean } = {}): Promise<void> {
    if (!this.enabled) return;
    const now = Date.now();
    if (opts.fromSync && (this.lastWrite.get(userId) ?? 0) > now - ACTIVITY_WRITE_INTERVAL_MS) {
      const cur = await store.getPresence(this.db, userId);
      if (cur && cur.state === state) return;
    }
    const changed = await this.db.withTx('presence_set', async (tx) => {
      const cur = await store.getPresence(tx, userId, true);
      const msg = statusMsg === undefined ? (cur?.status_msg ?? null) : statusMsg;
      const activeNow = state === 'online' || state === 'busy';
      if (cur && cur.state === state && cur.status_msg === msg) {
        // The same state: only activity moves (no new position, nobody woken).
        if (activeNow) await tx.query('UPDATE sync_presence SET last_active_ts = $2, last_user_sync_ts = $2 WHERE user_id = $1', [userId, now]);
        return undefined;
      }
      const pos = await nextPosition(tx, 'presence');
      await store.upsertPresence(tx, {
        user_id: userId,
        state,
        status_msg: msg,
        last_active_ts: activeNow || !cur ? now : cur.last_active_ts,
        last_user_sync_ts: now,
        stream_id: pos,
      });
      return pos;
    });
    this.lastWrite.set(userId, now);
    if (this.lastWrite.size > 100_000) this.lastWrite.clear();
    if (changed !== undefined) {
      const users = await this.audience(this.db, userId);
      this.notifier.notify('presence', changed, { userIds: [...new Set([userId, ...users])] });
    }
  }
}

export function parsePresenceState(v: unknown): PresenceState {
  if (typeof v !== 'string' || !(PRESENCE_STATES as readonly string[]).includes(v)) {
    throw new MatrixError('M_INVALID_PARAM', `presence must be one of ${PRESENCE_STATES.join(', ')}`);
  }
  return v as PresenceState;
}
