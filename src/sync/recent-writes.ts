// The events this process wrote last, by the stream positions their writes took: what lets a
// woken long-poll answer from memory (woken.ts) when every position between its base and now
// was written here.
//
// A write's positions are allocated under the stream lock, one after the other, so when a
// write reports the span first..last (WrittenSpan), every position before `first` was settled
// (committed, or a gap for ever) before it. Writes that follow each other with no gap
// (`first` = the previous `last` + 1) thus hold everything there is in their range: a chain of
// them from a position P is all that happened after P, up to the chain's end. Another process's
// write, a rolled-back position, or a write that reported no span breaks the chain, and the
// long-poll reads the database as before.
import type { StoredEvent } from '../rooms/events.js';
import { storedOf } from '../rooms/persist.js';
import type { PersistedEvent, WrittenSpan } from '../rooms/queue.js';
import type { PushActionsOf } from '../rooms/store/events.js';

/** How many writes are kept, at most; the long-polls they are for answer within milliseconds. */
const MAX_WRITES = 256;
/**
 * How many push actions the kept writes may hold in all (an event of a big room holds one per
 * member): older writes go first.
 */
const MAX_PUSH_ACTIONS = 50_000;

export class RecentWrite {
  private byUser: Map<string, PushActionsOf> | undefined;
  /** The events as the event cache holds them, one per event for every long-poll that reads them. */
  readonly stored: readonly StoredEvent[];

  constructor(
    readonly first: number,
    readonly last: number,
    /** The accepted events (a rejected one holds a position too, but is in no timeline). */
    readonly events: readonly PersistedEvent[],
    readonly pushActions: number,
  ) {
    this.stored = events.map(storedOf);
  }

  /** What push rule evaluation decided for `userId` about `event` (one of this write's). */
  actionFor(event: PersistedEvent, userId: string): PushActionsOf | undefined {
    const actions = event.pushActions;
    if (!actions || actions.length === 0) return undefined;
    if (this.events.length === 1 && actions.length <= 16) return actions.find((a) => a.userId === userId);
    if (!this.byUser) {
      this.byUser = new Map();
      for (const e of this.events) for (const a of e.pushActions ?? []) this.byUser.set(`${e.stream}\u0000${a.userId}`, a);
    }
    return this.byUser.get(`${event.stream}\u0000${userId}`);
  }
}

export class RecentWrites {
  private readonly byFirst = new Map<number, RecentWrite>();
  /** The kept writes, oldest first (the order they were recorded in). */
  private readonly order: RecentWrite[] = [];
  private pushActions = 0;

  /** A committed write and its span (the rooms' onEventsPersisted). */
  record(events: readonly PersistedEvent[], span: WrittenSpan | undefined): void {
    if (span === undefined || this.byFirst.has(span.first)) return;
    let actions = 0;
    for (const e of events) actions += e.pushActions?.length ?? 0;
    const write = new RecentWrite(span.first, span.last, events, actions);
    this.byFirst.set(write.first, write);
    this.order.push(write);
    this.pushActions += actions;
    while (this.order.length > MAX_WRITES || (this.pushActions > MAX_PUSH_ACTIONS && this.order.length > 1)) {
      const old = this.order.shift()!;
      this.byFirst.delete(old.first);
      this.pushActions -= old.pushActions;
    }
  }

  /** The writes that follow position `from` with no gap, oldest first (empty if none does). */
  chainFrom(from: number): RecentWrite[] {
    const chain: RecentWrite[] = [];
    for (let w = this.byFirst.get(from + 1); w !== undefined; w = this.byFirst.get(w.last + 1)) chain.push(w);
    return chain;
  }
}
