// Presence: a user's state (online, unavailable, offline), status message and activity.
// Changes take the next presence position and wake the user and everyone sharing a room with
// them. Activity alone (a sync, a request) is recorded without a position: last_active_ago is
// computed at read time, and only a state change is a stream change. A periodic sweep moves
// idle users to unavailable and users gone quiet to offline (Synapse's timers, in SQL).
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
/** Online with no activity this long: unavailable (Synapse's idle timer is 5 minutes). */
export const IDLE_AFTER_MS = 5 * 60_000;
/**
 * No sync or presence request this long: offline. A long-polling client calls at least every
 * ~30 s and its activity is written at most every 30 s, so two minutes leaves a wide margin.
 */
export const GONE_AFTER_MS = 2 * 60_000;
const SWEEP_INTERVAL_MS = 15_000;

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
  private readonly lastActive = new Map<string, number>();
  private sweepTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly db: Database,
    private readonly notifier: Notifier,
    readonly enabled: boolean,
    /** Users to wake on a change of this user's presence (those sharing a room, and the user). */
    private readonly audience: (db: Queryable, userId: string) => Promise<string[]>,
  ) {}

  /** Starts the periodic sweep; every process runs one (a sweep finding nothing writes nothing). */
  start(): void {
    if (!this.enabled || this.sweepTimer) return;
    this.sweepTimer = setInterval(() => {
      this.sweep().catch(() => undefined);
    }, SWEEP_INTERVAL_MS);
    this.sweepTimer.unref();
  }

  stop(): void {
    clearInterval(this.sweepTimer);
    this.sweepTimer = undefined;
  }

  /**
   * Moves stale presence on: idle online users to unavailable, users gone quiet to offline, at
   * one new position, and wakes those who can see them. The check runs outside a transaction,
   * so the usual case (nothing stale) takes no lock. Returns the users changed.
   */
  async sweep(now = Date.now()): Promise<string[]> {
    if (!this.enabled) return [];
    const goneBefore = now - GONE_AFTER_MS;
    const idleBefore = now - IDLE_AFTER_MS;
    if (!(await store.anyStale(this.db, goneBefore, idleBefore))) return [];
    const { pos, users } = await this.db.withTx('presence_sweep', async (tx) => {
      const pos = await nextPosition(tx, 'presence');
      return { pos, users: await store.sweepStale(tx, goneBefore, idleBefore, pos) };
    });
    for (const u of users) {
      this.lastWrite.delete(u);
      this.lastActive.delete(u);
      const audience = await this.audience(this.db, u);
      this.notifier.notify('presence', pos, { userIds: [...new Set([u, ...audience])] });
    }
    return users;
  }

  /**
   * The user did something (sent an event): online and active now. Written at most once a
   * minute per user. A user syncing with set_presence=offline stays offline.
   */
  async markActive(userId: string): Promise<void> {
    if (!this.enabled) return;
    const now = Date.now();
    if ((this.lastActive.get(userId) ?? 0) > now - CURRENTLY_ACTIVE_MS) return;
    this.lastActive.set(userId, now);
    if (this.lastActive.size > 100_000) this.lastActive.clear();
    // One activity write at a time: each takes the presence stream lock to commit, and many at
    // once (a burst of first events from many users) would each hold a pooled connection while
    // they queue for it, starving the room writes that produced them.
    const run = this.activityWrites.then(async () => {
      const cur = await store.getPresence(this.db, userId);
      if (cur?.state === 'offline' && cur.last_user_sync_ts > now - GONE_AFTER_MS) return;
      await this.set(userId, 'online');
    });
    this.activityWrites = run.catch(() => undefined);
    await run;
  }

  private activityWrites: Promise<unknown> = Promise.resolve();

  async get(userId: string): Promise<PresenceContent> {
    if (!this.enabled) return { presence: 'offline' };
    const row = await store.getPresence(this.db, userId);
    if (!row) return { presence: 'offline' };
    return presenceContent(row);
  }

  /**
   * Sets the state (PUT /presence, a sync's set_presence, or activity). `statusMsg` undefined
   * keeps the current message. A state or message change is a stream change; otherwise only
   * activity is recorded (from syncs at most every 30 s).
   */
  async set(userId: string, state: PresenceState, statusMsg?: string | null, opts: { fromSync?: boolean } = {}): Promise<void> {
    if (!this.enabled) return;
    const now = Date.now();
    // A sync saying "online" brings an offline user online but does not end idleness
    // (unavailable): only activity does (markActive, a PUT), as Synapse's idle timer works.
    const keeps = (cur: store.PresenceRow) => cur.state === state || (opts.fromSync === true && state === 'online' && cur.state === 'unavailable');
    if (opts.fromSync && (this.lastWrite.get(userId) ?? 0) > now - ACTIVITY_WRITE_INTERVAL_MS) {
      const cur = await store.getPresence(this.db, userId);
      if (cur && keeps(cur)) return;
    }
    const changed = await this.db.withTx('presence_set', async (tx) => {
      const cur = await store.getPresence(tx, userId, true);
      const msg = statusMsg === undefined ? (cur?.status_msg ?? null) : statusMsg;
      const activeNow = state === 'online' || state === 'busy';
      if (cur && keeps(cur) && (cur.state !== state || cur.status_msg === msg)) {
        // No visible change: no new position, nobody woken. Syncing is not activity; an
        // explicit PUT (or a sent event) is.
        await store.touchPresence(tx, userId, now, activeNow && !opts.fromSync);
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
