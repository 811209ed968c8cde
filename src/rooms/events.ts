// Loading stored events by nid or id. Parsed events are cached by nid: the stored PDU never
// changes. What can change (redacted_by) is re-read unless the caller only needs the PDU.
import type { Queryable } from '../db/pool.js';
import type { RoomEvent } from '../core/types.js';
import { Lru } from './lru.js';
import * as sql from './store/events.js';

export interface StoredEvent {
  nid: number;
  event: RoomEvent;
  roomNid: number;
  stream: number | null;
  depth: number;
  stateKeyNid: number | null;
  rejected: string | null;
  stateBefore: number | null;
  stateAfter: number | null;
  replacesNid: number | null;
  /** As of when it was read; read with `fresh` when it matters. */
  redactedBy: number | null;
}

export class EventLoader {
  private readonly cache = new Lru<number, StoredEvent>(50_000);
  private readonly nids = new Lru<string, number>(200_000);
  /**
   * Events written by a transaction still open, by its connection. Reads inside it find them
   * here (the next event of a batch cites the previous one) without a query, and they never
   * enter the shared caches, which outlive a rollback.
   */
  private readonly uncommitted = new WeakMap<object, { byNid: Map<number, StoredEvent>; byId: Map<string, number> }>();

  /** Called by the room queue around each transaction. */
  beginTx(tx: Queryable): void {
    this.uncommitted.set(tx, { byNid: new Map(), byId: new Map() });
  }

  endTx(tx: Queryable): void {
    this.uncommitted.delete(tx);
    this.freshIn.delete(tx);
  }

  /**
   * Transactions that read every event's row again (`fresh`): those of a room another process
   * wrote to since this one last did, whose redactions this cache may not have heard of yet.
   */
  private readonly freshIn = new WeakSet<object>();

  readFresh(tx: Queryable): void {
    this.freshIn.add(tx);
  }

  /** Records an event written in the open transaction `tx`. */
  written(tx: Queryable, stored: StoredEvent): void {
    const pending = this.uncommitted.get(tx);
    if (!pending) return;
    pending.byNid.set(stored.nid, stored);
    pending.byId.set(stored.event.event_id, stored.nid);
  }

  /** Forgets events of `tx` rolled back to a savepoint. */
  unwritten(tx: Queryable, nids: Iterable<number>): void {
    const pending = this.uncommitted.get(tx);
    if (!pending) return;
    for (const nid of nids) {
      const e = pending.byNid.get(nid);
      pending.byNid.delete(nid);
      if (e) pending.byId.delete(e.event.event_id);
    }
  }

  /**
   * Events by nid (missing ones absent). `fresh` re-reads the rows (redaction status) but
   * still reuses parsed PDUs.
   */
  async byNids(db: Queryable, nids: Iterable<number>, opts: { fresh?: boolean } = {}): Promise<Map<number, StoredEvent>> {
    const out = new Map<number, StoredEvent>();
    const missing: number[] = [];
    const pending = this.uncommitted.get(db);
    const fresh = opts.fresh || this.freshIn.has(db);
    for (const nid of nids) {
      const hit = pending?.byNid.get(nid) ?? (fresh ? undefined : this.cache.get(nid));
      if (hit) out.set(nid, hit);
      else missing.push(nid);
    }
    if (missing.length === 0) return out;
    for (const [nid, stored] of this.fromRows(db, await sql.getEventRows(db, [...new Set(missing)]))) out.set(nid, stored);
    return out;
  }

  /**
   * Events from rows a query already read (`sql.EventRow` columns): a reader that selects
   * events with its own conditions gets them without a second round trip, and the cache is kept
   * as by byNids (parsed PDUs reused, rows refreshed).
   */
  fromRows(db: Queryable, rows: sql.EventRow[]): Map<number, StoredEvent> {
    const out = new Map<number, StoredEvent>();
    const pending = this.uncommitted.get(db);
    for (const row of rows) {
      const prior = this.cache.get(row.event_nid);
      const stored: StoredEvent = {
        nid: row.event_nid,
        event: prior ? prior.event : (JSON.parse(row.json) as RoomEvent),
        roomNid: row.room_nid,
        stream: row.stream_ordering,
        depth: row.depth,
        stateKeyNid: row.state_key_nid,
        rejected: row.rejected_reason,
        stateBefore: row.state_before,
        stateAfter: row.state_after,
        replacesNid: row.replaces_nid,
        redactedBy: row.redacted_by,
      };
      if (!pending?.byNid.has(stored.nid)) {
        this.cache.set(stored.nid, stored);
        this.nids.set(stored.event.event_id, stored.nid);
      }
      out.set(stored.nid, stored);
    }
    return out;
  }

  async one(db: Queryable, nid: number, opts: { fresh?: boolean } = {}): Promise<StoredEvent | undefined> {
    return (await this.byNids(db, [nid], opts)).get(nid);
  }

  /** Nids of event ids that have been interned (the events themselves may be unknown). */
  async nidsOf(db: Queryable, ids: string[]): Promise<Map<string, number>> {
    const out = new Map<string, number>();
    const missing: string[] = [];
    const pending = this.uncommitted.get(db);
    for (const id of ids) {
      const hit = pending?.byId.get(id) ?? this.nids.get(id);
      if (hit !== undefined) out.set(id, hit);
      else missing.push(id);
    }
    for (const [id, nid] of await sql.lookupEventNids(db, missing)) {
      if (!pending?.byNid.has(nid)) this.nids.set(id, nid);
      out.set(id, nid);
    }
    return out;
  }

  async byIds(db: Queryable, ids: string[], opts: { fresh?: boolean } = {}): Promise<Map<string, StoredEvent>> {
    const nids = await this.nidsOf(db, ids);
    const events = await this.byNids(db, nids.values(), opts);
    const out = new Map<string, StoredEvent>();
    for (const [id, nid] of nids) {
      const e = events.get(nid);
      if (e) out.set(id, e);
    }
    return out;
  }

  /**
   * A committed redaction (this process's, or another's through the prat_redactions
   * announcement): the cached copy of its target now knows it is redacted.
   */
  redacted(nid: number, redactionNid: number): void {
    const hit = this.cache.get(nid);
    if (hit && hit.redactedBy === null) this.cache.set(nid, { ...hit, redactedBy: redactionNid });
  }

  remember(stored: StoredEvent): void {
    this.cache.set(stored.nid, stored);
    this.nids.set(stored.event.event_id, stored.nid);
  }
}
