// Typing notifications: in memory, per room, with expiry timers. Positions come from a database
// sequence so every process hands out comparable typing positions. A change made here is
// published to the other processes (NOTIFY on TYPING_CHANNEL with the deadline); each process
// keeps its own copy and its own expiry timers, so a user stops typing everywhere at the
// deadline even when the process that took the request has gone.
import type { Queryable } from '../db/pool.js';
import type { Logger } from '../logger.js';
import { TYPING_CHANNEL, type Notifier } from './notifier.js';
import { nextFreePosition } from './store/positions.js';

/** Longest typing timeout honoured: a client cannot pin itself "typing" for hours. */
export const MAX_TYPING_TIMEOUT_MS = 120_000;

interface RoomTyping {
  /** The position of the latest change in this room. */
  pos: number;
  /** user -> deadline (ms since epoch). */
  users: Map<string, number>;
  timer: NodeJS.Timeout | undefined;
}

interface TypingWire {
  r: string;
  u: string;
  /** Deadline, or 0 when the user stopped typing. */
  d: number;
  p: number;
}

export class TypingService {
  private readonly rooms = new Map<string, RoomTyping>();
  private latestPos = 0;

  constructor(
    private readonly db: Queryable,
    private readonly notifier: Notifier,
    private readonly log: Logger,
  ) {
    notifier.onChannel(TYPING_CHANNEL, (payload) => this.receive(payload));
  }

  /** The latest typing position this process knows. */
  latest(): number {
    return this.latestPos;
  }

  /** Sets or clears a user's typing flag; the caller has checked they are joined to the room. */
  async setTyping(roomId: string, userId: string, typing: boolean, timeoutMs: number): Promise<void> {
    const deadline = typing ? Date.now() + Math.min(Math.max(timeoutMs, 0), MAX_TYPING_TIMEOUT_MS) : 0;
    const room = this.rooms.get(roomId);
    // Stopping when not typing changes nothing: no new position, nobody woken.
    if (!typing && !room?.users.has(userId)) return;
    const pos = await nextFreePosition(this.db, 'typing');
    this.apply({ r: roomId, u: userId, d: deadline, p: pos });
    await this.notifier.publish(TYPING_CHANNEL, JSON.stringify({ r: roomId, u: userId, d: deadline, p: pos } satisfies TypingWire)).catch((err) =>
      this.log.warn({ err }, 'could not publish typing change'),
    );
  }

  private receive(payload: string): void {
    try {
      const w = JSON.parse(payload) as TypingWire;
      if (typeof w.r === 'string' && typeof w.u === 'string' && typeof w.d === 'number' && typeof w.p === 'number') this.apply(w);
    } catch {
      // A malformed payload from another process is ignored.
    }
  }

  private apply(w: TypingWire): void {
    let room = this.rooms.get(w.r);
    if (!room) this.rooms.set(w.r, (room = { pos: 0, users: new Map(), timer: undefined }));
    const wasTyping = room.users.has(w.u);
    if (w.d > Date.now()) room.users.set(w.u, w.d);
    else room.users.delete(w.u);
    if (!wasTyping && !room.users.has(w.u)) return;
    this.bump(w.r, room, w.p);
    this.schedule(w.r, room);
  }

  private bump(roomId: string, room: RoomTyping, pos: number): void {
    room.pos = Math.max(room.pos, pos);
    this.latestPos = Math.max(this.latestPos, pos);
    this.notifier.wake({ roomId });
  }

  /** One timer per room, for its earliest deadline. */
  private schedule(roomId: string, room: RoomTyping): void {
    clearTimeout(room.timer);
    room.timer = undefined;
    if (room.users.size === 0) {
      // Keep the entry's position: a sync that saw the user typing must see them stop.
      return;
    }
    const next = Math.min(...room.users.values());
    room.timer = setTimeout(() => this.expire(roomId), Math.max(0, next - Date.now()) + 5);
    room.timer.unref();
  }

  private expire(roomId: string): void {
    const room = this.rooms.get(roomId);
    if (!room) return;
    const now = Date.now();
    let changed = false;
    for (const [u, d] of room.users) {
      if (d <= now) {
        room.users.delete(u);
        changed = true;
      }
    }
    if (!changed) return this.schedule(roomId, room);
    this.bumpWithNewPosition(roomId, room);
  }

  private bumpWithNewPosition(roomId: string, room: RoomTyping): void {
    nextFreePosition(this.db, 'typing')
      .then((pos) => {
        this.bump(roomId, room, pos);
        this.schedule(roomId, room);
      })
      .catch((err) => {
        // Without a new position the expiry would stay unseen; try again shortly.
        this.log.warn({ err }, 'typing expiry could not take a position; retrying');
        clearTimeout(room.timer);
        room.timer = setTimeout(() => this.bumpWithNewPosition(roomId, room), 1000);
        room.timer.unref();
      });
  }

  /** m.typing content of rooms changed in (from, to]; all rooms when from is undefined. */
  typingEvents(rooms: readonly string[], from: number | undefined, to: number): Map<string, { type: 'm.typing'; content: { user_ids: string[] } }> {
    const out = new Map<string, { type: 'm.typing'; content: { user_ids: string[] } }>();
    for (const r of rooms) {
      const room = this.rooms.get(r);
      if (!room) continue;
      if (from === undefined ? room.users.size === 0 : room.pos <= from || room.pos > to) continue;
      out.set(r, { type: 'm.typing', content: { user_ids: [...room.users.keys()].sort() } });
    }
    return out;
  }

  close(): void {
    for (const room of this.rooms.values()) clearTimeout(room.timer);
  }
}
