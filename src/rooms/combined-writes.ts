// Message writes of several rooms, combined. Each write outside a transaction (a room's batch of
// messages on its remembered head, see queue.ts) costs a round trip, a statement's fixed cost in
// PostgreSQL (executor start-up, commit, WAL flush) and two process wake-ups; with many rooms
// busy at once, those dominate. While one write is in flight, the writes of other rooms queue
// up here and then go together, as one statement (eventsSql.writeMessages): one commit for all
// of them, as a room's queue batches the sends of one room. A lone write goes at once.
//
// Rooms stay independent: the statement compare-and-swaps each room's head, so a room whose head
// moved (another process wrote) gets nothing written and its writer goes the long way, while
// the rooms with it are written.
//
// A statement runs on the connection of one of the writers it carries, which each holds while
// it waits: with as many rooms writing as the pool has connections, a statement that needed
// one more would wait for ever.
import type { Queryable } from '../db/pool.js';
import * as eventsSql from './store/events.js';
import type { RoomMessages } from './store/events.js';

/** Bounds a combined statement (and the time the stream lock is held for it). */
const MAX_MESSAGES = 256;

interface Pending {
  room: RoomMessages;
  /** The writer's connection, idle while it waits here. */
  db: Queryable;
  resolve: (placed: Map<number, number> | null) => void;
  reject: (err: unknown) => void;
}

export class CombinedMessageWrites {
  private readonly waiting: Pending[] = [];
  private inFlight = false;
  /** Statements sent, and room writes they carried (tests and benchmarks look). */
  readonly counts = { statements: 0, rooms: 0 };

  constructor(private readonly locks: { stream: [number, number]; roomNamespace: number }) {}

  /**
   * Writes one room's messages, with whatever other rooms' writes are waiting. Its messages'
   * stream positions by nid, or null when nothing was written (the room's head moved, or one of
   * its transaction ids was used already). A room has one write here at a time (its queue's).
   * `db` is the writer's connection, which it must not use until this resolves.
   */
  write(room: RoomMessages, db: Queryable): Promise<Map<number, number> | null> {
    return new Promise((resolve, reject) => {
      this.waiting.push({ room, db, resolve, reject });
      if (!this.inFlight) void this.flush();
    });
  }

  private async flush(): Promise<void> {
    this.inFlight = true;
    try {
      while (this.waiting.length > 0) {
        let messages = 0;
        let count = 0;
        while (count < this.waiting.length && (count === 0 || messages + this.waiting[count]!.room.messages.length <= MAX_MESSAGES)) {
          messages += this.waiting[count]!.room.messages.length;
          count++;
        }
        const group = this.waiting.splice(0, count);
        this.counts.statements++;
        this.counts.rooms += group.length;
        try {
          const db = group[0]!.db;
          const lone = group.length === 1 && group[0]!.room.messages.length === 1 ? group[0]!.room : undefined;
          const placed = lone ? [await this.writeLone(db, lone)] : await eventsSql.writeMessages(db, this.locks, group.map((p) => p.room));
          group.forEach((p, i) => p.resolve(placed[i]!));
        } catch (err) {
          const code = (err as { code?: string }).code;
          // A failed statement wrote nothing. Each room then goes the long way, as if its head
          // had moved: after a deadlock or serialization failure (with a writer in another
          // process), or when one of several rooms' writes failed the statement, so that the
          // others are written and only that one answers with its error. A room alone fails.
          if (code === '40P01' || code === '40001' || group.length > 1) group.forEach((p) => p.resolve(null));
          else group.forEach((p) => p.reject(err));
        }
      }
    } finally {
      this.inFlight = false;
    }
  }

  /**
   * One message alone: by the statement that writes any one event, which PostgreSQL runs in
   * about half the time of the batches' (measured: 0.21 against 0.36 ms).
   */
  private async writeLone(db: Queryable, room: RoomMessages): Promise<Map<number, number> | null> {
    const m = room.messages[0]!;
    try {
      const written = await eventsSql.writeEvent(db, {
        nid: m.nid,
        eventId: m.eventId,
        roomId: room.roomId,
        roomNid: room.roomNid,
        depth: m.depth,
        type: m.type,
        stateKeyNid: null,
        sender: m.sender,
        originServerTs: m.originServerTs,
        rejectedReason: null,
        stateBefore: m.stateBefore,
        stateAfter: m.stateBefore,
        replacesNid: null,
        json: m.json,
        prevNids: m.prevNids,
        txn: m.txn,
        streamLock: this.locks.stream,
        roomLock: [this.locks.roomNamespace, room.lockKey],
        pushActions: m.pushActions,
        headSeq: room.headSeq,
        announce: m.announce,
      });
      return written.duplicate_of === null ? new Map([[written.event_nid, written.stream_ordering]]) : null;
    } catch (err) {
      if (err instanceof eventsSql.HeadMoved) return null;
      throw err;
    }
  }
}
