// The presence stream: the presence of the user and of everyone sharing a room with them.
import type { Queryable } from '../../db/pool.js';
import { eventAllowed, sectionDisabled } from '../filter.js';
import { presenceContent } from '../presence.js';
import { LATEST_SQL } from '../store/positions.js';
import * as store from '../store/presence.js';
import type { StreamProvider, SyncContext } from './types.js';

export class PresenceStream implements StreamProvider {
  readonly name = 'presence' as const;
  readonly latestSql: string | undefined;

  constructor(
    private readonly enabled: boolean,
    private readonly audience: (db: Queryable, userId: string) => Promise<string[]>,
  ) {
    this.latestSql = enabled ? LATEST_SQL.presence : undefined;
  }

  latest(tx: Queryable): Promise<number> {
    return this.enabled ? store.maxPresencePosition(tx) : Promise.resolve(0);
  }

  async full(ctx: SyncContext): Promise<void> {
    if (!this.wanted(ctx)) return;
    const users = await this.audience(ctx.tx, ctx.userId);
    this.emit(ctx, await store.presenceUpTo(ctx.tx, users, ctx.to.presence));
  }

  async between(ctx: SyncContext, from: number, to: number): Promise<void> {
    if (!this.wanted(ctx) || to <= from) return;
    const users = await this.audience(ctx.tx, ctx.userId);
    this.emit(ctx, await store.presenceBetween(ctx.tx, users, from, to));
  }

  private wanted(ctx: SyncContext): boolean {
    return this.enabled && !sectionDisabled(ctx.filter.presence);
  }

  private emit(ctx: SyncContext, rows: store.PresenceRow[]): void {
    const now = Date.now();
    let n = 0;
    const limit = ctx.filter.presence?.limit;
    for (const row of rows) {
      if (ctx.ignored.has(row.user_id)) continue;
      if (!eventAllowed(ctx.filter.presence, { type: 'm.presence', sender: row.user_id })) continue;
      if (limit !== undefined && n >= limit) break;
      ctx.res.presence.events.push({ type: 'm.presence', sender: row.user_id, content: presenceContent(row, now) });
      n++;
    }
  }
}
