// Send-to-device messaging (spec: client-server API, "Send-to-Device messaging"). Messages are
// queued per recipient device and delivered by sync, in order, then deleted once the device
// syncs with a token past them. The functions sync calls are toDeviceSince and
// deleteToDeviceUpTo (see positions.ts).
import type { Database, Queryable } from '../db/pool.js';
import { MatrixError } from '../http/errors.js';
import type { Requester } from '../http/types.js';
import type { Logger } from '../logger.js';
import { parseUserId } from '../accounts/user-ids.js';
import { Lru } from '../rooms/lru.js';
import * as streams from './store/streams.js';
import * as store from './store/to-device.js';
import { isObject, type Json } from './key-json.js';
import { emitStreamChange, type StreamListener } from './positions.js';

/** Transaction ids are kept this long: far beyond any client's retry window. */
const TXN_RETENTION_MS = 24 * 3600 * 1000;
const TXN_PRUNE_INTERVAL_MS = 3600 * 1000;
/** The spec's recommended bound on messages per sync response. */
export const DEFAULT_TO_DEVICE_LIMIT = 100;

export interface ToDeviceEvent {
  sender: string;
  type: string;
  content: Json;
}

/** Relays messages for users of other servers; absent until federation sends (then dropped). */
export type RemoteToDeviceSender = (serverName: string, sender: string, eventType: string, messages: Record<string, Record<string, Json>>) => Promise<void>;

export class ToDeviceService {
  readonly streamListeners: StreamListener[] = [];
  remoteSender: RemoteToDeviceSender | undefined;
  private lastPrune = 0;
  /** Per device, the position its queue was emptied up to by this process (deleteToDeviceUpTo). */
  private readonly emptiedUpTo = new Lru<string, number>(100_000);

  constructor(
    private readonly db: Database,
    private readonly serverName: string,
    private readonly log: Logger,
  ) {}

  /** PUT /sendToDevice/{eventType}/{txnId}: idempotent per sending device, event type and txnId. */
  async send(requester: Requester, eventType: string, txnId: string, messages: Record<string, unknown>): Promise<void> {
    const local: { userId: string; deviceId: string; content: Json }[] = [];
    const wildcard = new Map<string, Json>();
    const remote = new Map<string, Record<string, Record<string, Json>>>();
    for (const [userId, devices] of Object.entries(messages)) {
      const parsed = parseUserId(userId);
      if (!parsed) throw new MatrixError('M_INVALID_PARAM', `Invalid user id: ${userId}`);
      if (!isObject(devices)) throw new MatrixError('M_BAD_JSON', `'messages.${userId}' must map device ids to contents`);
      for (const [deviceId, content] of Object.entries(devices)) {
        if (!isObject(content)) throw new MatrixError('M_BAD_JSON', `'messages.${userId}.${deviceId}' must be an object`);
      }
      if (parsed.serverName !== this.serverName) {
        remote.set(parsed.serverName, { ...remote.get(parsed.serverName), [userId]: devices as Record<string, Json> });
        continue;
      }
      for (const [deviceId, content] of Object.entries(devices as Record<string, Json>)) {
        // `*` is every device of the user; a message also naming one device explicitly is then
        // superseded for that device by the explicit one (one message per device per request).
        if (deviceId === '*') wildcard.set(userId, content);
        else local.push({ userId, deviceId, content });
      }
    }

    const position = await this.db.withTx('send_to_device', async (tx) => {
      if (!(await store.claimTxn(tx, requester.userId, requester.deviceId, eventType, txnId))) return undefined;
      const explicit = new Set(local.map((m) => `${m.userId}\u0000${m.deviceId}`));
      // Messages to devices that do not exist are dropped, as Synapse does.
      const recipients = new Set((await store.existingDevices(tx, local)).map((d) => `${d.user_id}\u0000${d.device_id}`));
      const queued: store.QueuedMessage[] = local
        .filter((m) => recipients.has(`${m.userId}\u0000${m.deviceId}`))
        .map((m) => ({ userId: m.userId, deviceId: m.deviceId, content: JSON.stringify(m.content) }));
      for (const d of await store.devicesOf(tx, [...wildcard.keys()])) {
        if (explicit.has(`${d.user_id}\u0000${d.device_id}`)) continue;
        queued.push({ userId: d.user_id, deviceId: d.device_id, content: JSON.stringify(wildcard.get(d.user_id)) });
      }
      if (queued.length === 0) return null;
      const pos = await streams.advance(tx, 'to_device');
      await store.enqueue(tx, pos, requester.userId, eventType, queued);
      return { pos, users: [...new Set(queued.map((q) => q.userId))] };
    });
    if (position) {
      emitStreamChange(this.streamListeners, { stream: 'toDevice', position: position.pos, userIds: position.users }, (err) =>
        this.log.warn({ err }, 'to-device listener failed'),
      );
    }
    // A retried transaction (undefined) must not be relayed again either.
    if (position !== undefined) await this.relayRemote(requester.userId, eventType, remote);
    this.pruneTxnsNowAndThen();
  }

  private async relayRemote(sender: string, eventType: string, remote: Map<string, Record<string, Record<string, Json>>>): Promise<void> {
    for (const [server, messages] of remote) {
      if (!this.remoteSender) {
        this.log.debug({ server }, 'to-device message for another server dropped: federation sending is not available');
        continue;
      }
      await this.remoteSender(server, sender, eventType, messages).catch((err) =>
        this.log.warn({ err, server }, 'could not queue to-device messages for another server'),
      );
    }
  }

  private pruneTxnsNowAndThen(): void {
    const now = Date.now();
    if (now - this.lastPrune < TXN_PRUNE_INTERVAL_MS) return;
    this.lastPrune = now;
    store.pruneTxns(this.db, now - TXN_RETENTION_MS).catch((err) => this.log.warn({ err }, 'could not prune to-device transaction ids'));
  }

  /**
   * For sync: the device's messages after `from`, oldest first, at most `limit`. `position` is
   * the to-device position for next_batch: the stream head when everything was returned, the
   * last returned message's position when `limited` (the rest comes on the next sync).
   * Pass the sync's snapshot as `db` so the head and the rows agree.
   */
  async toDeviceSince(
    userId: string,
    deviceId: string,
    from: number,
    limit = DEFAULT_TO_DEVICE_LIMIT,
    db: Queryable = this.db,
  ): Promise<{ events: ToDeviceEvent[]; position: number; limited: boolean }> {
    const head = await streams.head(db, 'to_device');
    const rows = await store.messagesSince(db, userId, deviceId, from, head, limit + 1);
    const limited = rows.length > limit;
    const delivered = limited ? rows.slice(0, limit) : rows;
    return {
      events: delivered.map((r) => ({ sender: r.sender, type: r.event_type, content: JSON.parse(r.content) as Json })),
      position: limited ? delivered[delivered.length - 1]!.stream_id : Math.max(head, from),
      limited,
    };
  }

  /**
   * For sync: the device acknowledged everything up to `upTo` (it synced with that token). Every
   * sync with a token calls this; a long-poll repeats the same token until something arrives,
   * and a DELETE that finds nothing is still a round trip. So the position a device's queue was
   * emptied up to here is remembered: positions commit in order, and a token covers committed
   * messages only, so nothing at or below it can arrive after.
   */
  async deleteToDeviceUpTo(userId: string, deviceId: string, upTo: number, db: Queryable = this.db): Promise<number> {
    const key = `${userId}\u0000${deviceId}`;
    if ((this.emptiedUpTo.get(key) ?? -1) >= upTo) return 0;
    const deleted = await store.deleteUpTo(db, userId, deviceId, upTo);
    if (upTo > (this.emptiedUpTo.get(key) ?? -1)) this.emptiedUpTo.set(key, upTo);
    return deleted;
  }
}
