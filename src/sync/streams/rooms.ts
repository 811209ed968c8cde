// The room stream (room events at the global stream_ordering): rooms.join timelines and state,
// rooms.invite, rooms.leave, rooms.knock and summaries. Reads the rooms schema read-only, in
// bulk (store/rooms.ts), and shapes events with the rooms module's serializer.
//
// Per room the plan is one of:
//  - full: an initial sync, a room joined since `since`, or full_state: the last `limit` events
//    and the state at the start of that timeline;
//  - incremental: events in (since, to]; when more than `limit`, the state between `since` and
//    the start of the timeline (so the client's state stays right across the gap).
// A left room's timeline stops at the leave. History visibility is checked for events older
// than the user's current membership (newer ones they were in the room for).
import { getRoomVersion, type RoomVersion } from '../../core/room-versions.js';
import type { Queryable } from '../../db/pool.js';
import type { RoomDeps } from '../../rooms/context.js';
import type { StoredEvent } from '../../rooms/events.js';
import { serializeEvents } from '../../rooms/read.js';
import { applyEventFields, DEFAULT_TIMELINE_LIMIT, MAX_TIMELINE_LIMIT, roomAllowed, roomEventAllowed } from '../filter.js';
import { LazyMembersCache, type DeviceMembers } from '../lazy-members.js';
import { LATEST_SQL } from '../store/positions.js';
import * as sql from '../store/rooms.js';
import { formatSyncToken } from '../token.js';
import { joinedRoom, type StreamProvider, type SyncContext } from './types.js';

/** The stripped state an invite or knock carries (the spec's recommended list, create included). */
const STRIPPED_TYPES = new Set(['m.room.create', 'm.room.join_rules', 'm.room.canonical_alias', 'm.room.avatar', 'm.room.name', 'm.room.encryption', 'm.room.topic']);

interface Plan {
  m: sql.MembershipRow;
  section: 'join' | 'leave';
  full: boolean;
  from: number;
  to: number;
}

type StateNids = ReadonlyMap<number, number>;

export class RoomsStream implements StreamProvider {
  readonly name = 'events' as const;
  readonly latestSql = LATEST_SQL.events;

  constructor(
    private readonly d: RoomDeps,
    /** Member events already sent per device (lazy_load_members without include_redundant_members). */
    private readonly lazyMembers = new LazyMembersCache(),
  ) {}

  latest(tx: Queryable): Promise<number> {
    return sql.maxStreamOrdering(tx);
  }

  full(ctx: SyncContext): Promise<void> {
    return this.build(ctx, undefined, ctx.to.events);
  }

  between(ctx: SyncContext, from: number, to: number): Promise<void> {
    return this.build(ctx, from, to);
  }

  /** Events from rows read elsewhere (the woken statement), by nid. */
  loadRows(db: Queryable, rows: sql.TimelineRow[]): Map<number, StoredEvent> {
    return this.d.events.fromRows(db, rows);
  }

  /**
   * A woken long-poll (src/sync/woken.ts): the user's memberships are those `joined` of the
   * empty answer at `from`, and `rows` are every event of those rooms in (from, ctx.to.events].
   */
  async continueJoined(
    ctx: SyncContext,
    joined: sql.MembershipRow[],
    from: number,
    rows: sql.TimelinePlace[],
    /** The rows' events (loadRows), loaded once by the caller. */
    loaded: Map<number, StoredEvent>,
  ): Promise<void> {
    ctx.joinedMemberships = joined;
    ctx.joinedRooms = joined.map((m) => m.room_id);
    const withEvents = new Set(rows.map((r) => r.room_nid));
    const plans: Plan[] = [];
    for (const m of joined) {
      if (withEvents.has(m.room_nid) && roomAllowed(ctx.filter.room, m.room_id)) plans.push({ m, section: 'join', full: false, from, to: ctx.to.events });
    }
    await this.timelines(ctx, plans, from, { rows, loaded });
  }

  private async build(ctx: SyncContext, from: number | undefined, to: number): Promise<void> {
    const tx = ctx.tx;
    const memberships = await sql.membershipsOf(tx, ctx.userId, to);
    ctx.joinedMemberships = memberships.filter((m) => m.membership === 'join');
    ctx.joinedRooms = ctx.joinedMemberships.map((m) => m.room_id);
    const roomFilter = ctx.filter.room;
    const includeLeave = roomFilter?.include_leave === true;
    const plans: Plan[] = [];
    const stripped: sql.MembershipRow[] = [];
    for (const m of memberships) {
      if (!roomAllowed(roomFilter, m.room_id)) continue;
      const changed = from === undefined || m.stream_ordering > from;
      switch (m.membership) {
        case 'join': {
          const newly = from !== undefined && changed && !(await this.wasJoinedAt(tx, m, from));
          if (newly) ctx.newlyJoined.add(m.room_id);
          const full = from === undefined || newly || ctx.fullState;
          plans.push({ m, section: 'join', full, from: from === undefined || newly ? 0 : from, to });
          break;
        }
        case 'invite':
        case 'knock':
          if (changed) stripped.push(m);
          break;
        case 'leave':
        case 'ban':
          if (m.forgotten) break;
          if (from === undefined ? includeLeave : changed) {
            plans.push({ m, section: 'leave', full: from === undefined || ctx.fullState, from: from ?? 0, to: m.stream_ordering });
          }
          break;
      }
    }
    // Rooms with nothing new (from = to, not full) need no timeline queries at all.
    await this.timelines(ctx, plans.filter((p) => p.full || p.from < p.to), from);
    await this.strippedSections(ctx, stripped);
  }

  /** Whether the user's membership at position `pos` was already join (profile changes re-join). */
  private async wasJoinedAt(tx: Queryable, m: sql.MembershipRow, pos: number): Promise<boolean> {
    let nid: number | null = m.event_nid;
    for (let steps = 0; nid !== null && steps < 50; steps++) {
      const e: StoredEvent | undefined = await this.d.events.one(tx, nid);
      if (!e) return false;
      if ((e.stream ?? 0) <= pos) return e.event.content['membership'] === 'join';
      nid = e.replacesNid;
    }
    return false;
  }

  /** `read`: every event of the plans' ranges, already read and loaded (continueJoined). */
  private async timelines(
    ctx: SyncContext,
    plans: Plan[],
    since: number | undefined,
    read?: { rows: sql.TimelinePlace[]; loaded: Map<number, StoredEvent> },
  ): Promise<void> {
    if (plans.length === 0) return;
    const tx = ctx.tx;
    const tf = ctx.filter.room?.timeline;
    const limit = Math.min(tf?.limit ?? DEFAULT_TIMELINE_LIMIT, MAX_TIMELINE_LIMIT);
    const fetched = read || limit === 0 ? [] : await sql.timelineSlices(tx, plans.map((p) => ({ roomNid: p.m.room_nid, from: p.from, to: p.to })), limit + 1);
    const slices: sql.TimelinePlace[] = limit === 0 ? [] : (read?.rows ?? fetched);
    const byRoom = new Map<number, { event_nid: number; stream_ordering: number }[]>();
    // (Rows in a stream range: stream_ordering is set.)
    for (const s of slices) (byRoom.get(s.room_nid) ?? byRoom.set(s.room_nid, []).get(s.room_nid)!).push({ event_nid: s.event_nid, stream_ordering: s.stream_ordering! });
    const loaded = read?.loaded ?? this.d.events.fromRows(tx, fetched);
    // The state at `since` of incremental rooms whose timeline was cut (for the state delta).
    const needSinceState: { roomNid: number; pos: number }[] = [];
    const prepared: { plan: Plan; events: StoredEvent[]; limited: boolean; version: RoomVersion }[] = [];
    for (const plan of plans) {
      const version = getRoomVersion(plan.m.version);
      if (!version) continue;
      const rows = (byRoom.get(plan.m.room_nid) ?? []).sort((a, b) => a.stream_ordering - b.stream_ordering);
      const limited = rows.length > limit || (limit === 0 && plan.full);
      const kept = rows.slice(Math.max(0, rows.length - limit));
      const events = kept.map((r) => loaded.get(r.event_nid)).filter((e): e is StoredEvent => e !== undefined);
      prepared.push({ plan, events, limited, version });
      if (!plan.full && (limited || (ctx.useStateAfter && events.length > 0)) && since !== undefined) needSinceState.push({ roomNid: plan.m.room_nid, pos: since });
    }
    const sinceEvents = await sql.lastEventsAt(tx, needSinceState);
    // Rooms with an empty timeline: their state is the state at `to` (or at the leave).
    const emptyFull = prepared.filter((p) => p.plan.full && p.events.length === 0).map((p) => ({ roomNid: p.plan.m.room_nid, pos: p.plan.to }));
    const lastAt = await sql.lastEventsAt(tx, emptyFull);
    const summaryRooms: number[] = [];
    const reader = {
      userId: ctx.userId,
      deviceId: ctx.deviceId,
      ...(read ? { txnIds: new Map(read.rows.filter((r) => r.txn_id != null).map((r) => [r.event_nid, r.txn_id!])) } : {}),
    };
    const federationFormat = ctx.filter.event_format === 'federation';
    const fields = ctx.filter.event_fields;
    const shape = async (events: StoredEvent[], version: RoomVersion) =>
      federationFormat
        ? events.map((e) => applyEventFields(e.event as unknown as Record<string, unknown>, fields))
        : (await serializeEvents(this.d, tx, events, version, reader)).map((e) => applyEventFields(e as unknown as Record<string, unknown>, fields));

    // Phase one, per room: visible timeline and which state entries to send.
    const built: { plan: Plan; version: RoomVersion; events: StoredEvent[]; limited: boolean; timeline: StoredEvent[]; stateNids: number[] }[] = [];
    for (const { plan, events, limited, version } of prepared) {
      const roomId = plan.m.room_id;
      // History visibility for events from before the user's current membership.
      const visible: StoredEvent[] = [];
      for (const e of events) {
        if ((e.stream ?? 0) >= plan.m.stream_ordering || (await this.maySee(tx, e, ctx.userId, plan.m.membership === 'join'))) visible.push(e);
      }
      const timeline = visible.filter(
        (e) =>
          !(ctx.ignored.has(e.event.sender) && e.event.state_key === undefined) &&
          roomEventAllowed(ctx.filter.room?.timeline, { type: e.event.type, sender: e.event.sender, room_id: roomId, content: e.event.content }),
      );
      // Without use_state_after: the state at the start of the timeline (full), or what changed
      // between `since` and that start (cut timeline). With it: the state at the end of the
      // timeline (full), or everything that changed since `since` up to that end.
      let stateNids: number[] = [];
      const startSnapshot = events.length > 0 ? events[0]!.stateBefore : undefined;
      const endSnapshot = events.length > 0 ? events.at(-1)!.stateAfter : undefined;
      const fullAt = async (snapshot: number | null | undefined) => {
        if (events.length === 0) {
          const last = lastAt.get(plan.m.room_nid);
          snapshot = last === undefined ? null : ((await this.d.events.one(tx, last))?.stateAfter ?? null);
        }
        return snapshot != null ? [...(await this.d.state.load(tx, snapshot)).values()] : [];
      };
      const deltaFromSince = async (to: number) => {
        const sinceNid = sinceEvents.get(plan.m.room_nid);
        const sinceSnap = sinceNid === undefined ? null : ((await this.d.events.one(tx, sinceNid))?.stateAfter ?? null);
        const before: StateNids = sinceSnap == null ? new Map() : await this.d.state.load(tx, sinceSnap);
        const out: number[] = [];
        for (const [k, v] of await this.d.state.load(tx, to)) if (before.get(k) !== v) out.push(v);
        return out;
      };
      if (ctx.useStateAfter) {
        if (plan.full) stateNids = await fullAt(endSnapshot);
        else if (endSnapshot != null) stateNids = await deltaFromSince(endSnapshot);
      } else if (plan.full) {
        stateNids = await fullAt(startSnapshot);
      } else if (limited && startSnapshot != null) {
        stateNids = await deltaFromSince(startSnapshot);
      }
      // Lazy-loaded members in an incremental sync: the member events of the timeline's senders
      // (and the user's own) as of the timeline's start, unless the timeline carries them. Those
      // the device was already sent are dropped below unless include_redundant_members.
      if (ctx.filter.room?.state?.lazy_load_members && !plan.full && !ctx.useStateAfter && startSnapshot != null && timeline.length > 0) {
        const start = await this.d.state.load(tx, startSnapshot);
        const inTimeline = new Set(timeline.filter((e) => e.event.type === 'm.room.member').map((e) => e.event.state_key));
        const have = new Set(stateNids);
        for (const sender of new Set([...timeline.map((e) => e.event.sender), ctx.userId])) {
          if (inTimeline.has(sender)) continue;
          const key = await this.d.state.keyNid(tx, 'm.room.member', sender);
          const nid = key === undefined ? undefined : start.get(key);
          if (nid !== undefined && !have.has(nid)) {
            stateNids.push(nid);
            have.add(nid);
          }
        }
      }
      built.push({ plan, version, events, limited, timeline, stateNids });
    }

    // Phase two, in bulk: one load of every room's state events, one serialization per room
    // version (transaction ids, redactions and replaced state looked up once for all rooms).
    const stateLoaded = await this.d.events.byNids(tx, built.flatMap((b) => b.stateNids), { fresh: true });
    const perRoomState = built.map((b) => this.filterState(ctx, stateLoaded, b.stateNids, b.plan.m.room_id, b.timeline));
    // Without include_redundant_members, an incremental room leaves out the member events this
    // device already has (a full room, as after a join or full_state, sends them all again).
    const sentMembers = this.sentMembers(ctx, since);
    const nextPos = Math.max(since ?? 0, ctx.to.events);
    // What the client acknowledged is its token (a woken long-poll reads from a later `since`).
    const acked = ctx.since?.events ?? since ?? 0;
    if (sentMembers && since !== undefined) {
      built.forEach((b, i) => {
        if (b.plan.full) return;
        perRoomState[i] = perRoomState[i]!.filter(
          (e) => !(e.event.type === 'm.room.member' && sentMembers.has(b.plan.m.room_id, e.event.state_key ?? '', e.nid, acked)),
        );
      });
    }
    const shaped = new Map<number, unknown>();
    const byVersion = new Map<string, { version: RoomVersion; events: StoredEvent[] }>();
    built.forEach((b, i) => {
      const group = byVersion.get(b.version.id) ?? byVersion.set(b.version.id, { version: b.version, events: [] }).get(b.version.id)!;
      group.events.push(...b.timeline, ...perRoomState[i]!);
    });
    for (const { version, events } of byVersion.values()) {
      const out = await shape(events, version);
      events.forEach((e, i) => shaped.set(e.nid, out[i]));
    }

    // Per summarised room, what a hero's member event needs (lazy loading sends those too).
    const heroContext = new Map<number, { plan: Plan; version: RoomVersion; members: Set<string>; state: { events: unknown[] } }>();
    built.forEach(({ plan, events, limited, timeline, version }, i) => {
      const roomId = plan.m.room_id;
      const stateEvents = perRoomState[i]!;
      const stateJson = { events: stateEvents.map((e) => shaped.get(e.nid)) };
      const timelineJson = {
        events: timeline.map((e) => shaped.get(e.nid)),
        limited,
        prev_batch: this.prevBatch(ctx, events.length > 0 ? (events[0]!.stream ?? 1) - 1 : plan.to),
      };
      const memberChange = stateEvents.some((e) => e.event.type === 'm.room.member') || timeline.some((e) => e.event.type === 'm.room.member');
      if (plan.section === 'join' && !plan.full && timelineJson.events.length === 0 && stateJson.events.length === 0) return;
      if (sentMembers) {
        for (const e of [...stateEvents, ...timeline]) {
          if (e.event.type === 'm.room.member' && e.event.state_key !== undefined) sentMembers.record(roomId, e.event.state_key, e.nid, nextPos);
        }
      }
      if (plan.section === 'join') {
        const j = joinedRoom(ctx, roomId);
        j.timeline = timelineJson;
        if (ctx.useStateAfter) j.state_after = stateJson;
        else j.state = stateJson;
        if (plan.full || memberChange) {
          summaryRooms.push(plan.m.room_nid);
          const members = new Set([...stateEvents, ...timeline].filter((e) => e.event.type === 'm.room.member').map((e) => e.event.state_key ?? ''));
          heroContext.set(plan.m.room_nid, { plan, version, members, state: stateJson });
        }
      } else {
        ctx.res.rooms.leave[roomId] = {
          timeline: timelineJson,
          ...(ctx.useStateAfter ? { state_after: stateJson } : { state: stateJson }),
          account_data: { events: [] },
        };
      }
    });
    const summarised = summaryRooms.length === 0 ? [] : await sql.roomsByNid(tx, summaryRooms);
    const heroes = await this.summaries(ctx, summaryRooms, new Map(summarised.map((r) => [r.room_nid, r])));
    if (ctx.filter.room?.state?.lazy_load_members) await this.heroMembers(ctx, heroes, heroContext, sentMembers, since, nextPos, shape);
  }

  /**
   * Lazy loading: the member events of a room's heroes, so the client can name the room, unless
   * this response or (incremental, without redundant members) an earlier one carries them
   * (Synapse's compute_summary). Current membership events: a hero whose membership changed in
   * the timeline is already there.
   */
  private async heroMembers(
    ctx: SyncContext,
    heroes: Map<number, string[]>,
    rooms: Map<number, { plan: Plan; version: RoomVersion; members: Set<string>; state: { events: unknown[] } }>,
    sentMembers: DeviceMembers | undefined,
    since: number | undefined,
    nextPos: number,
    shape: (events: StoredEvent[], version: RoomVersion) => Promise<unknown[]>,
  ): Promise<void> {
    const wanted: { roomNid: number; userId: string }[] = [];
    for (const [nid, users] of heroes) {
      const r = rooms.get(nid);
      if (r) for (const u of users) if (!r.members.has(u)) wanted.push({ roomNid: nid, userId: u });
    }
    if (wanted.length === 0) return;
    const rows = await sql.memberEventNids(ctx.tx, wanted);
    const loaded = await this.d.events.byNids(ctx.tx, rows.map((r) => r.event_nid), { fresh: true });
    const sf = ctx.filter.room?.state;
    const byRoom = new Map<number, StoredEvent[]>();
    for (const row of rows) {
      const r = rooms.get(row.room_nid)!;
      const e = loaded.get(row.event_nid);
      if (!e || !roomEventAllowed(sf, { type: e.event.type, sender: e.event.sender, room_id: r.plan.m.room_id, content: e.event.content })) continue;
      if (sentMembers && since !== undefined && !r.plan.full && sentMembers.has(r.plan.m.room_id, row.user_id, e.nid, since)) continue;
      (byRoom.get(row.room_nid) ?? byRoom.set(row.room_nid, []).get(row.room_nid)!).push(e);
    }
    for (const [nid, events] of byRoom) {
      const r = rooms.get(nid)!;
      r.state.events.push(...(await shape(events, r.version)));
      if (sentMembers) for (const e of events) sentMembers.record(r.plan.m.room_id, e.event.state_key ?? '', e.nid, nextPos);
    }
  }

  /** The device's sent-members record when the filter lazy-loads without redundant members. */
  private sentMembers(ctx: SyncContext, since: number | undefined): DeviceMembers | undefined {
    const sf = ctx.filter.room?.state;
    if (!sf?.lazy_load_members || sf.include_redundant_members === true) return undefined;
    // An initial sync starts a new sequence: the client may have forgotten everything.
    return this.lazyMembers.forDevice(ctx.userId, ctx.deviceId, since === undefined);
  }

  private prevBatch(ctx: SyncContext, eventsPos: number): string {
    return formatSyncToken({ ...ctx.to, events: Math.max(0, eventsPos) });
  }

  /** State filter (types, senders) and lazy-loaded members: only the timeline's senders. */
  private filterState(ctx: SyncContext, loaded: Map<number, StoredEvent>, nids: number[], roomId: string, timeline: StoredEvent[]): StoredEvent[] {
    if (nids.length === 0) return [];
    const sf = ctx.filter.room?.state;
    if (sf?.limit === 0 || (sf?.types !== undefined && sf.types.length === 0)) return [];
    // Synapse's rule, which clients rely on: the syncing user's own member event is always sent.
    const senders = new Set([...timeline.map((e) => e.event.sender), ctx.userId]);
    const out: StoredEvent[] = [];
    for (const nid of nids) {
      const e = loaded.get(nid);
      if (!e) continue;
      if (sf?.lazy_load_members && e.event.type === 'm.room.member' && !senders.has(e.event.state_key ?? '')) continue;
      if (!roomEventAllowed(sf, { type: e.event.type, sender: e.event.sender, room_id: roomId, content: e.event.content })) continue;
      out.push(e);
    }
    return out.sort((a, b) => (a.stream ?? 0) - (b.stream ?? 0));
  }

  /**
   * summary: member counts always; m.heroes only for rooms with neither a name nor a canonical
   * alias (Synapse's compute_summary: clients name such rooms themselves, from the heroes).
   */
  private async summaries(ctx: SyncContext, nids: number[], rooms: Map<number, { room_id: string; current_snapshot: number | null }>): Promise<Map<number, string[]>> {
    if (nids.length === 0) return new Map();
    const named = await this.namedRooms(ctx.tx, nids, rooms);
    const unnamed = nids.filter((n) => !named.has(n));
    const [counts, heroes] = await Promise.all([sql.memberCounts(ctx.tx, nids), sql.heroes(ctx.tx, unnamed, ctx.userId)]);
    for (const nid of nids) {
      const roomId = rooms.get(nid)!.room_id;
      const c = counts.get(nid)!;
      joinedRoom(ctx, roomId).summary = {
        ...(named.has(nid) ? {} : { 'm.heroes': heroes.get(nid) ?? [] }),
        'm.joined_member_count': c.joined,
        'm.invited_member_count': c.invited,
      };
    }
    return heroes;
  }

  /** Rooms whose current state has a non-empty m.room.name or m.room.canonical_alias alias. */
  private async namedRooms(tx: Queryable, nids: number[], rooms: Map<number, { current_snapshot: number | null }>): Promise<Set<number>> {
    const named = new Set<number>();
    const nameKey = await this.d.state.keyNid(tx, 'm.room.name', '');
    const aliasKey = await this.d.state.keyNid(tx, 'm.room.canonical_alias', '');
    if (nameKey === undefined && aliasKey === undefined) return named;
    const wanted = new Map<number, number>(); // event nid -> room nid
    for (const nid of nids) {
      const snapshot = rooms.get(nid)?.current_snapshot;
      if (snapshot == null) continue;
      const state = await this.d.state.load(tx, snapshot);
      for (const key of [nameKey, aliasKey]) {
        const ev = key === undefined ? undefined : state.get(key);
        if (ev !== undefined && ev !== 0) wanted.set(ev, nid);
      }
    }
    if (wanted.size === 0) return named;
    for (const e of (await this.d.events.byNids(tx, wanted.keys(), { fresh: true })).values()) {
      if (e.redactedBy !== null) continue;
      const value = e.event.type === 'm.room.name' ? e.event.content['name'] : e.event.content['alias'];
      if (typeof value === 'string' && value.length > 0) named.add(wanted.get(e.nid)!);
    }
    return named;
  }

  /** The spec's history visibility rules for one event, from the state before it. */
  private async maySee(tx: Queryable, e: StoredEvent, userId: string, joinedNow: boolean): Promise<boolean> {
    if (e.event.type === 'm.room.member' && e.event.state_key === userId) return true;
    const at: StateNids = e.stateBefore == null ? new Map() : await this.d.state.load(tx, e.stateBefore);
    const hvKey = await this.d.state.keyNid(tx, 'm.room.history_visibility', '');
    const hvNid = hvKey === undefined ? undefined : at.get(hvKey);
    const hv = hvNid === undefined ? undefined : (await this.d.events.one(tx, hvNid))?.event.content['history_visibility'];
    const visibility = typeof hv === 'string' ? hv : 'shared';
    if (visibility === 'world_readable') return true;
    const memberKey = await this.d.state.keyNid(tx, 'm.room.member', userId);
    const memberNid = memberKey === undefined ? undefined : at.get(memberKey);
    const memberAt = memberNid === undefined ? undefined : (await this.d.events.one(tx, memberNid))?.event.content['membership'];
    if (memberAt === 'join') return true;
    if (memberAt === 'invite' && (visibility === 'invited' || visibility === 'shared')) return true;
    return visibility === 'shared' && joinedNow;
  }

  /** rooms.invite and rooms.knock: stripped state from the state after the membership event. */
  private async strippedSections(ctx: SyncContext, rows: sql.MembershipRow[]): Promise<void> {
    for (const m of rows) {
      const ev = await this.d.events.one(ctx.tx, m.event_nid);
      if (!ev) continue;
      if (m.membership === 'invite' && ctx.ignored.has(ev.event.sender)) continue;
      const events: unknown[] = [];
      const fromUnsigned = (ev.event as unknown as { unsigned?: Record<string, unknown> }).unsigned?.[m.membership === 'invite' ? 'invite_room_state' : 'knock_room_state'];
      if (ev.stateAfter != null) {
        const state = await this.d.state.load(ctx.tx, ev.stateAfter);
        const pairs = await this.d.state.keyPairsOf(ctx.tx, state.keys());
        const nids = [...state.entries()].filter(([k]) => STRIPPED_TYPES.has(pairs.get(k)?.[0] ?? '')).map(([, v]) => v);
        const loaded = await this.d.events.byNids(ctx.tx, nids);
        for (const e of loaded.values()) events.push(strip(e.event));
      } else if (Array.isArray(fromUnsigned)) {
        events.push(...fromUnsigned);
      }
      events.push(strip(ev.event));
      if (m.membership === 'invite') ctx.res.rooms.invite[m.room_id] = { invite_state: { events } };
      else ctx.res.rooms.knock[m.room_id] = { knock_state: { events } };
    }
  }
}

function strip(e: { type: string; state_key?: string; content: unknown; sender: string }): Record<string, unknown> {
  return { type: e.type, state_key: e.state_key ?? '', content: e.content, sender: e.sender };
}
