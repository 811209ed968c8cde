// GET /notifications: the events that notified the user, newest first, with their actions and
// whether they have been read. `from` is the stream position to continue below.
import type { Database } from '../db/pool.js';
import type { RoomDeps } from '../rooms/context.js';
import { serializeEvents } from '../rooms/read.js';
import { getRoomVersion } from '../core/room-versions.js';
import * as store from './store.js';

export class NotificationsService {
  constructor(
    private readonly db: Database,
    private readonly rooms: () => RoomDeps | undefined,
  ) {}

  async list(userId: string, before: number | null, onlyHighlight: boolean, limit: number): Promise<{ notifications: unknown[]; next_token?: string }> {
    const rows = limit === 0 ? [] : await store.listNotifications(this.db, userId, before, onlyHighlight, limit);
    const d = this.rooms();
    if (!d || rows.length === 0) return { notifications: [] };
    const events = await d.events.byIds(this.db, rows.map((r) => r.event_id), { fresh: true });
    const versions = new Map<string, string>();
    for (const r of await store.roomVersions(this.db, [...new Set(rows.map((r) => r.room_id))])) versions.set(r.room_id, r.version);
    const notifications: unknown[] = [];
    for (const row of rows) {
      const stored = events.get(row.event_id);
      const version = getRoomVersion(versions.get(row.room_id) ?? '');
      if (!stored || !version) continue;
      const [event] = await serializeEvents(d, this.db, [stored], version, { userId });
      notifications.push({ room_id: row.room_id, event, actions: row.actions, read: row.read, ts: row.received_ts });
    }
    const last = rows.at(-1);
    return rows.length === limit && last ? { notifications, next_token: String(last.stream_ordering) } : { notifications };
  }
}
