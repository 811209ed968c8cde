// A long-poll that a change woke answers with one statement (store/woken.ts) instead of a full
// read of every stream (a BEGIN, five statements and a COMMIT), when what woke it is the common
// case: new events in rooms the user was and stays joined to.
//
// The empty answer the long-poll found before it waited is the base: its positions, the user's
// joined rooms and ignored users. One statement then reads, in one snapshot, every stream's
// position, the events of those rooms past the base's events position, whether any membership
// of the user moved, the device's key figures and the rooms' unread counts. The answer is what a
// full read from the base's token would give; it falls back to that full read when
//  - a stream other than the room events (and typing, kept in memory) moved: the full read
//    sends that too;
//  - a membership of the user moved, or a member event is among the new events (a summary,
//    device lists and the sections of other rooms depend on them);
//  - more than WOKEN_SCAN_LIMIT events came in since, in all rooms.
// Whatever else an answer needs that the caches lack (a state snapshot, an event a redaction
// names) is read outside the snapshot: those are facts that do not change once written.
import type { Database } from '../db/pool.js';
import { syncKeyFiguresOf } from '../keys/service.js';
import type { UnreadCounts } from '../push/unread-counts.js';
import type { Filter } from './filter.js';
import type { MembershipRow } from './store/rooms.js';
import { readWoken, wokenStatements, WOKEN_SCAN_LIMIT } from './store/woken.js';
import type { RoomsStream } from './streams/rooms.js';
import { applyUnreadCounts, emptyResponse, type StreamProvider, type SyncContext, type SyncResponse } from './streams/types.js';
import { formatSyncToken, maxToken, type SyncToken } from './token.js';

/** What an empty answer was built on: a woken long-poll continues from it. */
export interface WaitBase {
  /** The token the empty answer would have carried. */
  next: SyncToken;
  /** The user's joined rooms at next.events. */
  joined: MembershipRow[];
  ignored: Set<string>;
}

export interface WokenRequest {
  userId: string;
  deviceId: string;
  filter: Filter;
  /** The client's token. */
  since: SyncToken;
  useStateAfter: boolean;
}

export class WokenSync {
  /** How woken long-polls were answered (tests and benchmarks look). */
  readonly answers = { oneStatement: 0, fullRead: 0 };
  private readonly statements: ReturnType<typeof wokenStatements>;

  constructor(
    private readonly d: {
      db: Database;
      rooms: RoomsStream;
      /** Every provider of the service: their positions decide whether this path may answer. */
      providers: StreamProvider[];
      unreadCounts: UnreadCounts;
      /** The statement reading the positions of the providers that have latestSql. */
      positionsSql: string;
    },
  ) {
    this.statements = wokenStatements(d.positionsSql);
  }

  /**
   * The answer to a woken long-poll from `base`, and the base to wait on if it is empty; or
   * undefined when a full read must answer (see the top of this file).
   */
  async answer(req: WokenRequest, base: WaitBase): Promise<{ res: SyncResponse; base: WaitBase } | undefined> {
    const { userId, deviceId } = req;
    const ignoresSomeone = base.ignored.size > 0;
    const roomIds = base.joined.map((m) => m.room_id);
    const known = this.d.unreadCounts.known(userId, roomIds, ignoresSomeone);
    // Only the rooms with remembered counts go to the statement (the others count from scratch).
    const remembered = roomIds.flatMap((_, i) => (known.entries[i] ? [i] : []));
    const read = await readWoken(this.d.db, ignoresSomeone ? this.statements.ignoring : this.statements.plain, {
      userId,
      deviceId,
      from: base.next.events,
      roomNids: base.joined.map((m) => m.room_nid),
      rooms: remembered.map((i) => roomIds[i]!),
      knownReceipts: remembered.map((i) => known.receipts[i]!),
      knownUpTo: remembered.map((i) => known.upTo[i]!),
    });
    if (read.membership_moved || read.scanned > WOKEN_SCAN_LIMIT) return this.fullRead();
    const to: SyncToken = { ...base.next, events: Math.max(base.next.events, read.positions['events'] ?? 0) };
    const inMemory: StreamProvider[] = [];
    for (const p of this.d.providers) {
      if (p.name === 'events') continue;
      const now = p.latestSql !== undefined ? Number(read.positions[p.name]) : await p.latest(this.d.db);
      if (now <= base.next[p.name]) continue;
      if (p.latestSql !== undefined || !p.inMemory) return this.fullRead();
      to[p.name] = now;
      inMemory.push(p);
    }
    const loaded = this.d.rooms.loadRows(this.d.db, read.events);
    if (read.events.some((r) => loaded.get(r.event_nid)?.event.type === 'm.room.member')) return this.fullRead();

    const ctx: SyncContext = {
      tx: this.d.db,
      userId,
      deviceId,
      filter: req.filter,
      fullState: false,
      useStateAfter: req.useStateAfter,
      since: req.since,
      to,
      res: emptyResponse(),
      joinedRooms: [],
      newlyJoined: new Set(),
      ignored: base.ignored,
      cap: {},
    };
    await this.d.rooms.continueJoined(ctx, base.joined, base.next.events, read.events, loaded);
    for (const p of inMemory) await p.between(ctx, base.next[p.name], to[p.name]);
    const keys = syncKeyFiguresOf({ counts: read.key_counts, fallback: read.key_fallback });
    ctx.res.device_one_time_keys_count = keys.counts;
    ctx.res.device_unused_fallback_key_types = keys.fallback;
    const counts = this.d.unreadCounts.absorb(userId, roomIds, known, read.counts ?? [], to.events, ignoresSomeone);
    // Rooms in the answer for typing alone were not counted by the statement.
    const counted = new Set(read.events.map((r) => r.room_nid));
    const uncounted = base.joined.filter((m) => !counted.has(m.room_nid) && ctx.res.rooms.join[m.room_id]).map((m) => m.room_id);
    if (uncounted.length > 0) counts.push(...(await this.d.unreadCounts.counts(this.d.db, userId, uncounted, to.events, ignoresSomeone)));
    applyUnreadCounts(ctx, counts);
    const next = maxToken(req.since, to);
    ctx.res.next_batch = formatSyncToken(next);
    this.answers.oneStatement++;
    return { res: ctx.res, base: { next, joined: base.joined, ignored: base.ignored } };
  }

  private fullRead(): undefined {
    this.answers.fullRead++;
    return undefined;
  }
}
