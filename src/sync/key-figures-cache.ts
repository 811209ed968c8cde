// The key figures of a sync (device_one_time_keys_count, device_unused_fallback_key_types) of
// the devices whose long-polls were lately woken: a woken long-poll answered from memory
// (woken.ts) takes them from here.
//
// They change when a device uploads keys and when other users claim them. The keys service tells
// this process's changes at once; the database announces every change on KEY_FIGURES_CHANNEL
// (triggers, migrations/0014), so every process hears the others' too, and drops the device's
// entry. Figures read before a change must not be remembered after it: a reader takes a ticket
// before its snapshot, and remember() keeps the figures only if nothing changed since.
import { Lru } from '../rooms/lru.js';

export const KEY_FIGURES_CHANNEL = 'prat_key_figures';

const MAX_DEVICES = 100_000;

export interface SyncKeyFigures {
  counts: Record<string, number>;
  fallback: string[];
}

export class KeyFiguresCache {
  private readonly entries = new Lru<string, SyncKeyFigures>(MAX_DEVICES);
  /** Moves on with every change heard of (any device): a ticket taken before it is spent. */
  private generation = 0;

  /** Taken before the snapshot that reads the figures to remember. */
  ticket(): number {
    return this.generation;
  }

  remember(userId: string, deviceId: string, figures: SyncKeyFigures, ticket: number): void {
    if (ticket === this.generation) this.entries.set(keyOf(userId, deviceId), figures);
  }

  get(userId: string, deviceId: string): SyncKeyFigures | undefined {
    return this.entries.get(keyOf(userId, deviceId));
  }

  changed(userId: string, deviceId: string): void {
    this.generation++;
    this.entries.delete(keyOf(userId, deviceId));
  }

  /** A change announced by the database (`["user", "device"]`); one that does not parse clears all. */
  announced(payload: string): void {
    try {
      const [userId, deviceId] = JSON.parse(payload) as unknown[];
      if (typeof userId === 'string' && typeof deviceId === 'string') return this.changed(userId, deviceId);
    } catch {
      // fall through
    }
    this.clear();
  }

  /** Announcements may have been missed (the LISTEN connection was down). */
  clear(): void {
    this.generation++;
    this.entries.clear();
  }
}

function keyOf(userId: string, deviceId: string): string {
  return `${userId}\u0000${deviceId}`;
}
