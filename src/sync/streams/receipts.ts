// The receipts stream: m.receipt events in each joined room's ephemeral. Private receipts are
// only ever read for their owner (store/receipts.ts); receipts by ignored users are dropped.
import type { Queryable } from '../../db/pool.js';
import { roomEventAllowed, sectionDisabled } from '../filter.js';
import { LATEST_SQL } from '../store/positions.js';
import * as store from '../store/receipts.js';
import { joinedRoom, type StreamProvider, type SyncContext } from './types.js';
import { roomAllowedByRoomFilter } from './typing.js';

export class ReceiptsStream implements StreamProvider {
  readonly name = 'receipts' as const;
  readonly latestSql = LATEST_SQL.receipts;

  latest(tx: Queryable): Promise<number> {
    return store.maxReceiptPosition(tx);
  }

  async full(ctx: SyncContext): Promise<void> {
    if (!this.wanted(ctx) || ctx.joinedRooms.length === 0) return;
    this.emit(ctx, await store.receiptsUpTo(ctx.tx, ctx.joinedRooms, ctx.userId, ctx.to.receipts));
  }

  async between(ctx: SyncContext, from: number, to: number): Promise<void> {
    if (!this.wanted(ctx)) return;
    const old = ctx.joinedRooms.filter((r) => !ctx.newlyJoined.has(r));
    if (old.length > 0 && to > from) this.emit(ctx, await store.receiptsBetween(ctx.tx, old, ctx.userId, from, to));
    if (ctx.newlyJoined.size > 0) this.emit(ctx, await store.receiptsUpTo(ctx.tx, [...ctx.newlyJoined], ctx.userId, to));
  }

  private wanted(ctx: SyncContext): boolean {
    return !sectionDisabled(ctx.filter.room?.ephemeral);
  }

  private emit(ctx: SyncContext, rows: store.ReceiptRow[]): void {
    const byRoom = new Map<string, Record<string, Record<string, Record<string, unknown>>>>();
    for (const r of rows) {
      if (ctx.ignored.has(r.user_id) && r.user_id !== ctx.userId) continue;
      let content = byRoom.get(r.room_id);
      if (!content) byRoom.set(r.room_id, (content = {}));
      const forEvent = (content[r.event_id] ??= {});
      const forType = (forEvent[r.receipt_type] ??= {}) as Record<string, unknown>;
      forType[r.user_id] = r.data;
    }
    const f = ctx.filter.room?.ephemeral;
    for (const [roomId, content] of byRoom) {
      if (!roomEventAllowed(f, { type: 'm.receipt', room_id: roomId }) || !roomAllowedByRoomFilter(ctx, roomId)) continue;
      joinedRoom(ctx, roomId).ephemeral.events.push({ type: 'm.receipt', content });
    }
  }
}
