// The two streams the keys module owns: to-device messages and device-list changes, read
// through its services in the sync's snapshot (src/keys/positions.ts describes the contract).
// One-time key counts and unused fallback key types ride along with to-device: they are sent
// in every response.
import type { Queryable } from '../../db/pool.js';
import type { KeysService } from '../../keys/service.js';
import type { ToDeviceService } from '../../keys/to-device.js';
import { LATEST_SQL } from '../store/positions.js';
import type { StreamProvider, SyncContext } from './types.js';

// Both keys streams read the same heads row pair; one read per snapshot serves both latest().
const headsOfSnapshot = new WeakMap<Queryable, Promise<{ toDevice: number; deviceLists: number }>>();
function heads(keys: KeysService, tx: Queryable): Promise<{ toDevice: number; deviceLists: number }> {
  let p = headsOfSnapshot.get(tx);
  if (!p) headsOfSnapshot.set(tx, (p = keys.streamHeads(tx)));
  return p;
}

export class ToDeviceStream implements StreamProvider {
  readonly name = 'toDevice' as const;
  readonly latestSql = LATEST_SQL.toDevice;

  constructor(
    private readonly keys: KeysService,
    private readonly toDevice: ToDeviceService,
  ) {}

  async latest(tx: Queryable): Promise<number> {
    return (await heads(this.keys, tx)).toDevice;
  }

  full(ctx: SyncContext): Promise<void> {
    return this.between(ctx, 0, ctx.to.toDevice);
  }

  async between(ctx: SyncContext, from: number, to: number): Promise<void> {
    // Nothing queued past `from` when the head has not moved: no inbox read.
    if (to > from) {
      const msgs = await this.toDevice.toDeviceSince(ctx.userId, ctx.deviceId, from, undefined, ctx.tx);
      ctx.res.to_device.events.push(...msgs.events);
      // When cut, next_batch stops at the last delivered message; the rest comes next time.
      if (msgs.limited) ctx.cap.toDevice = msgs.position;
    }
    const { counts, fallback } = await this.keys.syncKeyFigures(ctx.userId, ctx.deviceId, ctx.tx);
    ctx.res.device_one_time_keys_count = counts;
    ctx.res.device_unused_fallback_key_types = fallback;
  }
}

export class DeviceListsStream implements StreamProvider {
  readonly name = 'deviceLists' as const;
  readonly latestSql = LATEST_SQL.deviceLists;

  constructor(
    private readonly keys: KeysService,
    /** Users who started or stopped sharing a room with the user between two room positions. */
    private readonly membershipChanges: (db: Queryable, userId: string, from: number, to: number) => Promise<{ joined: string[]; left: string[] }>,
    private readonly usersSharingRooms: (db: Queryable, userId: string) => Promise<string[]>,
  ) {}

  async latest(tx: Queryable): Promise<number> {
    return (await heads(this.keys, tx)).deviceLists;
  }

  // An initial sync carries no device-list changes: the client queries every device it needs.
  async full(_ctx: SyncContext): Promise<void> {}

  async between(ctx: SyncContext, from: number, to: number): Promise<void> {
    const since = ctx.since!;
    // Everything in the sync's snapshot (no second connection: see KeysService.changedUsersBetween).
    const among = to > from ? await this.usersSharingRooms(ctx.tx, ctx.userId) : [];
    const changed = await this.keys.changedUsersBetween(ctx.userId, from, to, ctx.tx, among);
    const membership = await this.membershipChanges(ctx.tx, ctx.userId, since.events, ctx.to.events);
    const changedSet = new Set([...changed, ...membership.joined]);
    ctx.res.device_lists.changed = [...changedSet].sort();
    ctx.res.device_lists.left = membership.left.filter((u) => !changedSet.has(u)).sort();
  }
}
