// The account data stream: global entries to account_data, per-room entries to each joined
// (or sent left) room's account_data. m.push_rules is computed at read time (its row is a change marker).
import type { Queryable } from '../../db/pool.js';
import { eventAllowed, roomEventAllowed, sectionDisabled } from '../filter.js';
import * as store from '../store/account-data.js';
import { LATEST_SQL } from '../store/positions.js';
import type { AccountDataRow } from '../store/account-data.js';
import { joinedRoom, type StreamProvider, type SyncContext } from './types.js';

export class AccountDataStream implements StreamProvider {
  readonly name = 'accountData' as const;
  readonly latestSql = LATEST_SQL.accountData;

  constructor(private readonly pushRules: (db: Queryable, userId: string) => Promise<unknown>) {}

  latest(tx: Queryable): Promise<number> {
    return store.maxAccountDataPosition(tx);
  }

  async full(ctx: SyncContext): Promise<void> {
    const rows = await store.accountDataUpTo(ctx.tx, ctx.userId, ctx.to.accountData);
    // Clients expect m.push_rules in every initial sync, even before the user changed a rule.
    if (!rows.some((r) => r.room_id === '' && r.data_type === 'm.push_rules')) {
      rows.push({ room_id: '', data_type: 'm.push_rules', content: {}, stream_id: 0 });
    }
    await this.emit(ctx, rows, true);
  }

  async between(ctx: SyncContext, from: number, to: number): Promise<void> {
    const rows = to > from ? await store.accountDataBetween(ctx.tx, ctx.userId, from, to) : [];
    await this.emit(ctx, rows, false);
    // A room joined since `from` gets its per-room data whole.
    if (ctx.newlyJoined.size > 0) {
      const all = await store.accountDataUpTo(ctx.tx, ctx.userId, to);
      await this.emit(ctx, all.filter((r) => ctx.newlyJoined.has(r.room_id) && !(r.stream_id > from)), false);
    }
  }

  private async emit(ctx: SyncContext, rows: AccountDataRow[], initial: boolean): Promise<void> {
    const joined = new Set(ctx.joinedRooms);
    const globalFilter = ctx.filter.account_data;
    const roomFilter = ctx.filter.room?.account_data;
    for (const row of rows) {
      // A deleted entry ({}) is news for an incremental sync only.
      if (initial && Object.keys(row.content).length === 0 && row.data_type !== 'm.push_rules') continue;
      if (row.room_id === '') {
        if (sectionDisabled(globalFilter) || !eventAllowed(globalFilter, { type: row.data_type })) continue;
        const content = row.data_type === 'm.push_rules' ? await this.pushRules(ctx.tx, ctx.userId) : row.content;
        ctx.res.account_data.events.push({ type: row.data_type, content });
      } else {
        // A left room carries its account data too when the response sends it (the spec's
        // Left Room object): whole in an initial sync with include_leave, changes otherwise.
        const left = joined.has(row.room_id) ? undefined : ctx.res.rooms.leave[row.room_id];
        if (!joined.has(row.room_id) && !left) continue;
        if (sectionDisabled(roomFilter) || !roomEventAllowed(roomFilter, { type: row.data_type, room_id: row.room_id })) continue;
        if (!roomAllowed(ctx, row.room_id)) continue;
        (left ?? joinedRoom(ctx, row.room_id)).account_data.events.push({ type: row.data_type, content: row.content });
      }
    }
  }
}

function roomAllowed(ctx: SyncContext, roomId: string): boolean {
  const f = ctx.filter.room;
  if (f?.not_rooms?.includes(roomId)) return false;
  if (f?.rooms && !f.rooms.includes(roomId)) return false;
  return true;
}
