// Room state snapshots: full maps or bounded deltas on a parent (see migrations/0003_rooms.sql).
//
// A state map here is (state_key_nid -> event_nid): integers only; the (type, state_key) pairs
// and events are resolved by whoever needs them. Maps returned are shared with the cache and
// must be treated as immutable.
//
// Shape of the delta chains (after Conduit's state compressor): a new snapshot is written as a
// delta on its parent unless that delta is at least half as large as the parent's own delta, in
// which case the two are folded together and attached to the grandparent, and so on down. A delta
// on a full snapshot that would exceed half the full state is written as a new full snapshot
// instead (a re-base). So deltas shrink going up a chain (depth stays around log2 of the state
// changes since the last re-base, hard-capped at MAX_DEPTH), reading a snapshot is one query, and
// each state change costs O(log n) stored entries amortised, never O(state size).
import { createHash } from 'node:crypto';
import type { Queryable } from '../db/pool.js';
import { Lru } from './lru.js';
import * as sql from './store/state.js';

export type StateNids = ReadonlyMap<number, number>;

/** Deltas never chain deeper than this; a deeper one is folded into its parent. */
export const MAX_DEPTH = 8;
const REMOVED = 0;
const MOD = 1n << 256n;

interface SnapshotInfo {
  id: number;
  parentId: number | null;
  depth: number;
  stateSize: number;
  hash: bigint;
  /** The delta (or, at depth 0, the full state) this row stores. */
  keys: number[];
  events: number[];
}

function entryHash(keyNid: number, eventNid: number): bigint {
  const buf = Buffer.alloc(12);
  buf.writeUInt32BE(keyNid, 0);
  buf.writeBigUInt64BE(BigInt(eventNid), 4);
  return BigInt(`0x${createHash('sha256').update(buf).digest('hex')}`);
}

function hashToBuffer(h: bigint): Buffer {
  return Buffer.from(h.toString(16).padStart(64, '0'), 'hex');
}

function bufferToHash(b: Buffer): bigint {
  return b.length === 0 ? 0n : BigInt(`0x${b.toString('hex')}`);
}

/** The order-independent hash of a full state (sum of entry hashes mod 2^256). */
export function hashState(state: StateNids): bigint {
  let h = 0n;
  for (const [k, e] of state) h = (h + entryHash(k, e)) % MOD;
  return h;
}

export class StateStore {
  /** Full state maps, bounded by the number of entries held. */
  private readonly states = new Lru<number, StateNids>(2_000_000, (m) => m.size + 16);
  /** Snapshot rows (deltas are small; full rows count their size). */
  private readonly rows = new Lru<number, SnapshotInfo>(1_000_000, (r) => r.keys.length + 16);
  private readonly keyNids = new Map<string, number>();
  private readonly keyPairs = new Map<number, [string, string]>();
  /**
   * Pairs interned by a transaction still open, by its connection: they enter the shared
   * cache only when it commits. (A cached nid whose row was rolled back would be written into
   * other rooms' snapshots and point at nothing.)
   */
  private readonly pendingKeys = new WeakMap<object, Map<string, number>>();

  /** Called by the room queue around each transaction. */
  beginTx(tx: Queryable): void {
    this.pendingKeys.set(tx, new Map());
  }

  /** After a rollback to a savepoint: what was interned since may be gone; forget it all. */
  rolledBack(tx: Queryable): void {
    this.pendingKeys.get(tx)?.clear();
  }

  endTx(tx: Queryable, committed: boolean): void {
    const pending = this.pendingKeys.get(tx);
    this.pendingKeys.delete(tx);
    if (committed && pending) for (const [joined, nid] of pending) this.rememberKey(joined, nid);
  }

  // ---- (type, state_key) interning ------------------------------------------------------

  /** The nid of each pair, interning missing ones (writers only). */
  async internKeys(db: Queryable, pairs: Array<[string, string]>): Promise<number[]> {
    const pending = this.pendingKeys.get(db);
    const known = (joined: string) => this.keyNids.get(joined) ?? pending?.get(joined);
    const missing = pairs.filter(([t, k]) => known(`${t}\u0000${k}`) === undefined);
    if (missing.length > 0) {
      for (const [joined, nid] of await sql.internStateKeys(db, missing)) {
        if (pending) pending.set(joined, nid);
        else this.rememberKey(joined, nid);
      }
    }
    return pairs.map(([t, k]) => known(`${t}\u0000${k}`)!);
  }

  /** The nid of a pair if it was ever interned (readers: an unknown pair is in no state). */
  async keyNid(db: Queryable, type: string, stateKey: string): Promise<number | undefined> {
    const joined = `${type}\u0000${stateKey}`;
    const hit = this.keyNids.get(joined) ?? this.pendingKeys.get(db)?.get(joined);
    if (hit !== undefined) return hit;
    const res = await db.query<{ state_key_nid: number }>('SELECT state_key_nid FROM state_keys WHERE type = $1 AND state_key = $2', [
      type,
      stateKey,
    ]);
    const nid = res.rows[0]?.state_key_nid;
    // Inside a transaction the row may be its own uncommitted one: not cached then.
    if (nid !== undefined && !this.pendingKeys.has(db)) this.rememberKey(joined, nid);
    return nid;
  }

  async keyPairsOf(db: Queryable, nids: Iterable<number>): Promise<Map<number, [string, string]>> {
    const out = new Map<number, [string, string]>();
    const missing: number[] = [];
    for (const nid of nids) {
      const hit = this.keyPairs.get(nid);
      if (hit) out.set(nid, hit);
      else missing.push(nid);
    }
    for (const r of await sql.stateKeysByNid(db, missing)) {
      if (!this.pendingKeys.has(db)) this.rememberKey(`${r.type}\u0000${r.state_key}`, r.state_key_nid);
      out.set(r.state_key_nid, [r.type, r.state_key]);
    }
    return out;
  }

  private rememberKey(joined: string, nid: number): void {
    // Interned pairs never change, so this cache needs no invalidation; it is bounded by the
    // number of distinct (type, state_key) pairs the server has seen.
    this.keyNids.set(joined, nid);
    const i = joined.indexOf('\u0000');
    this.keyPairs.set(nid, [joined.slice(0, i), joined.slice(i + 1)]);
  }

  // ---- reading ---------------------------------------------------------------------------

  /** The full state a snapshot describes. */
  async load(db: Queryable, snapshotId: number): Promise<StateNids> {
    const cached = this.states.get(snapshotId);
    if (cached) return cached;
    // Walk up through cached rows; fetch the chain in one query only if some row is missing.
    const chain: SnapshotInfo[] = [];
    let base: StateNids | undefined;
    let id: number | null = snapshotId;
    while (id !== null) {
      const state = chain.length > 0 ? this.states.get(id) : undefined;
      if (state) {
        base = state;
        break;
      }
      const row = this.rows.get(id);
      if (!row) break;
      chain.push(row);
      id = row.parentId;
    }
    if (!base && (chain.length === 0 || chain.at(-1)!.parentId !== null)) {
      const fetched = await sql.getSnapshotChain(db, snapshotId);
      if (fetched.length === 0) throw new Error(`state snapshot ${snapshotId} not found`);
      chain.length = 0;
      for (const r of fetched) {
        const info: SnapshotInfo = {
          id: r.snapshot_id,
          parentId: r.parent_id,
          depth: r.depth,
          stateSize: r.state_size,
          hash: bufferToHash(r.state_hash),
          keys: r.key_nids,
          events: r.event_nids,
        };
        this.rows.set(info.id, info);
        chain.push(info);
      }
    }
    // chain is nearest-first; apply from the oldest.
    const state = new Map<number, number>(base ?? []);
    for (let i = chain.length - 1; i >= 0; i--) {
      const row = chain[i]!;
      if (row.depth === 0) state.clear();
      for (let j = 0; j < row.keys.length; j++) {
        const e = row.events[j]!;
        if (e === REMOVED) state.delete(row.keys[j]!);
        else state.set(row.keys[j]!, e);
      }
    }
    this.states.set(snapshotId, state);
    return state;
  }

  private async info(db: Queryable, snapshotId: number): Promise<SnapshotInfo> {
    const hit = this.rows.get(snapshotId);
    if (hit) return hit;
    await this.load(db, snapshotId);
    const row = this.rows.get(snapshotId);
    if (!row) throw new Error(`state snapshot ${snapshotId} not cached after load`);
    return row;
  }

  /** Depth of a snapshot's chain (0 = full), for tests and metrics. */
  async depthOf(db: Queryable, snapshotId: number): Promise<number> {
    return (await this.info(db, snapshotId)).depth;
  }

  // ---- writing ---------------------------------------------------------------------------

  /**
   * The snapshot of `parent`'s state with `changes` applied (event nid 0 removes a key).
   * Returns the parent itself when nothing changes, and an existing equal snapshot of the room
   * when one exists (unless `fresh` says the state holds an event no snapshot can hold yet).
   */
  async create(
    db: Queryable,
    roomNid: number,
    parentId: number | null,
    changes: ReadonlyMap<number, number>,
    opts: { fresh?: boolean } = {},
  ): Promise<number> {
    const parentState = parentId === null ? new Map<number, number>() : await this.load(db, parentId);
    const parentHash = parentId === null ? 0n : (await this.info(db, parentId)).hash;
    const diff = new Map<number, number>();
    let hash = parentHash;
    for (const [k, e] of changes) {
      const old = parentState.get(k);
      if (old === e || (old === undefined && e === REMOVED)) continue;
      diff.set(k, e);
      if (old !== undefined) hash = (hash - entryHash(k, old) + MOD) % MOD;
      if (e !== REMOVED) hash = (hash + entryHash(k, e)) % MOD;
    }
    if (parentId !== null && diff.size === 0) return parentId;

    const state = new Map(parentState);
    for (const [k, e] of diff) {
      if (e === REMOVED) state.delete(k);
      else state.set(k, e);
    }

    if (!opts.fresh) {
      for (const candidate of await sql.findSnapshotsByHash(db, roomNid, hashToBuffer(hash))) {
        if (sameState(await this.load(db, candidate), state)) return candidate;
      }
    }

    // Find where to attach the delta, folding as described at the top of the file.
    let baseId = parentId;
    while (baseId !== null) {
      const base = await this.info(db, baseId);
      if (base.depth === 0) {
        if (diff.size * 2 > base.stateSize) baseId = null; // re-base: write the state whole
        break;
      }
      if (base.depth < MAX_DEPTH && diff.size * 2 < base.keys.length) break;
      for (let j = 0; j < base.keys.length; j++) {
        if (!diff.has(base.keys[j]!)) diff.set(base.keys[j]!, base.events[j]!);
      }
      baseId = base.parentId;
    }

    let keys: number[];
    let events: number[];
    let depth: number;
    if (baseId === null) {
      keys = [...state.keys()];
      events = keys.map((k) => state.get(k)!);
      depth = 0;
    } else {
      keys = [...diff.keys()];
      events = keys.map((k) => diff.get(k)!);
      depth = (await this.info(db, baseId)).depth + 1;
    }
    const id = await sql.insertSnapshot(db, {
      roomNid,
      parentId: baseId,
      depth,
      stateSize: state.size,
      hash: hashToBuffer(hash),
      keyNids: keys,
      eventNids: events,
    });
    // Cached before commit: a rolled-back snapshot id is never referenced again (ids are not
    // reused), so a stale cache entry is harmless.
    this.rows.set(id, { id, parentId: baseId, depth, stateSize: state.size, hash, keys, events });
    this.states.set(id, state);
    return id;
  }
}

function sameState(a: StateNids, b: StateNids): boolean {
  if (a.size !== b.size) return false;
  for (const [k, v] of a) if (b.get(k) !== v) return false;
  return true;
}
