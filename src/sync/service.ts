// GET /sync: reads every stream past the caller's token in one snapshot, and long-polls when
// there is nothing yet. The providers array is the list of streams; next_batch is derived from
// it, stream by stream, so adding a stream is adding a provider.
import type { Database, Queryable } from '../db/pool.js';
import { MatrixError } from '../http/errors.js';
import type { Logger } from '../logger.js';
import type { UnreadCounts } from '../push/unread-counts.js';
import { Lru } from '../rooms/lru.js';
import type { AccountDataService } from './account-data.js';
import { validateFilter, type Filter } from './filter.js';
import type { Notifier, WaitSignal } from './notifier.js';
import type { PresenceService, PresenceState } from './presence.js';
import * as filters from './store/filters.js';
import { latestPositionsSql } from './store/positions.js';
import { inSnapshot } from './store/snapshot.js';
import { RoomsStream } from './streams/rooms.js';
import { applyUnreadCounts, emptyResponse, hasContent, type StreamProvider, type SyncContext, type SyncResponse } from './streams/types.js';
import { emptyToken, formatSyncToken, maxToken, parseSyncToken, STREAM_NAMES, type SyncToken } from './token.js';
import { WokenSync, type WaitBase, type WokenMemory } from './woken.js';

/** Longest long-poll honoured; clients ask for 30 s, a bogus huge value must not pin a request. */
export const MAX_SYNC_TIMEOUT_MS = 300_000;

export interface SyncParams {
  since?: string;
  timeoutMs: number;
  filter?: string;
  fullState: boolean;
  useStateAfter?: boolean;
  setPresence?: PresenceState;
}


export interface SyncDeps {
  db: Database;
  notifier: Notifier;
  providers: StreamProvider[];
  presence: PresenceService;
  accountData: AccountDataService;
  /** Notification counts per room and thread, remembered between syncs. */
  unreadCounts: UnreadCounts;
  /** What lets a woken long-poll answer from memory (woken.ts); without it, the statement answers. */
  memory?: WokenMemory;
  /** The device acknowledged to-device messages up to this position (it synced with the token). */
  ackToDevice?: (userId: string, deviceId: string, upTo: number) => Promise<unknown>;
  log: Logger;
}

/** Users whose ignored list is remembered between syncs (the most recently syncing ones). */
const IGNORED_CACHE_SIZE = 10_000;
/**
 * What the devices' last answers were built on, weighed by their joined rooms (a membership row
 * each, about 100 bytes): at most this many rows are kept, the most recently syncing devices'.
 */
const LAST_ANSWERS_WEIGHT = 100_000;

/** An answer given to a device: its token, and what it was built on. */
interface LastAnswer {
  token: string;
  base: WaitBase;
}

export class SyncService {
  /** The providers whose position is read by the one statement sent with BEGIN. */
  private readonly batched: StreamProvider[];
  private readonly positionsSql: string | undefined;
  /**
   * Each user's ignored list as of an account data position: every change to it takes a new
   * position, so while the snapshot's position is the same, so is the list (one query less on
   * the path of every woken long-poll).
   */
  private readonly ignoredCache = new Map<string, { position: number; ignored: Set<string> }>();
  /**
   * Each device's last answer. A client syncs again with the token of its previous answer, and
   * what that answer was built on (the user's joined rooms at its positions, their ignored
   * users) is then a base, as the empty answer a long-poll waits on is: the woken path reads
   * only what came after it, often from memory, instead of a full read of every stream.
   */
  private readonly lastAnswers = new Lru<string, LastAnswer>(LAST_ANSWERS_WEIGHT, (a) => 1 + a.base.joined.length);

  /** Answers woken long-polls with one statement where it can (woken.ts). */
  readonly woken: WokenSync | undefined;
  /** The to-device stream puts the device's key figures in every answer of a full read. */
  private readonly figuresInAnswers: boolean;

  constructor(private readonly d: SyncDeps) {
    this.batched = d.providers.filter((p) => p.latestSql !== undefined);
    this.positionsSql = this.batched.length === 0 ? undefined : latestPositionsSql(this.batched.map((p) => ({ name: p.name, sql: p.latestSql! })));
    const rooms = d.providers.find((p): p is RoomsStream => p instanceof RoomsStream);
    this.figuresInAnswers = d.providers.some((p) => p.name === 'toDevice');
    this.woken =
      rooms && this.positionsSql !== undefined
        ? new WokenSync({
            db: d.db,
            rooms,
            providers: d.providers,
            unreadCounts: d.unreadCounts,
            positionsSql: this.positionsSql,
            ...(d.memory ? { memory: d.memory } : {}),
          })
        : undefined;
  }

  // ---- filters ---------------------------------------------------------------------------

  async createFilter(userId: string, body: unknown): Promise<string> {
    const filter = validateFilter(body);
    return String(await filters.insertFilter(this.d.db, userId, filter));
  }

  async getFilter(userId: string, filterId: string): Promise<unknown> {
    const found = /^\d{1,15}$/.test(filterId) ? await filters.getFilter(this.d.db, userId, Number(filterId)) : undefined;
    if (found === undefined) throw new MatrixError('M_NOT_FOUND', 'No such filter');
    return found;
  }

  /** `filter` of /sync: inline JSON (starts with '{') or a stored filter id. */
  async resolveFilter(userId: string, param: string | undefined): Promise<Filter> {
    if (param === undefined || param === '') return {};
    if (param.trimStart().startsWith('{')) {
      let parsed: unknown;
      try {
        parsed = JSON.parse(param);
      } catch {
        throw new MatrixError('M_BAD_JSON', "'filter' is not valid JSON");
      }
      return validateFilter(parsed);
    }
    const found = /^\d{1,15}$/.test(param) ? await filters.getFilter(this.d.db, userId, Number(param)) : undefined;
    if (found === undefined) throw new MatrixError('M_INVALID_PARAM', 'No such filter');
    return found as Filter;
  }

  // ---- sync ------------------------------------------------------------------------------

  async sync(userId: string, deviceId: string, params: SyncParams, signal: WaitSignal): Promise<SyncResponse> {
    // A request arriving while the server stops would race the pool's close; clients retry.
    if (signal.aborted) throw new MatrixError('M_UNKNOWN', 'The server is shutting down', { status: 503 });
    const filter = await this.resolveFilter(userId, params.filter);
    const since = params.since === undefined ? undefined : parseSyncToken(params.since);
    if (this.d.presence.enabled && params.setPresence !== 'offline') {
      // Presence is a side effect; a failure to record it must not fail the sync.
      await this.d.presence.set(userId, params.setPresence ?? 'online', undefined, { fromSync: true }).catch((err) =>
        this.d.log.warn({ err }, 'could not record presence from sync'),
      );
    }
    // Syncing with a token acknowledges the to-device messages it covered.
    if (since && this.d.ackToDevice) await this.d.ackToDevice(userId, deviceId, since.toDevice);
    const deadline = Date.now() + Math.min(Math.max(params.timeoutMs, 0), MAX_SYNC_TIMEOUT_MS);
    const device = `${userId}\u0000${deviceId}`;
    // What the answer to continue from was built on: the device's previous answer if the token
    // is its, then each empty answer the long-poll waits on.
    let base: WaitBase | undefined;
    if (since && !params.fullState) {
      const last = this.lastAnswers.get(device);
      if (last !== undefined && last.token === params.since) base = last.base;
    }
    let tally = this.woken?.continued;
    for (;;) {
      const seq = this.d.notifier.seq;
      const answer =
        (base && since && this.woken
          ? await this.woken.answer({ userId, deviceId, filter, since, useStateAfter: params.useStateAfter === true }, base, tally)
          : undefined) ??
        (await this.fullRead(userId, deviceId, filter, since, params));
      tally = this.woken?.answers;
      const res = answer.res;
      const left = deadline - Date.now();
      if (!since || params.fullState || hasContent(res) || signal.aborted || left <= 0) return this.answered(device, answer);
      base = answer.base;
      const woken = await this.d.notifier.wait(userId, base.joined.map((m) => m.room_id), seq, left, signal);
      if (!woken) return this.answered(device, answer);
    }
  }

  /** Every stream past `since` (all of them without it) in one snapshot. */
  private async fullRead(userId: string, deviceId: string, filter: Filter, since: SyncToken | undefined, params: SyncParams) {
    // The device's key figures in the answer are remembered for the woken path, unless they
    // changed after the ticket, taken before the snapshot.
    const figuresTicket = this.figuresInAnswers ? this.d.memory?.keyFigures.ticket() : undefined;
    const answer = await inSnapshot(
      this.d.db,
      (tx, positions) => this.once(tx, positions, userId, deviceId, filter, since, params.fullState, params.useStateAfter === true),
      this.positionsSql,
    );
    if (figuresTicket !== undefined) {
      const res = answer.res;
      this.d.memory!.keyFigures.remember(userId, deviceId, { counts: res.device_one_time_keys_count, fallback: res.device_unused_fallback_key_types }, figuresTicket);
    }
    return answer;
  }

  private answered(device: string, answer: { res: SyncResponse; base: WaitBase }): SyncResponse {
    this.lastAnswers.set(device, { token: answer.res.next_batch, base: answer.base });
    return answer.res;
  }

  private async once(
    tx: Queryable,
    positions: Record<string, unknown> | undefined,
    userId: string,
    deviceId: string,
    filter: Filter,
    since: SyncToken | undefined,
    fullState: boolean,
    useStateAfter: boolean,
  ): Promise<{ res: SyncResponse; base: WaitBase }> {
    const to = emptyToken();
    for (const p of this.d.providers) to[p.name] = p.latestSql !== undefined && positions ? Number(positions[p.name]) : await p.latest(tx);
    const ctx: SyncContext = {
      tx,
      userId,
      deviceId,
      filter,
      fullState,
      useStateAfter,
      since,
      to,
      res: emptyResponse(),
      joinedRooms: [],
      newlyJoined: new Set(),
      ignored: await this.ignoredUsers(tx, userId, to.accountData),
      cap: {},
    };
    for (const p of this.d.providers) {
      if (since) await p.between(ctx, since[p.name], to[p.name]);
      else await p.full(ctx);
    }
    await this.unreadCounts(ctx);
    const next = since ? maxToken(since, to) : to;
    for (const n of STREAM_NAMES) if (ctx.cap[n] !== undefined) next[n] = ctx.cap[n]!;
    ctx.res.next_batch = formatSyncToken(next);
    return { res: ctx.res, base: { next, joined: ctx.joinedMemberships ?? [], ignored: ctx.ignored } };
  }

  private async ignoredUsers(tx: Queryable, userId: string, accountDataPosition: number): Promise<Set<string>> {
    const cached = this.ignoredCache.get(userId);
    this.ignoredCache.delete(userId);
    const entry = cached?.position === accountDataPosition ? cached : { position: accountDataPosition, ignored: await this.d.accountData.ignoredUsers(tx, userId) };
    // Re-inserted last: the Map's order is the order of use, the first entry the stalest.
    this.ignoredCache.set(userId, entry);
    if (this.ignoredCache.size > IGNORED_CACHE_SIZE) this.ignoredCache.delete(this.ignoredCache.keys().next().value!);
    return new Set(entry.ignored);
  }

  /** unread_notifications (and per thread when the filter asks) for each joined room sent. */
  private async unreadCounts(ctx: SyncContext): Promise<void> {
    const rooms = Object.keys(ctx.res.rooms.join);
    if (rooms.length === 0) return;
    // Counted in the snapshot of the positions: the receipts they were made against are those up to ctx.to.receipts.
    applyUnreadCounts(ctx, await this.d.unreadCounts.counts(ctx.tx, ctx.userId, rooms, ctx.to.events, ctx.ignored.size > 0, ctx.to.receipts));
  }
}
