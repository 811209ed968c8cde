// Which member events each (user, device) has already been sent, per room, so a sync with
// lazy_load_members and without include_redundant_members does not send them again (Synapse's
// lazy_loaded_members_cache). In memory, bounded and expiring: forgetting an entry only means
// sending a member event once more, which is always correct.
//
// Each entry remembers the events position of the response that carried it (its next_batch). An
// entry counts as "the client has it" only when the client syncs from that position or later:
// a client retrying an older token (a response it never received) gets the members again.
import { Lru } from '../rooms/lru.js';

/** Entries per (user, device): a few hundred rooms' worth of recently seen senders. */
const PER_DEVICE = 500;
/** Devices remembered at once; the least recently syncing are forgotten first. */
const MAX_DEVICES = 2_000;
/** A device that has not synced for this long starts over (Synapse: 30 minutes). */
const TTL_MS = 30 * 60_000;

interface Sent {
  nid: number;
  pos: number;
}

export class DeviceMembers {
  constructor(private readonly entries: Lru<string, Sent>) {}

  /** Whether this member event was sent in a response the client has acknowledged by `since`. */
  has(roomId: string, userId: string, eventNid: number, since: number): boolean {
    const e = this.entries.get(`${roomId}\u0000${userId}`);
    return e !== undefined && e.nid === eventNid && e.pos <= since;
  }

  record(roomId: string, userId: string, eventNid: number, pos: number): void {
    const key = `${roomId}\u0000${userId}`;
    const prior = this.entries.get(key);
    // Keep the earliest response that carried this event: acknowledging any of them will do.
    if (prior && prior.nid === eventNid && prior.pos <= pos) return;
    this.entries.set(key, { nid: eventNid, pos });
  }
}

export class LazyMembersCache {
  // Map order is recency order: a device is re-inserted on every use, the oldest evicted.
  private readonly devices = new Map<string, { members: DeviceMembers; used: number }>();

  constructor(private readonly opts: { perDevice: number; maxDevices: number; ttlMs: number } = { perDevice: PER_DEVICE, maxDevices: MAX_DEVICES, ttlMs: TTL_MS }) {}

  /** The device's entries; `fresh` (an initial sync: the client starts over) drops the old ones. */
  forDevice(userId: string, deviceId: string, fresh: boolean, now = Date.now()): DeviceMembers {
    const key = `${userId}\u0000${deviceId}`;
    let hit = this.devices.get(key);
    this.devices.delete(key);
    if (!hit || fresh || hit.used < now - this.opts.ttlMs) hit = { members: new DeviceMembers(new Lru(this.opts.perDevice)), used: now };
    hit.used = now;
    this.devices.set(key, hit);
    this.evict(now);
    return hit.members;
  }

  get size(): number {
    return this.devices.size;
  }

  private evict(now: number): void {
    for (const [key, d] of this.devices) {
      if (this.devices.size <= this.opts.maxDevices && d.used >= now - this.opts.ttlMs) break;
      this.devices.delete(key);
    }
  }
}
