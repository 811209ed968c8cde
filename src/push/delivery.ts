// Delivery of push notifications to HTTP push gateways (the Push Gateway API, POST
// /_matrix/push/v1/notify). Reads what to send from event_push_actions after commit: the
// notifier's events stream (this process's changes and the other processes') wakes a scan for
// pushers with rows past their position, and each such pusher is worked through in order,
// one notification per request, its position advancing as each is handled.
//
// Failures back off (1 s doubling to an hour) and retry the same notification; one failing for a
// day is skipped, so a gateway that comes back is not flooded with stale ones (Synapse's
// HttpPusher). A gateway answering `rejected` with the pushkey removes the pusher. Processes on
// one database take a lease per pusher, so each notification is sent by one of them.
//
// A read receipt that changes a user's unread count sends that count alone (no event), so a
// phone's badge follows reads made elsewhere (Synapse's on_new_receipts); badge updates are
// idempotent and not retried.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { PratConfig } from '../config/schema.js';
import type { Database } from '../db/pool.js';
import type { Logger } from '../logger.js';
import { AddressPolicy } from '../media/preview.js';
import type { RoomDeps } from '../rooms/context.js';
import { postJson } from './gateway-http.js';
import * as pushersStore from './pushers-store.js';
import type { PendingAction, PusherRow } from './pushers-store.js';
import type { Action } from './rules.js';
import { notificationCounts } from './store.js';

export interface DeliveryOptions {
  initialBackoffMs: number;
  maxBackoffMs: number;
  giveUpAfterMs: number;
  /** How long a process owns a pusher's delivery without renewing it. */
  leaseMs: number;
  /** How often pushers are counted and rescanned (catches anything a lost wake-up missed). */
  sweepMs: number;
  requestTimeoutMs: number;
}

const DEFAULTS: DeliveryOptions = {
  initialBackoffMs: 1_000,
  maxBackoffMs: 60 * 60_000,
  giveUpAfterMs: 24 * 60 * 60_000,
  leaseMs: 60_000,
  sweepMs: 30_000,
  requestTimeoutMs: 20_000,
};

const BATCH = 50;

type Outcome = 'sent' | 'failed' | 'removed';

/** set_tweak actions as the gateway's tweaks (a tweak without a value is true: highlight). */
export function tweaksOf(actions: Action[]): Record<string, unknown> {
  const tweaks: Record<string, unknown> = {};
  for (const a of actions) {
    if (typeof a === 'object' && a !== null && typeof (a as { set_tweak?: unknown }).set_tweak === 'string') {
      const t = a as { set_tweak: string; value?: unknown };
      tweaks[t.set_tweak] = t.value === undefined ? true : t.value;
    }
  }
  return tweaks;
}

export class PushDelivery {
  private readonly owner = randomBytes(8).toString('hex');
  private readonly opts: DeliveryOptions;
  private readonly active = new Set<number>();
  /** Kicked while its delivery was running: run again after. */
  private readonly again = new Set<number>();
  private readonly retryTimers = new Map<number, NodeJS.Timeout>();
  private readonly backoff = new Map<number, number>();
  private readonly inflight = new Set<AbortController>();
  private readonly runs = new Set<Promise<void>>();
  private scanning = false;
  private rescan = false;
  /** Room stream position up to which new events were scanned for pushers with work. */
  private eventsSeen: number | undefined;
  /** Receipts stream position up to which badge updates were considered. */
  private receiptsSeen: number | undefined;
  private receiptScan: Promise<void> | undefined;
  private receiptRescan = false;
  /** The unread count each pusher's gateway was last told (badge updates only on change). */
  private readonly badges = new Map<number, number>();
  /** Pushers on the database as last counted (or set here since): no scans while there are none. */
  private knownPushers = 0;
  private sweepTimer: NodeJS.Timeout | undefined;
  private closed = false;
  /** Which addresses gateways may have (push.ip_range_*: private ones refused by default). */
  private readonly policy: AddressPolicy;
  private readonly ca: Buffer[];

  constructor(
    private readonly db: Database,
    private readonly rooms: () => RoomDeps,
    config: Pick<PratConfig, 'push' | 'tls'>,
    private readonly log: Logger,
    opts: Partial<DeliveryOptions> = {},
  ) {
    this.opts = { ...DEFAULTS, ...opts };
    this.policy = new AddressPolicy(config.push.ip_range_allowlist, config.push.ip_range_blocklist);
    this.ca = config.tls.extra_ca_files.map((f) => readFileSync(f));
  }

  async start(): Promise<void> {
    await this.sweep();
    this.sweepTimer = setInterval(() => void this.sweep(), this.opts.sweepMs);
    this.sweepTimer.unref();
  }

  /** Subscribed to the notifier: a change on the events stream may have new push actions. */
  readonly onNotify = (stream: string, position: number): void => {
    if (this.knownPushers === 0) {
      // Nothing to push: the next scan starts from here, not from where the last one stopped.
      if (stream === 'events' && this.eventsSeen !== undefined) this.eventsSeen = Math.max(this.eventsSeen, position);
      return;
    }
    if (stream === 'events') this.scanSoon();
    else if (stream === 'receipts') this.badgesSoon();
  };

  /** A pusher was set in this process. */
  readonly onPushersChanged = (): void => {
    this.knownPushers = Math.max(this.knownPushers, 1);
  };

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.sweepTimer);
    for (const t of this.retryTimers.values()) clearTimeout(t);
    this.retryTimers.clear();
    for (const c of this.inflight) c.abort();
    await Promise.allSettled([...this.runs]);
  }

  /** Every pusher against its own position: a start, and anything the wake-up scans missed. */
  private async sweep(): Promise<void> {
    try {
      this.receiptsSeen ??= await pushersStore.maxReceiptPosition(this.db);
      this.knownPushers = await pushersStore.countPushers(this.db);
      const upTo = await pushersStore.maxStreamOrdering(this.db);
      if (this.knownPushers > 0) for (const id of await pushersStore.pushersWithWork(this.db, upTo)) this.kick(id);
      this.eventsSeen ??= upTo;
    } catch (err) {
      if (!this.closed) this.log.warn({ err }, 'pusher sweep failed');
    }
  }

  /** Finds pushers with work in the new events; wake-ups during a scan coalesce into one more. */
  private scanSoon(): void {
    if (this.closed || this.eventsSeen === undefined) return;
    if (this.scanning) {
      this.rescan = true;
      return;
    }
    this.scanning = true;
    void (async () => {
      try {
        do {
          this.rescan = false;
          const upTo = await pushersStore.maxStreamOrdering(this.db);
          const ids = await pushersStore.pushersWithWorkIn(this.db, this.eventsSeen!, upTo);
          // Positions commit in order: nothing at or below upTo can appear later.
          this.eventsSeen = Math.max(this.eventsSeen!, upTo);
          for (const id of ids) this.kick(id);
        } while (this.rescan && !this.closed);
      } catch (err) {
        if (!this.closed) this.log.warn({ err }, 'pusher scan failed');
      } finally {
        this.scanning = false;
      }
    })();
  }

  /** Badge updates for pushers whose users' read receipts moved; wake-ups coalesce. */
  private badgesSoon(): void {
    if (this.closed || this.receiptsSeen === undefined) return;
    if (this.receiptScan) {
      this.receiptRescan = true;
      return;
    }
    const scan = (async () => {
      try {
        do {
          this.receiptRescan = false;
          const to = await pushersStore.maxReceiptPosition(this.db);
          const ids = await pushersStore.pushersWithNewReceipts(this.db, this.receiptsSeen!, to);
          this.receiptsSeen = Math.max(this.receiptsSeen!, to);
          for (const id of ids) {
            const p = await pushersStore.pusherById(this.db, id);
            if (p && !this.closed) await this.sendBadge(p);
          }
        } while (this.receiptRescan && !this.closed);
      } catch (err) {
        if (!this.closed) this.log.warn({ err }, 'push badge update failed');
      } finally {
        this.receiptScan = undefined;
      }
    })();
    this.receiptScan = scan;
    this.runs.add(scan);
    void scan.finally(() => this.runs.delete(scan));
  }

  private async sendBadge(p: PusherRow): Promise<void> {
    const unread = await this.unreadCount(p.user_id);
    if (this.badges.get(p.id) === unread) return;
    const { url, ...deviceData } = p.data as { url: string } & Record<string, unknown>;
    const notification = { counts: { unread }, devices: [{ app_id: p.app_id, pushkey: p.pushkey, pushkey_ts: Math.floor(p.pushkey_ts / 1000), data: deviceData }] };
    if ((await this.post(url, { notification }, p)) !== undefined) this.badges.set(p.id, unread);
  }

  private kick(id: number): void {
    if (this.closed || this.retryTimers.has(id)) return; // backing off: its timer retries
    if (this.active.has(id)) {
      this.again.add(id);
      return;
    }
    this.active.add(id);
    const run: Promise<void> = this.run(id)
      .catch((err) => {
        if (!this.closed) this.log.warn({ err, pusher: id }, 'push delivery failed');
      })
      .finally(() => {
        this.active.delete(id);
        this.runs.delete(run);
        if (this.again.delete(id)) this.kick(id);
      });
    this.runs.add(run);
  }

  private async run(id: number): Promise<void> {
    const pusher = await pushersStore.claim(this.db, id, this.owner, Date.now(), this.opts.leaseMs);
    if (!pusher) return; // another process is delivering for it, or it was removed
    try {
      await this.deliver(pusher);
    } finally {
      await pushersStore.release(this.db, id, this.owner).catch(() => undefined);
    }
  }

  private async deliver(p: PusherRow): Promise<void> {
    const upTo = await pushersStore.maxStreamOrdering(this.db);
    let pos = p.last_stream_ordering;
    for (;;) {
      const rows = await pushersStore.pendingActions(this.db, p.user_id, pos, upTo, BATCH);
      for (const row of rows) {
        if (this.closed) return;
        // Renews the lease (a slow gateway must not let another process start over).
        if (!(await pushersStore.claim(this.db, p.id, this.owner, Date.now(), this.opts.leaseMs))) return;
        const outcome = await this.sendOne(p, row);
        if (outcome === 'removed') return;
        if (outcome === 'failed') {
          if (this.closed) return; // aborted by shutdown, not the gateway's failure
          const now = Date.now();
          if (p.failing_since === null) {
            p.failing_since = now;
            await pushersStore.setFailingSince(this.db, p.id, now);
          }
          if (now - p.failing_since < this.opts.giveUpAfterMs) {
            this.retryLater(p.id);
            return;
          }
          this.log.warn({ pusher: p.id, eventId: row.event_id }, 'giving up on a push notification');
          p.failing_since = null;
          this.backoff.delete(p.id);
          if (!(await pushersStore.advance(this.db, p.id, row.stream_ordering, null))) return;
        } else {
          p.failing_since = null;
          this.backoff.delete(p.id);
          if (!(await pushersStore.advance(this.db, p.id, row.stream_ordering, Date.now()))) return;
        }
        pos = row.stream_ordering;
      }
      if (rows.length < BATCH) break;
    }
    // Up to the horizon everything is handled: rows already read or from ignored users included.
    await pushersStore.advance(this.db, p.id, upTo, null);
  }

  private retryLater(id: number): void {
    const delay = this.backoff.get(id) ?? this.opts.initialBackoffMs;
    this.backoff.set(id, Math.min(delay * 2, this.opts.maxBackoffMs));
    this.log.info({ pusher: id, delayMs: delay }, 'push gateway failed; retrying later');
    const timer = setTimeout(() => {
      this.retryTimers.delete(id);
      this.kick(id);
    }, delay);
    timer.unref();
    this.retryTimers.set(id, timer);
  }

  private async sendOne(p: PusherRow, row: PendingAction): Promise<Outcome> {
    const d = this.rooms();
    const stored = (await d.events.byIds(this.db, [row.event_id], { fresh: true })).get(row.event_id);
    if (!stored || !row.actions.includes('notify')) return 'sent'; // nothing to tell
    const e = stored.event;
    const tweaks = tweaksOf(row.actions);
    // High priority only for what may ring or highlight (encrypted: unknown, so high), as Synapse.
    const prio = e.type === 'm.room.encrypted' || tweaks['highlight'] === true || tweaks['sound'] !== undefined ? 'high' : 'low';
    // Sent even when 0 (as Synapse): a gateway clears the badge only when told.
    const unread = await this.unreadCount(p.user_id);
    const counts = { counts: { unread } };
    const { url, ...deviceData } = p.data as { url: string } & Record<string, unknown>;
    const device: Record<string, unknown> = { app_id: p.app_id, pushkey: p.pushkey, pushkey_ts: Math.floor(p.pushkey_ts / 1000), data: deviceData };
    let notification: Record<string, unknown>;
    if (p.data['format'] === 'event_id_only') {
      notification = { event_id: e.event_id, room_id: e.room_id, prio, ...counts };
    } else {
      if (Object.keys(tweaks).length > 0) device['tweaks'] = tweaks;
      const room = await this.roomDescription(e.room_id, e.sender);
      notification = {
        event_id: e.event_id,
        room_id: e.room_id,
        type: e.type,
        sender: e.sender,
        prio,
        ...counts,
        ...(room.senderName ? { sender_display_name: room.senderName } : {}),
        ...(room.name ? { room_name: room.name } : {}),
        ...(room.alias ? { room_alias: room.alias } : {}),
        // A redacted event's content is not shown anywhere, gateways included.
        ...(stored.redactedBy === null && Object.keys(e.content).length > 0 ? { content: e.content } : {}),
        ...(e.type === 'm.room.member' && typeof e.state_key === 'string' ? { user_is_target: e.state_key === p.user_id, membership: e.content['membership'] } : {}),
      };
    }
    notification['devices'] = [device];
    const rejected = await this.post(url, { notification }, p);
    if (rejected === undefined) return 'failed';
    this.badges.set(p.id, unread);
    if (rejected.includes(p.pushkey)) {
      this.log.info({ pusher: p.id, appId: p.app_id }, 'pushkey rejected by the gateway: removing the pusher');
      await pushersStore.deletePusher(this.db, p.user_id, p.app_id, p.pushkey);
      return 'removed';
    }
    return 'sent';
  }

  /** The rejected pushkeys, or undefined when the gateway failed (network, status, body). */
  private async post(url: string, body: unknown, p: PusherRow): Promise<string[] | undefined> {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), this.opts.requestTimeoutMs);
    this.inflight.add(controller);
    try {
      const res = await postJson(new URL(url), body, { policy: this.policy, signal: controller.signal, ca: this.ca });
      const text = res.body;
      if (res.status < 200 || res.status >= 300) {
        this.log.info({ pusher: p.id, status: res.status }, 'push gateway answered an error');
        return undefined;
      }
      let parsed: unknown = {};
      try {
        parsed = text.length > 0 ? JSON.parse(text) : {};
      } catch {
        // A gateway that took the notification but answered no JSON: delivered, nothing rejected.
      }
      const rejected = (parsed as { rejected?: unknown }).rejected;
      return Array.isArray(rejected) ? rejected.filter((k): k is string => typeof k === 'string') : [];
    } catch (err) {
      if (!this.closed) this.log.info({ pusher: p.id, err: (err as Error).message }, 'push gateway unreachable');
      return undefined;
    } finally {
      clearTimeout(timer);
      this.inflight.delete(controller);
    }
  }

  /** counts.unread: the user's unread notifications across their joined rooms (the spec's). */
  private async unreadCount(userId: string): Promise<number> {
    const rooms = await pushersStore.joinedRooms(this.db, userId);
    const rows = await notificationCounts(this.db, userId, rooms, Number.MAX_SAFE_INTEGER);
    return rows.reduce((n, r) => n + Number(r.notification_count), 0);
  }

  private async roomDescription(roomId: string, sender: string): Promise<{ name?: string; alias?: string; senderName?: string }> {
    const info = await pushersStore.roomInfo(this.db, roomId, sender);
    const out: { name?: string; alias?: string; senderName?: string } = {};
    if (!info) return out;
    if (info.displayname) out.senderName = info.displayname;
    if (info.current_snapshot === null) return out;
    const d = this.rooms();
    const state = await d.state.load(this.db, info.current_snapshot);
    const contentOf = async (type: string) => {
      const key = await d.state.keyNid(this.db, type, '');
      const nid = key === undefined ? undefined : state.get(key);
      const ev = nid === undefined || nid === 0 ? undefined : await d.events.one(this.db, nid, { fresh: true });
      return ev && ev.redactedBy === null ? ev.event.content : undefined;
    };
    const name = (await contentOf('m.room.name'))?.['name'];
    const alias = (await contentOf('m.room.canonical_alias'))?.['alias'];
    if (typeof name === 'string' && name.length > 0) out.name = name;
    if (typeof alias === 'string' && alias.length > 0) out.alias = alias;
    return out;
  }
}
