// A long-poll that a change woke answers without a full read of every stream (a BEGIN, five
// statements and a COMMIT) when what woke it is the common case: new events in rooms the user
// was and stays joined to.
//
// The empty answer the long-poll found before it waited is the base: its positions, the user's
// joined rooms and ignored users. When this process wrote every event since the base
// (recent-writes.ts), the answer comes from memory, with no round trip at all: the key figures
// from their cache, the unread counts carried forward (answerFromMemory). Else one statement
// (store/woken.ts) reads, in one snapshot, every stream's position, the events of those rooms
// past the base's events position, whether any membership of the user moved, the device's key
// figures and the rooms' unread counts. Either answer is what a full read from the base's token
// would give; a full read answers instead when
//  - a stream other than the room events (and typing, kept in memory) moved: the full read
//    sends that too;
//  - a membership of the user moved, or a member event is among the new events (a summary,
//    device lists and the sections of other rooms depend on them);
//  - more than WOKEN_SCAN_LIMIT events came in since, in all rooms.
// Whatever else an answer needs that the caches lack (a state snapshot, an event a redaction
// names) is read outside the snapshot: those are facts that do not change once written.
//
// A sync continuing from the device's previous answer (its token) starts here too, with that
// answer's base (service.ts, the README's "Continuing from the previous answer").
import type { Database } from '../db/pool.js';
import { syncKeyFiguresOf } from '../keys/service.js';
import type { CountRow } from '../push/store.js';
import type { KnownAction, UnreadCounts } from '../push/unread-counts.js';
import type { StoredEvent } from '../rooms/events.js';
import type { Filter } from './filter.js';
import type { KeyFiguresCache } from './key-figures-cache.js';
import type { RecentWrite, RecentWrites } from './recent-writes.js';
import type { MembershipRow, TimelinePlace } from './store/rooms.js';
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

/** What answering from memory takes: the writes of this process, the devices' key figures. */
export interface WokenMemory {
  recent: RecentWrites;
  keyFigures: KeyFiguresCache;
  /** The furthest position of a stream this process heard of (Notifier.heardOf). */
  heardOf: (stream: string) => number;
}

/** How many answers went each way (tests and benchmarks look). */
export interface WokenTally {
  fromMemory: number;
  oneStatement: number;
  fullRead: number;
}

export class WokenSync {
  /** How woken long-polls were answered. */
  readonly answers: WokenTally = { fromMemory: 0, oneStatement: 0, fullRead: 0 };
  /** How syncs continuing from the device's previous answer were, before any wait (service.ts). */
  readonly continued: WokenTally = { fromMemory: 0, oneStatement: 0, fullRead: 0 };
  /** False: woken long-polls always read the database (tests of the statement, benchmarks' A/B). */
  useMemory = true;
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
      memory?: WokenMemory;
    },
  ) {
    this.statements = wokenStatements(d.positionsSql);
  }

  /**
   * The answer to a woken long-poll from `base`, and the base to wait on if it is empty; or
   * undefined when a full read must answer (see the top of this file).
   */
  async answer(req: WokenRequest, base: WaitBase, tally: WokenTally = this.answers): Promise<{ res: SyncResponse; base: WaitBase } | undefined> {
    const fromMemory = await this.answerFromMemory(req, base, tally);
    if (fromMemory === FULL_READ) return fullRead(tally);
    return fromMemory ?? this.answerWithStatement(req, base, tally);
  }

  /**
   * The answer without the database, when this process wrote every event since the base and
   * knows the rest: the device's key figures (cached) and the rooms' unread counts (carried
   * forward). Undefined when it cannot: the statement answers then. The answer's other streams
   * stay at the base's positions (what another process changed meanwhile comes with the next
   * sync). FULL_READ when this process saw one of them move since the base: the statement would
   * find that too, and leave the answer to the full read.
   */
  private async answerFromMemory(req: WokenRequest, base: WaitBase, tally: WokenTally): Promise<{ res: SyncResponse; base: WaitBase } | typeof FULL_READ | undefined> {
    const memory = this.d.memory;
    if (!memory || !this.useMemory) return undefined;
    for (const p of this.d.providers) {
      if (p.name !== 'events' && !p.inMemory && memory.heardOf(p.name) > base.next[p.name]) return FULL_READ;
    }
    // Counts for a user who ignores someone leave the ignored senders out: the statement counts.
    if (base.ignored.size > 0) return undefined;
    const { userId, deviceId } = req;
    const from = base.next.events;
    const chain = memory.recent.chainFrom(from);
    // No chain: nothing new, unless another process wrote (the statement reads what).
    if (chain.length === 0 && memory.heardOf('events') > from) return undefined;
    const upTo = chain.length === 0 ? from : chain[chain.length - 1]!.last;
    const figures = memory.keyFigures.get(userId, deviceId);
    if (!figures) return undefined;
    const to: SyncToken = { ...base.next, events: upTo };
    const inMemory: StreamProvider[] = [];
    for (const p of this.d.providers) {
      if (p.name === 'events' || !p.inMemory) continue;
      const now = await p.latest(this.d.db);
      if (now > base.next[p.name]) {
        to[p.name] = now;
        inMemory.push(p);
      }
    }
    const joined = new Map(base.joined.map((m) => [m.room_nid, m]));
    const rows: TimelinePlace[] = [];
    const loaded = new Map<number, StoredEvent>();
    let scanned = 0;
    for (const w of chain) {
      for (let i = 0; i < w.events.length; i++) {
        const e = w.events[i]!;
        // As the statement's answer: a member event may move memberships, summaries and device
        // lists; a redaction changes an event the answer may hold.
        if (e.event.type === 'm.room.member' || e.event.type === 'm.room.redaction' || ++scanned > WOKEN_SCAN_LIMIT) return undefined;
        if (!joined.has(e.roomNid)) continue;
        const own = e.txn !== undefined && e.txn.userId === userId && e.txn.deviceId === deviceId;
        rows.push({ event_nid: e.nid, room_nid: e.roomNid, stream_ordering: e.stream, txn_id: own ? e.txn!.txnId : null });
        loaded.set(e.nid, w.stored[i]!);
      }
    }
    // The counts of the rooms with new events, carried forward; the user's receipts there did
    // not move since the client's token: the answers from it to the base were empty.
    const counts: CountRow[] = [];
    for (const roomNid of new Set(rows.map((r) => r.room_nid))) {
      const roomId = joined.get(roomNid)!.room_id;
      const carried = this.d.unreadCounts.carryForward(userId, roomId, req.since.receipts, upTo, (after) =>
        this.knownActions(after >= from ? chain : memory.recent.chainFrom(after), userId, roomNid, after, upTo),
      );
      if (!carried) return undefined;
      counts.push(...carried);
    }

    const ctx = this.context(req, base, to);
    await this.d.rooms.continueJoined(ctx, base.joined, from, rows, loaded);
    for (const p of inMemory) await p.between(ctx, base.next[p.name], to[p.name]);
    ctx.res.device_one_time_keys_count = figures.counts;
    ctx.res.device_unused_fallback_key_types = figures.fallback;
    await this.countTypingRooms(ctx, base, rows, counts, to);
    tally.fromMemory++;
    return this.finish(ctx, req, base, to, counts);
  }

  /**
   * The user's push actions in a room after position `after`, up to `upTo`, from `chain`; undefined
   * unless the chain holds every position from `after` on to `upTo`.
   */
  private knownActions(chain: RecentWrite[], userId: string, roomNid: number, after: number, upTo: number): KnownAction[] | undefined {
    if (chain.length === 0 || chain[0]!.first > after + 1 || chain[chain.length - 1]!.last < upTo) return undefined;
    const out: KnownAction[] = [];
    for (const w of chain) {
      for (const e of w.events) {
        if (e.roomNid !== roomNid || e.stream <= after || e.stream > upTo) continue;
        const a = w.actionFor(e, userId);
        if (a) out.push({ stream: e.stream, threadId: a.threadId, notify: a.notify, highlight: a.highlight });
      }
    }
    return out;
  }

  private async answerWithStatement(req: WokenRequest, base: WaitBase, tally: WokenTally): Promise<{ res: SyncResponse; base: WaitBase } | undefined> {
    const { userId, deviceId } = req;
    const ignoresSomeone = base.ignored.size > 0;
    const roomIds = base.joined.map((m) => m.room_id);
    const known = this.d.unreadCounts.known(userId, roomIds, ignoresSomeone);
    // Only the rooms with remembered counts go to the statement (the others count from scratch).
    const remembered = roomIds.flatMap((_, i) => (known.entries[i] ? [i] : []));
    const figuresTicket = this.d.memory?.keyFigures.ticket();
    const read = await readWoken(this.d.db, ignoresSomeone ? this.statements.ignoring : this.statements.plain, {
      userId,
      deviceId,
      from: base.next.events,
      roomNids: base.joined.map((m) => m.room_nid),
      rooms: remembered.map((i) => roomIds[i]!),
      knownReceipts: remembered.map((i) => known.receipts[i]!),
      knownUpTo: remembered.map((i) => known.upTo[i]!),
    });
    if (read.membership_moved || read.scanned > WOKEN_SCAN_LIMIT) return fullRead(tally);
    const to: SyncToken = { ...base.next, events: Math.max(base.next.events, read.positions['events'] ?? 0) };
    const inMemory: StreamProvider[] = [];
    for (const p of this.d.providers) {
      if (p.name === 'events') continue;
      const now = p.latestSql !== undefined ? Number(read.positions[p.name]) : await p.latest(this.d.db);
      if (now <= base.next[p.name]) continue;
      if (p.latestSql !== undefined || !p.inMemory) return fullRead(tally);
      to[p.name] = now;
      inMemory.push(p);
    }
    const loaded = this.d.rooms.loadRows(this.d.db, read.events);
    if (read.events.some((r) => loaded.get(r.event_nid)?.event.type === 'm.room.member')) return fullRead(tally);

    const ctx = this.context(req, base, to);
    await this.d.rooms.continueJoined(ctx, base.joined, base.next.events, read.events, loaded);
    for (const p of inMemory) await p.between(ctx, base.next[p.name], to[p.name]);
    const keys = syncKeyFiguresOf({ counts: read.key_counts, fallback: read.key_fallback });
    if (figuresTicket !== undefined) this.d.memory!.keyFigures.remember(userId, deviceId, keys, figuresTicket);
    ctx.res.device_one_time_keys_count = keys.counts;
    ctx.res.device_unused_fallback_key_types = keys.fallback;
    const receiptsAt = Number(read.positions['receipts'] ?? -1);
    const counts = this.d.unreadCounts.absorb(userId, roomIds, known, read.counts ?? [], to.events, ignoresSomeone, receiptsAt);
    await this.countTypingRooms(ctx, base, read.events, counts, to);
    tally.oneStatement++;
    return this.finish(ctx, req, base, to, counts);
  }

  private context(req: WokenRequest, base: WaitBase, to: SyncToken): SyncContext {
    return {
      tx: this.d.db,
      userId: req.userId,
      deviceId: req.deviceId,
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
  }

  /** Rooms in the answer for typing alone have no new events, and were not counted: counted here. */
  private async countTypingRooms(ctx: SyncContext, base: WaitBase, rows: { room_nid: number }[], counts: CountRow[], to: SyncToken): Promise<void> {
    const counted = new Set(rows.map((r) => r.room_nid));
    const uncounted = base.joined.filter((m) => !counted.has(m.room_nid) && ctx.res.rooms.join[m.room_id]).map((m) => m.room_id);
    if (uncounted.length > 0) counts.push(...(await this.d.unreadCounts.counts(this.d.db, ctx.userId, uncounted, to.events, base.ignored.size > 0)));
  }

  private finish(ctx: SyncContext, req: WokenRequest, base: WaitBase, to: SyncToken, counts: CountRow[]): { res: SyncResponse; base: WaitBase } {
    applyUnreadCounts(ctx, counts);
    const next = maxToken(req.since, to);
    ctx.res.next_batch = formatSyncToken(next);
    return { res: ctx.res, base: { next, joined: base.joined, ignored: base.ignored } };
  }
}

/** answerFromMemory's word that the full read must answer. */
const FULL_READ = Symbol('full read');

function fullRead(tally: WokenTally): undefined {
  tally.fullRead++;
  return undefined;
}
