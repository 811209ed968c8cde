// Wakes long-polling /sync requests when something they care about changes.
//
// Waiters are registered per user and per joined room. notify() wakes exactly the waiters of the
// named users or room, at once, in this process, and publishes the change with NOTIFY on one
// channel so every other process on the database wakes its own waiters too. One dedicated
// connection LISTENs; it reconnects after a failure. An idle waiter is a pending promise, a
// timer and two map entries: no polling, no CPU.
//
// The race between "the sync read found nothing" and "the sync registered its waiter" is closed
// with a sequence number: the sync takes `notifier.seq` before reading its snapshot and passes it
// to wait(); notifications since then are kept in a short ring, and one that concerns the waiter
// (or a ring that has overflowed) wakes it at once. A spurious wake only costs one re-read.
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import type { Logger } from '../logger.js';

export const NOTIFY_CHANNEL = 'prat_sync';
/** Typing changes travel on their own channel: the payload is the state, not just a wake-up. */
export const TYPING_CHANNEL = 'prat_typing';
// PostgreSQL refuses NOTIFY payloads from 8000 bytes; user lists longer than this are split.
const MAX_PAYLOAD = 7000;
const RING_SIZE = 1024;

export interface Target {
  userIds?: readonly string[];
  roomId?: string;
}

/**
 * What ends a wait early. An AbortSignal is one; `Cancellation` is the lighter kind a long-poll
 * holds (an AbortSignal is an EventTarget with its own hidden class: ~2 KB per idle request).
 */
export interface WaitSignal {
  readonly aborted: boolean;
  addEventListener(type: 'abort', listener: () => void, options?: { once?: boolean }): void;
  removeEventListener(type: 'abort', listener: () => void): void;
}

/** A one-shot WaitSignal with room for the one listener a request's wait registers. */
export class Cancellation implements WaitSignal {
  aborted = false;
  private listeners: (() => void)[] | undefined;

  cancel(): void {
    if (this.aborted) return;
    this.aborted = true;
    const listeners = this.listeners;
    this.listeners = undefined;
    for (const l of listeners ?? []) l();
  }

  addEventListener(_type: 'abort', listener: () => void): void {
    if (this.aborted) return;
    (this.listeners ??= []).push(listener);
  }

  removeEventListener(_type: 'abort', listener: () => void): void {
    const i = this.listeners?.indexOf(listener) ?? -1;
    if (i >= 0) this.listeners!.splice(i, 1);
  }
}

interface Waiter {
  userId: string;
  rooms: readonly string[];
  wake: () => void;
}

interface RingEntry {
  seq: number;
  userIds: ReadonlySet<string> | undefined;
  roomId: string | undefined;
}

interface Wire {
  o: string;
  s: string;
  p: number;
  u?: string[];
  r?: string;
}

export class Notifier {
  /** Increases on every notification this process sees (its own or another process's). */
  seq = 0;
  private readonly byUser = new Map<string, Set<Waiter>>();
  private readonly byRoom = new Map<string, Set<Waiter>>();
  private readonly ring: RingEntry[] = [];
  private readonly origin = randomBytes(8).toString('hex');
  private listener: pg.Client | undefined;
  private closed = false;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private readonly channelHandlers = new Map<string, (payload: string) => void>();
  /** Told of every change, this process's and the others' (push delivery watches 'events'). */
  readonly listeners: ((stream: string, position: number) => void)[] = [];
  /** Told when the LISTEN connection is up again: announcements may have been missed meanwhile. */
  readonly reconnectListeners: (() => void)[] = [];
  /** The furthest position of each stream this process heard of (its own changes, and the others' as they arrive). */
  private readonly heard = new Map<string, number>();

  constructor(
    private readonly pool: { query(text: string, values?: unknown[]): Promise<unknown> },
    private readonly connectionString: string,
    private readonly log: Logger,
  ) {}

  /** Opens the LISTEN connection. Until it is up, only this process's changes wake waiters. */
  async start(): Promise<void> {
    await this.connect();
  }

  /** Another sync component (typing) that wants the raw payloads of its own channel. */
  onChannel(channel: string, handler: (payload: string) => void): void {
    this.channelHandlers.set(channel, handler);
    if (this.listener) this.listener.query(`LISTEN ${channel}`).catch((err) => this.log.warn({ err }, 'LISTEN failed'));
  }

  /** Publishes a raw payload to the other processes (the sender does not receive its own). */
  async publish(channel: string, payload: string): Promise<void> {
    await this.pool.query('SELECT pg_notify($1, $2)', [channel, `${this.origin}|${payload}`]);
  }

  private async connect(): Promise<void> {
    const client = new pg.Client({ connectionString: this.connectionString });
    client.on('error', (err) => {
      this.log.warn({ err }, 'sync LISTEN connection failed; reconnecting');
      this.scheduleReconnect(client);
    });
    client.on('end', () => this.scheduleReconnect(client));
    client.on('notification', (msg) => {
      if (msg.payload === undefined) return;
      const bar = msg.payload.indexOf('|');
      const origin = msg.payload.slice(0, bar);
      if (origin === this.origin) return;
      const body = msg.payload.slice(bar + 1);
      if (msg.channel === NOTIFY_CHANNEL) this.receive(body);
      else this.channelHandlers.get(msg.channel)?.(body);
    });
    await client.connect();
    await client.query(`LISTEN ${NOTIFY_CHANNEL}`);
    for (const channel of this.channelHandlers.keys()) await client.query(`LISTEN ${channel}`);
    this.listener = client;
    // Changes made elsewhere while we were not listening were missed: wake everyone to re-read.
    this.wakeAll();
    for (const l of this.reconnectListeners) l();
  }

  private scheduleReconnect(client: pg.Client): void {
    if (this.closed || this.listener !== client) return;
    this.listener = undefined;
    client.end().catch(() => undefined);
    this.reconnectTimer = setTimeout(() => {
      this.connect().catch((err) => {
        this.log.warn({ err }, 'sync LISTEN reconnect failed');
        this.listener = client;
        this.scheduleReconnect(client);
      });
    }, 1000);
    this.reconnectTimer.unref();
  }

  private receive(body: string): void {
    let wire: Wire;
    try {
      wire = JSON.parse(body) as Wire;
    } catch {
      return;
    }
    this.hear(wire.s, wire.p);
    this.wakeLocal({ ...(wire.u ? { userIds: wire.u } : {}), ...(wire.r ? { roomId: wire.r } : {}) });
    for (const l of this.listeners) l(wire.s, wire.p);
  }

  private hear(stream: string, position: number): void {
    if (position > (this.heard.get(stream) ?? 0)) this.heard.set(stream, position);
  }

  /** The furthest position of `stream` this process has heard of (0: none). */
  heardOf(stream: string): number {
    return this.heard.get(stream) ?? 0;
  }

  /**
   * A change on `stream` at `position` concerns these users or this room's members. Wakes local
   * waiters synchronously and tells the other processes. Never throws: a lost cross-process
   * notification is logged, and the other processes' waiters still end at their timeout.
   */
  notify(stream: string, position: number, target: Target): void {
    this.hear(stream, position);
    this.wakeLocal(target);
    for (const l of this.listeners) l(stream, position);
    for (const wire of this.wireMessages(stream, position, target)) {
      this.publish(NOTIFY_CHANNEL, JSON.stringify(wire)).catch((err) => this.log.warn({ err }, 'NOTIFY failed'));
    }
  }

  /**
   * For a writer that announces its change from inside its own statement, where the position
   * is allocated (the rooms' event write): the NOTIFY channel and the payload around the
   * position (`${before}${position}${after}`), so the change and its announcement commit
   * together. After the commit the writer calls `announced()`. Undefined when the target does
   * not fit one payload (then `notify()` after the commit).
   */
  announcement(stream: string, target: Target): { channel: string; before: string; after: string } | undefined {
    const rest = `${target.roomId !== undefined ? `,"r":${JSON.stringify(target.roomId)}` : ''}${target.userIds?.length ? `,"u":${JSON.stringify(target.userIds)}` : ''}}`;
    if (rest.length > MAX_PAYLOAD) return undefined;
    return { channel: NOTIFY_CHANNEL, before: `${this.origin}|{"o":${JSON.stringify(this.origin)},"s":${JSON.stringify(stream)},"p":`, after: rest };
  }

  /** A change already announced to the other processes (see `announcement`): wakes this process's side. */
  announced(stream: string, position: number, target: Target): void {
    this.hear(stream, position);
    this.wakeLocal(target);
    for (const l of this.listeners) l(stream, position);
  }

  private *wireMessages(stream: string, position: number, target: Target): Generator<Wire> {
    if (target.roomId !== undefined) yield { o: this.origin, s: stream, p: position, r: target.roomId };
    const users = target.userIds ?? [];
    let batch: string[] = [];
    let size = 0;
    for (const u of users) {
      if (size + u.length + 3 > MAX_PAYLOAD && batch.length > 0) {
        yield { o: this.origin, s: stream, p: position, u: batch };
        batch = [];
        size = 0;
      }
      batch.push(u);
      size += u.length + 3;
    }
    if (batch.length > 0) yield { o: this.origin, s: stream, p: position, u: batch };
  }

  /** Wakes this process's waiters only (the change is already known to the other processes). */
  wake(target: Target): void {
    this.wakeLocal(target);
  }

  private wakeLocal(target: Target): void {
    this.seq++;
    const userIds = target.userIds ? new Set(target.userIds) : undefined;
    this.ring.push({ seq: this.seq, userIds, roomId: target.roomId });
    if (this.ring.length > RING_SIZE) this.ring.shift();
    const woken = new Set<Waiter>();
    if (userIds) for (const u of userIds) for (const w of this.byUser.get(u) ?? []) woken.add(w);
    if (target.roomId !== undefined) for (const w of this.byRoom.get(target.roomId) ?? []) woken.add(w);
    for (const w of woken) w.wake();
  }

  private wakeAll(): void {
    this.seq++;
    // An entry concerning nobody in particular, but the ring gap makes older waiters re-read.
    this.ring.length = 0;
    for (const set of this.byUser.values()) for (const w of set) w.wake();
  }

  /** Whether anything since `sinceSeq` may concern this user or these rooms. */
  private missed(sinceSeq: number, userId: string, rooms: ReadonlySet<string>): boolean {
    if (sinceSeq >= this.seq) return false;
    const first = this.ring[0];
    if (!first || first.seq > sinceSeq + 1) return true;
    for (let i = this.ring.length - 1; i >= 0; i--) {
      const e = this.ring[i]!;
      if (e.seq <= sinceSeq) break;
      if (e.userIds?.has(userId) || (e.roomId !== undefined && rooms.has(e.roomId))) return true;
    }
    return false;
  }

  /**
   * Waits until a notification concerns `userId` or one of `rooms`, the timeout passes or
   * `signal` aborts. Resolves true when woken by a change.
   */
  wait(userId: string, rooms: readonly string[], sinceSeq: number, timeoutMs: number, signal?: WaitSignal): Promise<boolean> {
    if (signal?.aborted || timeoutMs <= 0) return Promise.resolve(false);
    if (this.missed(sinceSeq, userId, new Set(rooms))) return Promise.resolve(true);
    return new Promise<boolean>((resolveWait) => {
      let timer: NodeJS.Timeout | undefined = undefined;
      const finish = (woken: boolean) => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        this.remove(this.byUser, userId, waiter);
        for (const r of rooms) this.remove(this.byRoom, r, waiter);
        resolveWait(woken);
      };
      const onAbort = () => finish(false);
      const waiter: Waiter = { userId, rooms, wake: () => finish(true) };
      this.add(this.byUser, userId, waiter);
      for (const r of rooms) this.add(this.byRoom, r, waiter);
      timer = setTimeout(() => finish(false), timeoutMs);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** How many requests are waiting (for metrics and tests). */
  get waiting(): number {
    let n = 0;
    for (const set of this.byUser.values()) n += set.size;
    return n;
  }

  private add(map: Map<string, Set<Waiter>>, key: string, w: Waiter): void {
    let set = map.get(key);
    if (!set) map.set(key, (set = new Set()));
    set.add(w);
  }

  private remove(map: Map<string, Set<Waiter>>, key: string, w: Waiter): void {
    const set = map.get(key);
    if (!set) return;
    set.delete(w);
    if (set.size === 0) map.delete(key);
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.reconnectTimer);
    const client = this.listener;
    this.listener = undefined;
    await client?.end().catch(() => undefined);
  }
}
