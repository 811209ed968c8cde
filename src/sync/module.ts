// Builds the sync domain (notifier, typing, presence, account data, receipts, push, /sync) from
// the services it reads, and hooks it to the rooms and keys modules. server.ts calls this once;
// keeping the wiring here keeps the composition root's edit small.
import type { PratConfig } from '../config/schema.js';
import { getRoomVersion } from '../core/room-versions.js';
import type { Database, Queryable } from '../db/pool.js';
import type { RouteTable } from '../http/routes.js';
import type { KeysService, RoomMembershipView } from '../keys/service.js';
import type { ToDeviceService } from '../keys/to-device.js';
import type { Logger } from '../logger.js';
import { PushDelivery } from '../push/delivery.js';
import { NotificationsService } from '../push/notifications.js';
import { PusherService } from '../push/pushers.js';
import { registerPushRoutes } from '../push/routes.js';
import { AUTH_CHANNEL } from '../accounts/token-cache.js';
import { REDACTIONS_CHANNEL } from '../rooms/service.js';
import { PUSH_RULES_CHANNEL } from '../push/rules-cache.js';
import { PushService } from '../push/service.js';
import { UnreadCounts } from '../push/unread-counts.js';
import type { PushEvaluator } from '../rooms/context.js';
import { Lru } from '../rooms/lru.js';
import type { RoomService } from '../rooms/service.js';
import { AccountDataService } from './account-data.js';
import { KEY_FIGURES_CHANNEL, KeyFiguresCache } from './key-figures-cache.js';
import { Notifier } from './notifier.js';
import { PresenceService } from './presence.js';
import { RecentWrites } from './recent-writes.js';
import { ReceiptService } from './receipts.js';
import type { RoomsView } from './rooms-view.js';
import { registerSyncRoutes } from './routes.js';
import { SyncService } from './service.js';
import * as roomsSql from './store/rooms.js';
import { AccountDataStream } from './streams/account-data.js';
import { DeviceListsStream, ToDeviceStream } from './streams/keys.js';
import { PresenceStream } from './streams/presence.js';
import { ReceiptsStream } from './streams/receipts.js';
import { RoomsStream } from './streams/rooms.js';
import { TypingStream } from './streams/typing.js';
import { parseSyncToken } from './token.js';
import { TypingService } from './typing.js';

export interface SyncModule {
  notifier: Notifier;
  typing: TypingService;
  presence: PresenceService;
  accountData: AccountDataService;
  receipts: ReceiptService;
  push: PushService;
  notifications: NotificationsService;
  pushers: PusherService;
  delivery: PushDelivery;
  sync: SyncService;
  roomsView: RoomsView;
  /** The devices' key figures a woken long-poll answered from memory takes. */
  keyFigures: KeyFiguresCache;
  start(): Promise<void>;
  close(): Promise<void>;
  registerRoutes(routes: RouteTable): void;
}

/** The thread an event belongs to ('' for the main timeline). */
export function threadOf(content: Record<string, unknown>): string {
  const rel = content['m.relates_to'];
  if (typeof rel === 'object' && rel !== null) {
    const r = rel as Record<string, unknown>;
    if (r['rel_type'] === 'm.thread' && typeof r['event_id'] === 'string') return r['event_id'];
  }
  return '';
}

/** Whom a new event concerns: the room's members, and a membership change's target even before they are in the room's waiter set. */
function eventTarget(e: { room_id: string; type: string; state_key?: string }): { roomId: string; userIds: string[] } {
  return { roomId: e.room_id, userIds: e.type === 'm.room.member' && typeof e.state_key === 'string' ? [e.state_key] : [] };
}

export const roomsView: RoomsView = {
  membership: (db, roomId, userId) => roomsSql.membershipIn(db, roomId, userId),
  async eventPosition(db, roomId, eventId) {
    const row = await roomsSql.eventInRoom(db, roomId, eventId);
    if (!row) return null;
    const ev = JSON.parse(row.json) as { content?: Record<string, unknown> };
    return { stream: row.stream_ordering, threadId: threadOf(ev.content ?? {}) };
  },
  async usersSharingRooms(db, userId) {
    const users = await roomsSql.usersSharingRooms(db, userId);
    return users.includes(userId) ? users : [...users, userId];
  },
  joinedRooms: (db, userId) => roomsSql.joinedRooms(db, userId),
};

/** Users who started or stopped sharing a room with `userId` between two room positions. */
export async function membershipChanges(db: Queryable, userId: string, from: number, to: number): Promise<{ joined: string[]; left: string[] }> {
  if (to <= from) return { joined: [], left: [] };
  const joined: string[] = [];
  const left: string[] = [];
  for (const c of await roomsSql.membershipChangesSharing(db, userId, from, to)) (c.shares_now ? joined : left).push(c.user_id);
  return { joined, left };
}

export function buildSync(opts: {
  config: PratConfig;
  db: Database;
  databaseUrl: string;
  log: Logger;
  rooms: RoomService;
  keys: KeysService;
  toDevice: ToDeviceService;
  shutdown: AbortSignal;
}): SyncModule {
  const { db, log, config } = opts;
  const notifier = new Notifier(db, opts.databaseUrl, log.child({ component: 'notifier' }));
  const typing = new TypingService(db, notifier, log.child({ component: 'typing' }));
  const accountData = new AccountDataService(db, notifier);
  const presence = new PresenceService(db, notifier, config.presence.enabled, roomsView.usersSharingRooms);
  const receipts = new ReceiptService(db, notifier, roomsView, accountData);
  const push = new PushService(db, accountData);
  notifier.onChannel(PUSH_RULES_CHANNEL, (userId) => push.rulesChanged(userId));
  // The notifier's LISTEN connection also carries the database's announcements for the caches
  // of other modules (tokens, redactions).
  notifier.onChannel(AUTH_CHANNEL, (userId) => opts.rooms.deps.accounts.authChanged(userId));
  notifier.onChannel(REDACTIONS_CHANNEL, (payload) => opts.rooms.redactedElsewhere(payload));
  accountData.computed.set('m.push_rules', async (tx, userId) => push.pushRulesContent(tx, userId));
  const notifications = new NotificationsService(db, () => opts.rooms.deps);
  // Pushers: delivery wakes on the events stream (after push actions commit); a logged-out or
  // deleted device and a deactivated account take their pushers along.
  const pushers = new PusherService(db);
  const delivery = new PushDelivery(db, () => opts.rooms.deps, config, log.child({ component: 'push_delivery' }));
  pushers.onChange = delivery.onPushersChanged;
  notifier.listeners.push(delivery.onNotify);
  opts.rooms.deps.accounts.devicesDeletedListeners.push(pushers.onDevicesDeleted);
  opts.rooms.deps.accounts.deactivationListeners.push(pushers.onDeactivated);
  // Remembers counts between syncs: each sync counts only what arrived since the last.
  const unreadCounts = new UnreadCounts();
  // A woken long-poll answers from memory when this process wrote everything since its base.
  const recentWrites = new RecentWrites();
  const keyFigures = new KeyFiguresCache();
  opts.keys.keyFiguresListeners.push((devices) => {
    for (const d of devices) keyFigures.changed(d.userId, d.deviceId);
  });
  notifier.onChannel(KEY_FIGURES_CHANNEL, (payload) => keyFigures.announced(payload));
  notifier.reconnectListeners.push(() => keyFigures.clear());
  const sync = new SyncService({
    db,
    notifier,
    providers: [
      // The rooms stream runs first: it settles which rooms are joined for the others.
      new RoomsStream(opts.rooms.deps),
      new AccountDataStream((tx, userId) => push.pushRulesContent(tx, userId)),
      new ReceiptsStream(),
      new TypingStream(typing),
      new PresenceStream(config.presence.enabled, roomsView.usersSharingRooms),
      new ToDeviceStream(opts.keys, opts.toDevice),
      new DeviceListsStream(opts.keys, membershipChanges, roomsView.usersSharingRooms),
    ],
    presence,
    accountData,
    unreadCounts,
    memory: { recent: recentWrites, keyFigures, heardOf: (stream) => notifier.heardOf(stream) },
    ackToDevice: (userId, deviceId, upTo) => opts.toDevice.deleteToDeviceUpTo(userId, deviceId, upTo),
    log: log.child({ component: 'sync' }),
  });

  // Keys learns who shares rooms from here (device lists, /keys/changes).
  const keysView: RoomMembershipView = {
    usersSharingRooms: (userId) => roomsView.usersSharingRooms(db, userId),
    // No `to` token: up to now.
    membershipChanges: async (userId, fromToken, toToken) =>
      membershipChanges(db, userId, parseSyncToken(fromToken).events, toToken === undefined ? await roomsSql.maxStreamOrdering(db) : parseSyncToken(toToken).events),
  };
  opts.keys.membership = keysView;
  // To-device: the recipients. Device lists: everyone who shares a room with the changed users.
  const onKeysChange = (change: { stream: 'toDevice' | 'deviceLists'; position: number; userIds: string[] }) => {
    if (change.stream === 'toDevice') {
      notifier.notify('toDevice', change.position, { userIds: change.userIds });
      return;
    }
    void Promise.all(change.userIds.map((u) => roomsView.usersSharingRooms(db, u)))
      .then((lists) => notifier.notify('deviceLists', change.position, { userIds: [...new Set(lists.flat())] }))
      .catch((err) => log.warn({ err }, 'device list fan-out failed'));
  };
  opts.keys.streamListeners.push(onKeysChange);
  opts.toDevice.streamListeners.push(onKeysChange);

  opts.rooms.deps.pushEvaluator = pushEvaluator(push, config.server_name, opts.rooms, log);
  // The event's write statement sends its NOTIFY (one commit for both).
  opts.rooms.deps.announcer = (e) => notifier.announcement('events', eventTarget(e));
  opts.rooms.onEventsPersisted((events, span) => {
    // Recorded before the waiters wake: they may answer from it.
    recentWrites.record(events, span);
    const suffix = `:${config.server_name}`;
    for (const p of events) {
      const e = p.event;
      // Sending is activity: the sender is online and active (presence idle timer).
      if (e.sender.endsWith(suffix)) presence.markActive(e.sender).catch((err) => log.warn({ err }, 'could not mark presence active'));
      const target = eventTarget(e);
      if (p.announced) notifier.announced('events', p.stream, target);
      else notifier.notify('events', p.stream, target);
    }
  });

  return {
    notifier,
    typing,
    presence,
    accountData,
    receipts,
    push,
    notifications,
    pushers,
    delivery,
    sync,
    roomsView,
    keyFigures,
    async start() {
      await notifier.start();
      presence.start();
      await delivery.start();
    },
    async close() {
      presence.stop();
      typing.close();
      await delivery.close();
      await notifier.close();
    },
    registerRoutes(routes) {
      registerSyncRoutes(routes, { db, sync, accountData, presence, typing, receipts, rooms: roomsView, shutdown: opts.shutdown });
      registerPushRoutes(routes, push, notifications, pushers);
    },
  };
}

/**
 * Evaluates a new event's push rules for the room's local members (the sender excluded), under
 * the room's lock: the outcome is written with the event, so a sync woken by it sees the counts.
 * Members come from the room's current state, cached by its snapshot id (a snapshot never
 * changes, so the cache is right in every process).
 */
function pushEvaluator(push: PushService, serverName: string, rooms: RoomService, log: Logger): PushEvaluator {
  const suffix = `:${serverName}`;
  const membersAt = new Lru<number, Map<string, string | null>>(200_000, (m) => m.size + 1);
  // Each room's last member list, to derive the next one from (a state change rarely touches
  // more than one member; re-reading a big room's members for each would cost O(members)).
  const lastOfRoom = new Lru<string, { snapshot: number; members: Map<string, string | null> }>(10_000);
  // The local members of a member list (lists are shared between events until the next change).
  const locals = new WeakMap<Map<string, string | null>, Map<string, string | null>>();
  const localOf = (members: Map<string, string | null>) => {
    let local = locals.get(members);
    if (!local) {
      local = new Map([...members].filter(([u]) => u.endsWith(suffix)));
      locals.set(members, local);
    }
    return local;
  };
  const evaluate: PushEvaluator = async (tx, e, at) => {
    let members = at.currentSnapshot === null ? undefined : membersAt.get(at.currentSnapshot);
    if (!members) {
      const last = lastOfRoom.get(e.room_id);
      if (last && at.currentSnapshot !== null) members = await membersAfter(tx, rooms.deps, last, at.currentSnapshot);
      members ??= new Map((await roomsSql.joinedMembersOf(tx, e.room_id)).map((m) => [m.user_id, m.displayname]));
      if (at.currentSnapshot !== null) membersAt.set(at.currentSnapshot, members);
    }
    if (at.currentSnapshot !== null) lastOfRoom.set(e.room_id, { snapshot: at.currentSnapshot, members });
    const local = localOf(members);
    if (local.size === 0 || (local.size === 1 && local.has(e.sender))) return [];
    const levels = await powerLevelsAt(tx, rooms, at.stateBefore, e.sender);
    return push.evaluateEvent(
      tx,
      { ...(e as unknown as Record<string, unknown>), type: e.type, sender: e.sender, room_id: e.room_id, content: e.content, event_id: e.event_id, ...(typeof e.state_key === 'string' ? { state_key: e.state_key } : {}) },
      threadOf(e.content),
      local,
      { memberCount: members.size, senderPowerLevel: levels.sender, notificationLevels: levels.notifications },
    );
  };
  return async (tx, e, at) => {
    try {
      return await evaluate(tx, e, at);
    } catch (err) {
      // A failed statement has aborted the transaction: the send fails and may be retried. Any
      // other failure (a rule evaluation bug) must not stop the room: the event goes without counts.
      if (typeof (err as { code?: unknown }).code === 'string') throw err;
      log.error({ err, eventId: e.event_id }, 'push rule evaluation failed');
      return [];
    }
  };
}

/** At most this many state entries may differ for a member list to be derived, not read. */
const MAX_DERIVED_CHANGES = 64;

/**
 * The joined members (and display names) at `snapshot`, derived from those at an earlier
 * snapshot of the room and the member events that differ between the two states; undefined
 * when too much differs. Both states are in the state cache, so this is a walk in memory.
 */
async function membersAfter(
  tx: Queryable,
  d: RoomService['deps'],
  from: { snapshot: number; members: Map<string, string | null> },
  snapshot: number,
): Promise<Map<string, string | null> | undefined> {
  const [a, b] = [await d.state.load(tx, from.snapshot), await d.state.load(tx, snapshot)];
  const changed = new Map<number, number>(); // state key nid -> event nid at `snapshot` (0: none)
  for (const [k, v] of b) {
    if (a.get(k) !== v) changed.set(k, v);
    if (changed.size > MAX_DERIVED_CHANGES) return undefined;
  }
  for (const k of a.keys()) if (!b.has(k)) changed.set(k, 0);
  if (changed.size > MAX_DERIVED_CHANGES) return undefined;
  const pairs = await d.state.keyPairsOf(tx, changed.keys());
  const memberKeys = [...changed.keys()].filter((k) => pairs.get(k)?.[0] === 'm.room.member');
  if (memberKeys.length === 0) return from.members;
  const events = await d.events.byNids(tx, memberKeys.map((k) => changed.get(k)!).filter((n) => n !== 0));
  const members = new Map(from.members);
  for (const k of memberKeys) {
    const userId = pairs.get(k)![1];
    const content = events.get(changed.get(k)!)?.event.content;
    if (content?.['membership'] === 'join') members.set(userId, typeof content['displayname'] === 'string' ? content['displayname'] : null);
    else members.delete(userId);
  }
  return members;
}

async function powerLevelsAt(db: Queryable, rooms: RoomService, snapshot: number | null, sender: string): Promise<{ sender: number; notifications: Record<string, number> }> {
  const d = rooms.deps;
  if (snapshot == null) return { sender: 0, notifications: {} };
  const state = await d.state.load(db, snapshot);
  const stateContent = async (type: string) => {
    const key = await d.state.keyNid(db, type, '');
    const nid = key === undefined ? undefined : state.get(key);
    return nid === undefined ? undefined : (await d.events.one(db, nid))?.event;
  };
  const create = await stateContent('m.room.create');
  const version = getRoomVersion(typeof create?.content['room_version'] === 'string' ? (create.content['room_version'] as string) : '1');
  // v12: the creators (create sender and additional_creators) outrank every power level.
  const extra = create?.content['additional_creators'];
  if (version?.privilegedCreators && (create?.sender === sender || (Array.isArray(extra) && extra.includes(sender)))) {
    return { sender: Number.POSITIVE_INFINITY, notifications: levelsOf((await stateContent('m.room.power_levels'))?.content['notifications']) };
  }
  const pl = (await stateContent('m.room.power_levels'))?.content;
  // Without a power levels event the creator has 100 and everyone else 0 (the auth rules).
  if (!pl) return { sender: create?.sender === sender ? 100 : 0, notifications: {} };
  const users = (pl['users'] ?? {}) as Record<string, unknown>;
  const level = asLevel(users[sender]) ?? asLevel(pl['users_default']) ?? 0;
  return { sender: level, notifications: levelsOf(pl['notifications']) };
}

/** A power level: an integer, or (before room version 10) a string holding one. */
function asLevel(v: unknown): number | undefined {
  if (typeof v === 'number' && Number.isFinite(v)) return v;
  if (typeof v === 'string' && /^\s*[+-]?\d+\s*$/.test(v)) return Number(v);
  return undefined;
}

function levelsOf(v: unknown): Record<string, number> {
  const out: Record<string, number> = {};
  if (typeof v === 'object' && v !== null) for (const [k, x] of Object.entries(v)) if (asLevel(x) !== undefined) out[k] = asLevel(x)!;
  return out;
}
