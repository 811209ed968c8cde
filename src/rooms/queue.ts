// One writer per room, across processes. In this process, writes to a room queue up and are run
// by one worker per room, which batches whatever has queued into one transaction (one commit for
// many sends: the main cost of a write is the commit). Across processes, the transaction holds a
// PostgreSQL advisory lock keyed by the room id, taken before anything of the room is read, so
// two processes never build on the same forward extremities.
//
// Message sends (no state change, no other write) take a shorter path when this process
// remembers the room's head (its last write, or last read under the lock): the events are built
// on that head and written by one autocommitted statement that checks, with a compare-and-swap
// on rooms.head_seq, that the head is still the one it was built on. One round trip instead of
// three (BEGIN with the lock and the read, the write, COMMIT). If another process moved the head
// meanwhile, nothing was written and the jobs run again the long way. A batch of message sends,
// either way, writes all its messages with one statement (MessageBatch); on a remembered head,
// that statement also carries the writes other rooms have waiting (CombinedMessageWrites).
//
// Code that assumes the lock takes a RoomLock, which only this module can create.
import type pg from 'pg';
import { holdingConnectionFor, type Database, type Queryable } from '../db/pool.js';
import type { Logger } from '../logger.js';
import { MatrixError } from '../http/errors.js';
import { getRoomVersion, type RoomVersion } from '../core/room-versions.js';
import type { RoomEvent } from '../core/types.js';
import { notInRoom } from './errors.js';
import * as roomsSql from './store/rooms.js';
import * as eventsSql from './store/events.js';
import { HeadMoved, type BatchedMessage, type PushActionsOf, type RoomMessages, type WriteRoomRow } from './store/events.js';
import type { TxnKey } from './store/rooms.js';
import type { StoredEvent } from './events.js';
import { Lru } from './lru.js';
import { CombinedMessageWrites } from './combined-writes.js';

/** Namespaces of the two-key advisory locks (disjoint from the migration lock's one-key space). */
const ROOM_LOCK_NAMESPACE = 0x726f6f6d; // "room"
const STREAM_LOCK_NAMESPACE = 0x7374726d; // "strm"

/**
 * The global stream lock, taken by each event write (persist.ts) and held to commit: stream
 * positions are allocated under it, so transactions commit in the order of their positions and
 * a /sync reader that sees position N has seen every position below N. Only the write itself
 * and the commit run under it, so rooms still build, sign and auth-check events in parallel.
 */
export const STREAM_LOCK: [number, number] = [STREAM_LOCK_NAMESPACE, 0];
/** Jobs run in one transaction at most; bounds the time other rooms wait on the stream lock. */
const MAX_BATCH = 64;

/** What persisting one event produced; handed to onEventsPersisted listeners after commit. */
export interface PersistedEvent {
  nid: number;
  event: RoomEvent;
  roomNid: number;
  stream: number;
  depth: number;
  stateKeyNid: number | null;
  stateBefore: number | null;
  stateAfter: number | null;
  replacesNid: number | null;
  /** Set for a remote event the auth rules refused (stored, never in state or timelines). */
  rejectedReason: string | null;
  /** For a redaction that took effect: the redacted event. */
  redactedNid?: number;
  /** The write sent the event's announcement to other processes (RoomDeps.announcer). */
  announced: boolean;
  /** The client transaction the event was sent with. */
  txn?: TxnKey;
  /** What push rule evaluation decided for the local members (stored with the event). */
  pushActions?: PushActionsOf[];
}

/**
 * The stream positions a committed write took, first to last, when every one of them holds an
 * event of the list (or a rejected one): positions are allocated under the stream lock, so every
 * position before `first` was settled (committed, or a gap for ever) before this write took its
 * own. A listener may then know all there is in a range of positions from memory.
 */
export interface WrittenSpan {
  first: number;
  last: number;
}

export type EventsPersistedListener = (events: PersistedEvent[], span: WrittenSpan | undefined) => void | Promise<void>;

/** The room as the lock holder sees it; updated by each event persisted under the lock. */
export interface LockedRoom {
  roomNid: number;
  roomId: string;
  version: RoomVersion;
  creator: string;
  extremities: number[];
  currentSnapshot: number | null;
  /** rooms.head_seq as this writer knows it; each event write moves it on by one. */
  headSeq: number;
}

const LOCK_TOKEN = Symbol('RoomLock');

function txnKey(t: TxnKey): string {
  return `${t.userId}\u0000${t.deviceId}\u0000${t.scope}\u0000${t.txnId}`;
}

/**
 * The positions of a write's events, when they follow each other with no gap (a job rolled back
 * to its savepoint leaves one, and with it no span).
 */
function spanOf(persisted: PersistedEvent[]): WrittenSpan | undefined {
  let first = Infinity;
  let last = -Infinity;
  for (const p of persisted) {
    if (p.stream < first) first = p.stream;
    if (p.stream > last) last = p.stream;
  }
  return last - first + 1 === persisted.length ? { first, last } : undefined;
}

/** A 32-bit FNV-1a hash of the room id: the second key of the room's advisory lock. */
function roomLockKey(roomId: string): number {
  let h = 0x811c9dc5;
  for (const byte of Buffer.from(roomId, 'utf8')) {
    h ^= byte;
    h = Math.imul(h, 0x01000193);
  }
  return h | 0;
}

/** Proof that the holder runs inside the room's transaction, holding its lock. */
export class RoomLock {
  readonly persisted: PersistedEvent[] = [];

  constructor(
    token: symbol,
    readonly tx: Queryable,
    readonly room: LockedRoom,
    /**
     * Outside a transaction, on a remembered head (the one-statement path): the job may read,
     * and write one non-state event with eventsSql.writeEvent, which commits it.
     */
    readonly oneStatement = false,
    /** In a batch of message sends: persist.ts hands each message to it instead of writing it. */
    readonly batch?: MessageBatch,
  ) {
    if (token !== LOCK_TOKEN) throw new Error('a RoomLock is only created by the RoomQueue');
  }

  /** The room's advisory lock (namespace, key). */
  get advisoryKey(): [number, number] {
    return [ROOM_LOCK_NAMESPACE, roomLockKey(this.room.roomId)];
  }

  /** @internal the working state, to roll back a failed job of a batch. */
  saveState(): SavedState {
    return {
      extremities: [...this.room.extremities],
      currentSnapshot: this.room.currentSnapshot,
      headSeq: this.room.headSeq,
      persisted: this.persisted.length,
      batched: this.batch?.messages.length ?? 0,
    };
  }

  restoreState(s: SavedState): void {
    this.room.extremities = s.extremities;
    this.room.currentSnapshot = s.currentSnapshot;
    this.room.headSeq = s.headSeq;
    this.persisted.length = s.persisted;
    if (this.batch) this.batch.messages.length = s.batched;
  }
}

type JobResult = { ok: true; value: unknown } | { ok: false; err: unknown };

interface SavedState {
  extremities: number[];
  currentSnapshot: number | null;
  headSeq: number;
  persisted: number;
  batched: number;
}

/**
 * The messages a batch of sends built, written by one statement instead of one statement each
 * (a round trip each). Their nids are taken from the sequence beforehand (with the batch's
 * BEGIN, or from the queue's pool), so each message can be built on the one before it; their
 * stream positions come with the write.
 */
export class MessageBatch {
  readonly messages: { write: BatchedMessage; persisted: PersistedEvent; stored: StoredEvent }[] = [];

  private taken = 0;

  constructor(private readonly nids: number[]) {}

  /** A fresh nid for the next message (an unused one is a harmless gap). */
  takeNid(): number {
    const nid = this.nids[this.taken++];
    if (nid === undefined) throw new Error('the batch has no nid left');
    return nid;
  }

  add(write: BatchedMessage, persisted: PersistedEvent, stored: StoredEvent): void {
    this.messages.push({ write, persisted, stored });
  }
}

/** How a job may run: `oneStatement` for a lone message send (see the top of this file). */
export interface RunOptions {
  newRoom?: NewRoom;
  oneStatement?: boolean;
  /**
   * The client transaction of a job that returns the id of the event it sends: in a batch of
   * message sends, a transaction id already used resolves with that event, without running.
   */
  txn?: TxnKey;
}

export interface NewRoom {
  version: string;
  creator: string;
  isPublic: boolean;
}

interface Job {
  fn: (lock: RoomLock) => Promise<unknown>;
  resolve: (value: unknown) => void;
  reject: (err: unknown) => void;
  newRoom?: NewRoom;
  oneStatement?: boolean;
  txn?: TxnKey;
}

/** Event nids fetched at once for batches outside a transaction. */
const NID_CHUNK = 256;

/** Rooms whose head this process remembers (bounded: a forgotten head costs one read). */
const REMEMBERED_HEADS = 50_000;

export class RoomQueue {
  private readonly pending = new Map<string, Job[]>();
  readonly listeners: EventsPersistedListener[] = [];
  /** Messages written by batches (MessageBatch), and the batches (tests and benchmarks look). */
  readonly batched = { messages: 0, batches: 0 };
  /** Each room's head after this process's last transaction on it. */
  private readonly heads = new Lru<string, LockedRoom>(REMEMBERED_HEADS);
  /** The writes of batches on remembered heads, combined across rooms. */
  readonly combined: CombinedMessageWrites;

  constructor(
    private readonly db: Database,
    private readonly log: Logger,
    private readonly hooks: {
      /** Around each transaction (caches keep what an open transaction wrote apart). */
      beginTx?: (tx: Queryable) => void;
      endTx?: (tx: Queryable, committed: boolean) => void;
      /** Events of a job rolled back to its savepoint. */
      rolledBack?: (tx: Queryable, nids: number[]) => void;
      /** Another process may have written to the room since this one last did (caches may lag). */
      othersWrote?: (tx: Queryable) => void;
      /** What each committed transaction persisted, before listeners hear of it. */
      afterCommit?: (events: PersistedEvent[]) => void;
    } = {},
  ) {
    this.combined = new CombinedMessageWrites({ stream: STREAM_LOCK, roomNamespace: ROOM_LOCK_NAMESPACE });
  }

  /**
   * Runs `fn` holding the room's lock, inside a transaction, after every earlier job of the
   * room. With `newRoom`, the room row is created in the same transaction (createRoom: the
   * whole initial state commits or none of it).
   */
  run<T>(roomId: string, fn: (lock: RoomLock) => Promise<T>, opts: RunOptions = {}): Promise<T> {
    const { newRoom, oneStatement, txn } = opts;
    return new Promise<T>((resolve, reject) => {
      const job: Job = {
        fn,
        resolve: resolve as (v: unknown) => void,
        reject,
        ...(newRoom ? { newRoom } : {}),
        ...(oneStatement ? { oneStatement } : {}),
        ...(txn ? { txn } : {}),
      };
      const queue = this.pending.get(roomId);
      if (queue) {
        queue.push(job);
        return;
      }
      this.pending.set(roomId, [job]);
      void this.drain(roomId);
    });
  }

  private async drain(roomId: string): Promise<void> {
    for (;;) {
      const queue = this.pending.get(roomId)!;
      if (queue.length === 0) {
        this.pending.delete(roomId);
        return;
      }
      // A room creation runs alone; anything else batches up to MAX_BATCH.
      const batch = queue[0]!.newRoom ? queue.splice(0, 1) : queue.splice(0, Math.min(MAX_BATCH, queue.findIndex((j) => j.newRoom) >>> 0));
      try {
        await this.runBatch(roomId, batch);
      } catch (err) {
        for (const job of batch) job.reject(err);
      }
    }
  }

  private async runBatch(roomId: string, jobs: Job[]): Promise<void> {
    // Message sends only: their messages are written together, by one statement (MessageBatch).
    const batch = jobs.length > 1 && jobs.every((j) => j.oneStatement) ? this.withoutRepeatedTxns(roomId, jobs) : jobs;
    try {
      await this.runJobs(roomId, batch);
    } catch (err) {
      // The batch's own jobs: not those sent back to the queue (withoutRepeatedTxns), which run
      // later and answer then.
      for (const job of batch) job.reject(err);
    }
  }

  private async runJobs(roomId: string, batch: Job[]): Promise<void> {
    const head = this.heads.get(roomId);
    // Message sends on a remembered head: alone, or as a batch where the head has one extremity.
    if (head && batch.every((j) => j.oneStatement) && (batch.length === 1 || head.extremities.length === 1)) {
      if (await this.runOnHead(roomId, batch, head)) return;
    }
    const messages = batch.length > 1 && batch.every((j) => j.oneStatement);
    const txns = batch.flatMap((j) => (j.txn ? [j.txn] : []));
    const results: JobResult[] = [];
    let lockForHead: RoomLock | undefined;
    const start = messages
      ? (escape: (s: string) => string) =>
          eventsSql.batchStartSql(
            batch.length,
            txns.map((t) => [escape(t.userId), escape(t.deviceId), escape(t.scope), escape(t.txnId)]),
          )
      : undefined;
    const persisted = await this.transaction(roomId, start, async (tx, row, started) => {
      results.length = 0;
      const room = await this.loadRoom(tx, roomId, row, batch[0]!.newRoom);
      // A transaction id used before answers with its event (the send is not run again).
      const earlier = new Map<string, string>();
      let writer: MessageBatch | undefined;
      if (messages) {
        // Batched writes follow a linear history; a room whose DAG forks writes one by one.
        if (room.extremities.length === 1) writer = new MessageBatch((started[0]!.rows[0]!['nids'] as string[]).map(Number));
        for (const r of started[1]!.rows) earlier.set(txnKey({ userId: r['user_id'], deviceId: r['device_id'], scope: r['scope'], txnId: r['txn_id'] }), r['event_id']);
      }
      const lock = new RoomLock(LOCK_TOKEN, tx, room, false, writer);
      if (!batch[0]!.newRoom && this.heads.get(roomId)?.headSeq !== room.headSeq) this.hooks.othersWrote?.(tx);
      this.heads.delete(roomId);
      lockForHead = lock;
      // A refused job must not take the rest of the batch down with it: each job of a batch
      // runs in a savepoint (released together with the next one's creation: one round trip).
      // A message send needs none: it is refused, if at all, before its one write, so there
      // is nothing to roll back.
      const useSavepoints = batch.length > 1;
      let open = false;
      for (const job of batch) {
        const sent = job.txn ? earlier.get(txnKey(job.txn)) : undefined;
        if (sent !== undefined) {
          results.push({ ok: true, value: sent });
          continue;
        }
        const saved = lock.saveState();
        const savepoint = useSavepoints && !job.oneStatement;
        if (savepoint) {
          await tx.query(open ? 'RELEASE SAVEPOINT job; SAVEPOINT job' : 'SAVEPOINT job');
          open = true;
        }
        try {
          results.push({ ok: true, value: await job.fn(lock) });
        } catch (err) {
          if (!useSavepoints || !(err instanceof MatrixError)) throw err;
          if (savepoint) {
            await tx.query('ROLLBACK TO SAVEPOINT job');
            this.hooks.rolledBack?.(tx, lock.persisted.slice(saved.persisted).map((p) => p.nid));
          } else if (lock.persisted.length > saved.persisted || err.errcode === 'M_BAD_STATE') {
            // Refused after writing, or after a failed statement: only the whole batch can go.
            throw err;
          }
          lock.restoreState(saved);
          results.push({ ok: false, err });
        }
      }
      if (writer && writer.messages.length > 0) await this.writeMessages(lock, writer, tx);
      return lock.persisted;
    });
    if (lockForHead) this.heads.set(roomId, { ...lockForHead.room, extremities: [...lockForHead.room.extremities] });
    await this.announce(persisted);
    batch.forEach((job, i) => {
      const r = results[i]!;
      if (r.ok) job.resolve(r.value);
      else job.reject(r.err);
    });
  }

  /**
   * A lone message send, or a batch of them, on a remembered head: built on that head outside a
   * transaction and written by one autocommitted statement, which takes the room's lock and
   * compare-and-swaps its head. On a head of one extremity that statement is the batch's
   * (MessageBatch), combined with other rooms' (CombinedMessageWrites); else the lone send's
   * own. False when nothing was written because the head had moved (or a transaction id of the
   * batch was used already): the caller runs the jobs again the long way.
   */
  private async runOnHead(roomId: string, jobs: Job[], head: LockedRoom): Promise<boolean> {
    const client = await this.db.pool.connect();
    this.hooks.beginTx?.(client);
    const batched = head.extremities.length === 1;
    const results: JobResult[] = [];
    let lock: RoomLock;
    try {
      const writer = batched ? new MessageBatch(await this.freshNids(client, jobs.length)) : undefined;
      lock = new RoomLock(LOCK_TOKEN, client, { ...head, extremities: [...head.extremities] }, !batched, writer);
      for (const job of jobs) {
        const saved = lock.saveState();
        try {
          results.push({ ok: true, value: await holdingConnectionFor('a write on a room head', () => job.fn(lock)) });
        } catch (err) {
          if (!(err instanceof MatrixError) || err.errcode === 'M_BAD_STATE') throw err;
          lock.restoreState(saved);
          results.push({ ok: false, err });
        }
      }
      if (writer && writer.messages.length > 0) await this.writeMessages(lock, writer);
    } catch (err) {
      this.hooks.endTx?.(client, false);
      client.release();
      if (err instanceof HeadMoved) {
        this.heads.delete(roomId);
        return false;
      }
      for (const job of jobs) job.reject(err);
      return true;
    }
    // What was written committed with its statement.
    this.hooks.endTx?.(client, true);
    client.release();
    this.heads.set(roomId, lock.room);
    await this.announce(lock.persisted);
    jobs.forEach((job, i) => {
      const r = results[i]!;
      if (r.ok) job.resolve(r.value);
      else job.reject(r.err);
    });
    return true;
  }

  /** Fresh event nids, from a pool refilled in chunks (an unused nid is a harmless gap). */
  private async freshNids(db: Queryable, count: number): Promise<number[]> {
    if (this.nidPool.length < count) this.nidPool.push(...(await eventsSql.freshEventNids(db, Math.max(count, NID_CHUNK))));
    return this.nidPool.splice(0, count);
  }

  private readonly nidPool: number[] = [];

  /**
   * A batch of sends holds each transaction id once: a repeated one (a client retrying while
   * its first attempt waits) goes back to the queue, where it finds the first one's event.
   */
  private withoutRepeatedTxns(roomId: string, jobs: Job[]): Job[] {
    const seen = new Set<string>();
    const kept: Job[] = [];
    const later: Job[] = [];
    for (const job of jobs) {
      const key = job.txn ? txnKey(job.txn) : undefined;
      if (key !== undefined && seen.has(key)) later.push(job);
      else {
        if (key !== undefined) seen.add(key);
        kept.push(job);
      }
    }
    if (later.length > 0) this.pending.get(roomId)!.unshift(...later);
    return kept;
  }

  /**
   * Writes a batch's messages, then gives each its stream position: in the transaction `tx`, or
   * else combined with other rooms' writes (on the lock's connection, or another writer's).
   * HeadMoved when nothing was written.
   */
  private async writeMessages(lock: RoomLock, writer: MessageBatch, tx?: Queryable): Promise<void> {
    const { room } = lock;
    const write: RoomMessages = {
      roomId: room.roomId,
      roomNid: room.roomNid,
      headSeq: room.headSeq - writer.messages.length,
      lockKey: lock.advisoryKey[1],
      messages: writer.messages.map((m) => m.write),
    };
    const placed = tx
      ? (await eventsSql.writeMessages(tx, { stream: STREAM_LOCK, roomNamespace: ROOM_LOCK_NAMESPACE }, [write]))[0]!
      : await this.combined.write(write, lock.tx);
    if (placed === null) throw new HeadMoved(`the head of room ${room.roomId} moved, or a transaction id was used`);
    this.batched.batches++;
    this.batched.messages += writer.messages.length;
    for (const m of writer.messages) {
      const stream = placed.get(m.persisted.nid)!;
      m.persisted.stream = stream;
      m.persisted.announced = m.write.announce !== null;
      m.stored.stream = stream;
    }
  }

  /** Tells the hooks and listeners what a committed transaction persisted. */
  private async announce(persisted: PersistedEvent[]): Promise<void> {
    if (persisted.length > 0) this.hooks.afterCommit?.(persisted);
    // Listeners hear only of accepted events: rejected ones are in no timeline.
    const accepted = persisted.filter((p) => p.rejectedReason === null);
    if (accepted.length > 0) {
      const span = spanOf(persisted);
      for (const listener of this.listeners) {
        try {
          await listener(accepted, span);
        } catch (err) {
          this.log.error({ err }, 'onEventsPersisted listener failed');
        }
      }
    }
  }

  /**
   * The room's transaction. BEGIN, the room lock and the read of the room (row, forward
   * extremities) go in one round trip, as one multi-statement query: each statement of it
   * takes its own snapshot (READ COMMITTED), so the read sees everything the previous lock
   * holder committed. Deadlocks and serialization failures are retried.
   */
  private async transaction<T>(
    roomId: string,
    /** More statements for the same round trip (values escaped with the function given). */
    start: ((escape: (s: string) => string) => string[]) | undefined,
    fn: (tx: Queryable, room: WriteRoomRow | undefined, started: pg.QueryResult[]) => Promise<T>,
  ): Promise<T> {
    const key = roomLockKey(roomId);
    for (let attempt = 1; ; attempt++) {
      const client = await this.db.pool.connect();
      const started = performance.now();
      let committed = false;
      this.hooks.beginTx?.(client);
      try {
        const more = start?.((v) => client.escapeLiteral(v)) ?? [];
        const results = (await client.query(
          [`BEGIN; SELECT pg_advisory_xact_lock(${ROOM_LOCK_NAMESPACE}, ${key})`, eventsSql.roomForWriteSql(client.escapeLiteral(roomId)), ...more].join('; '),
        )) as unknown as pg.QueryResult[];
        const result = await holdingConnectionFor('a room transaction', () =>
          fn(client, eventsSql.parseRoomForWrite(results[2]!.rows[0]), results.slice(3)),
        );
        await client.query('COMMIT');
        committed = true;
        this.log.trace({ tx: 'persist_events', roomId, ms: +(performance.now() - started).toFixed(2) }, 'transaction');
        return result;
      } catch (err) {
        await client.query('ROLLBACK').catch(() => undefined);
        const code = (err as { code?: string }).code;
        // HeadMoved: a one-statement write of another process landed between our read and write.
        if ((code === '40001' || code === '40P01' || err instanceof HeadMoved) && attempt < 5) continue;
        throw err;
      } finally {
        this.hooks.endTx?.(client, committed);
        client.release();
      }
    }
  }

  private async loadRoom(tx: Queryable, roomId: string, row: WriteRoomRow | undefined, newRoom?: NewRoom): Promise<LockedRoom> {
    if (newRoom) {
      const version = getRoomVersion(newRoom.version)!;
      if (row) throw new MatrixError('M_ROOM_IN_USE', 'Room id already in use');
      const roomNid = await roomsSql.insertRoom(tx, { roomId, ...newRoom });
      return { roomNid, roomId, version, creator: newRoom.creator, extremities: [], currentSnapshot: null, headSeq: 0 };
    }
    const version = row ? getRoomVersion(row.version) : undefined;
    if (!row || !version) throw notInRoom(roomId);
    return {
      roomNid: row.room_nid,
      roomId,
      version,
      creator: row.creator,
      extremities: row.extremities,
      currentSnapshot: row.current_snapshot,
      headSeq: row.head_seq,
    };
  }
}
