// The notification counts of /sync, remembered between syncs so that each sync counts only the
// push actions that arrived since the last one.
//
// A count is a function of facts that never change once a sync can see them: push actions are
// only ever appended, and a sync at stream position P sees every action at or below P (positions
// commit in order, under the stream lock). So the counts of a room up to position P stay right
// for as long as the user's read receipts in that room stay where they were. Each entry holds the
// counts per thread up to P together with the receipts they were counted against (a signature
// computed by the database); the next sync passes both back, and the database counts only the
// actions after P when the receipts are unchanged, or everything after the unthreaded receipt
// when they moved. No invalidation is needed, so other processes' receipts and events are no
// concern: a stale signature only costs one full count. Users who ignore someone are counted in
// full each time (their counts leave out the ignored senders' events; the cache holds counts of
// all senders).
import type { Queryable } from '../db/pool.js';
import { Lru } from '../rooms/lru.js';
import { countsSince, type CountedRow, type CountRow } from './store.js';

const MAX_ROOMS_REMEMBERED = 200_000;

interface Remembered {
  /** The user's read receipts in the room the counts were made against. */
  receipts: string;
  /**
   * The receipts stream position those receipts were read at, when the counts were made in the
   * same snapshot as the positions of a sync (else -1).
   */
  receiptsAt: number;
  upTo: number;
  /** Per thread id: [notification count, highlight count]. */
  threads: Map<string, [number, number]>;
}

/** What known() found, handed back to absorb() with the statement's rows. */
export interface Known {
  entries: (Remembered | undefined)[];
  receipts: (string | null)[];
  upTo: (number | null)[];
}

export class UnreadCounts {
  private readonly remembered = new Lru<string, Remembered>(MAX_ROOMS_REMEMBERED);

  /**
   * Counts per room and thread of push actions after the user's read receipts, up to `upTo`
   * (rows with nothing unread are left out). `ignoresSomeone`: the user's m.ignored_user_list is
   * not empty (then nothing is remembered).
   */
  async counts(db: Queryable, userId: string, rooms: string[], upTo: number, ignoresSomeone: boolean, receiptsAt = -1): Promise<CountRow[]> {
    if (rooms.length === 0) return [];
    const known = this.known(userId, rooms, ignoresSomeone);
    const rows = await countsSince(db, userId, rooms, known.receipts, known.upTo, upTo, ignoresSomeone);
    return this.absorb(userId, rooms, known, rows, upTo, ignoresSomeone, receiptsAt);
  }

  /** What is remembered of `rooms`, as the counting statement takes it (null: nothing). */
  known(userId: string, rooms: string[], ignoresSomeone: boolean): Known {
    const entries = rooms.map((r) => (ignoresSomeone ? undefined : this.remembered.get(`${userId}\u0000${r}`)));
    return { entries, receipts: entries.map((k) => k?.receipts ?? null), upTo: entries.map((k) => k?.upTo ?? null) };
  }

  /**
   * The counts of `rooms` from the statement's rows (counted with what known() said, up to
   * `upTo`), remembered for the next sync. Rooms without a row are left out.
   */
  absorb(userId: string, rooms: string[], known: Known, rows: CountedRow[], upTo: number, ignoresSomeone: boolean, receiptsAt = -1): CountRow[] {
    const byRoom = new Map<string, { receipts: string; delta: boolean; threads: Map<string, [number, number]> }>();
    for (const r of rows) {
      let room = byRoom.get(r.room_id);
      if (!room) {
        room = { receipts: r.receipts, delta: r.delta, threads: new Map() };
        byRoom.set(r.room_id, room);
      }
      if (r.thread_id !== null) room.threads.set(r.thread_id, [r.notification_count, r.highlight_count]);
    }
    const out: CountRow[] = [];
    rooms.forEach((roomId, i) => {
      const room = byRoom.get(roomId);
      if (!room) return;
      let threads = room.threads;
      // A delta continues the entry the statement was given (not whatever a concurrent sync of
      // the same user may have remembered since).
      const before = known.entries[i];
      if (room.delta && before) {
        threads = new Map(before.threads);
        for (const [t, [n, h]] of room.threads) {
          const [n0, h0] = threads.get(t) ?? [0, 0];
          threads.set(t, [n0 + n, h0 + h]);
        }
      }
      if (!ignoresSomeone) this.remembered.set(`${userId}\u0000${roomId}`, { receipts: room.receipts, receiptsAt, upTo, threads });
      out.push(...rowsOf(roomId, threads));
    });
    return out;
  }

  /**
   * The counts of a room up to `upTo` from the remembered ones and the user's push actions
   * since, known from memory: for a woken long-poll answered without the database
   * (src/sync/woken.ts). Undefined unless the remembered counts end at or before `upTo` and were
   * made against the receipts as of `receiptsFrom` or later (the caller knows that the user's
   * receipts in the room did not move since), or when `actionsAfter` does not know the actions
   * after the remembered position.
   *
   * Every action after the remembered position counts: the receipts it was counted against were
   * read in the same snapshot as that position, and a receipt names an event that exists, so
   * none of them is past it.
   */
  carryForward(
    userId: string,
    roomId: string,
    receiptsFrom: number,
    upTo: number,
    actionsAfter: (from: number) => KnownAction[] | undefined,
  ): CountRow[] | undefined {
    const key = `${userId}\u0000${roomId}`;
    const entry = this.remembered.get(key);
    if (!entry || entry.receiptsAt < receiptsFrom || entry.upTo > upTo) return undefined;
    const actions = actionsAfter(entry.upTo);
    if (!actions) return undefined;
    const threads = new Map(entry.threads);
    for (const a of actions) {
      if (a.stream <= entry.upTo || a.stream > upTo) continue;
      const [n, h] = threads.get(a.threadId) ?? [0, 0];
      threads.set(a.threadId, [n + (a.notify ? 1 : 0), h + (a.highlight ? 1 : 0)]);
    }
    this.remembered.set(key, { ...entry, upTo, threads });
    return rowsOf(roomId, threads);
  }
}

/** A push action of the user known from memory: the event's stream position, its thread. */
export interface KnownAction {
  stream: number;
  threadId: string;
  notify: boolean;
  highlight: boolean;
}

function rowsOf(roomId: string, threads: Map<string, [number, number]>): CountRow[] {
  const out: CountRow[] = [];
  for (const [t, [n, h]] of threads) {
    if (n > 0 || h > 0) out.push({ room_id: roomId, thread_id: t, notification_count: n, highlight_count: h });
  }
  return out;
}
