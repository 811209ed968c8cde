// Pushers: POST /pushers/set (create, update, delete with kind null) and GET /pushers; removal
// when their device is logged out or deleted and when the account is deactivated (Synapse's
// remove_pushers_by_devices and delete_all_pushers_for_user).
import type { Database, Queryable } from '../db/pool.js';
import { MatrixError } from '../http/errors.js';
import * as store from './pushers-store.js';

/** The path every push gateway serves (the spec; Synapse refuses any other). */
export const NOTIFY_PATH = '/_matrix/push/v1/notify';
const MAX_PUSHKEY_BYTES = 512;
const MAX_APP_ID_CHARS = 64;

export interface SetPusherBody {
  kind: string | null;
  app_id: string;
  pushkey: string;
  app_display_name?: string;
  device_display_name?: string;
  profile_tag?: string;
  lang?: string;
  data?: Record<string, unknown>;
  append?: boolean;
}

export class PusherService {
  /** Told when a pusher is set here, so delivery starts watching for it at once. */
  onChange: () => void = () => undefined;

  constructor(private readonly db: Database) {}

  async list(userId: string): Promise<unknown[]> {
    return (await store.pushersOf(this.db, userId)).map((p) => ({
      pushkey: p.pushkey,
      kind: p.kind,
      app_id: p.app_id,
      app_display_name: p.app_display_name,
      device_display_name: p.device_display_name,
      profile_tag: p.profile_tag,
      lang: p.lang,
      data: p.data,
    }));
  }

  async set(userId: string, deviceId: string, body: SetPusherBody): Promise<void> {
    if (body.kind === null) {
      // Deleting one that does not exist is not an error (Synapse answers {} too).
      await store.deletePusher(this.db, userId, body.app_id, body.pushkey);
      return;
    }
    const missing = (['app_display_name', 'device_display_name', 'lang', 'data'] as const).filter((k) => body[k] === undefined);
    if (missing.length > 0) throw new MatrixError('M_MISSING_PARAM', `Missing parameters: ${missing.join(', ')}`);
    // Email pushers need 3PIDs and mail, which Prat does not have.
    if (body.kind !== 'http') throw new MatrixError('M_INVALID_PARAM', `Unsupported pusher kind '${body.kind}'`);
    if (Buffer.byteLength(body.pushkey, 'utf8') > MAX_PUSHKEY_BYTES) throw new MatrixError('M_INVALID_PARAM', `'pushkey' is longer than ${MAX_PUSHKEY_BYTES} bytes`);
    if (body.app_id.length > MAX_APP_ID_CHARS) throw new MatrixError('M_INVALID_PARAM', `'app_id' is longer than ${MAX_APP_ID_CHARS} characters`);
    const data = body.data!;
    checkHttpData(data);
    await this.db.withTx('pusher_set', async (tx) => {
      if (body.append !== true) await store.deleteForOtherUsers(tx, body.app_id, body.pushkey, userId);
      await store.upsertPusher(tx, {
        userId,
        deviceId,
        kind: body.kind!,
        appId: body.app_id,
        pushkey: body.pushkey,
        appDisplayName: body.app_display_name!,
        deviceDisplayName: body.device_display_name!,
        profileTag: body.profile_tag ?? '',
        lang: body.lang!,
        data,
        now: Date.now(),
        // Delivery starts from now: events before the pusher existed are not pushed.
        lastStreamOrdering: await store.maxStreamOrdering(tx),
      });
    });
    this.onChange();
  }

  /** AccountService.devicesDeletedListeners: logout and device deletion take the pushers along. */
  readonly onDevicesDeleted = async (userId: string, deviceIds: string[]): Promise<void> => {
    await store.deleteByDevices(this.db, userId, deviceIds);
  };

  /** AccountService.deactivationListeners. */
  readonly onDeactivated = async (userId: string): Promise<void> => {
    await store.deleteAllOf(this.db, userId);
  };

  get dbForReads(): Queryable {
    return this.db;
  }
}

/** data of an http pusher: url (required, path /_matrix/push/v1/notify) and an optional format. */
function checkHttpData(data: Record<string, unknown>): void {
  const url = data['url'];
  if (url === undefined) throw new MatrixError('M_MISSING_PARAM', "'url' required in data for HTTP pusher");
  if (typeof url !== 'string') throw new MatrixError('M_INVALID_PARAM', "'data.url' must be a string");
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new MatrixError('M_INVALID_PARAM', "'data.url' is not a valid URL");
  }
  // The spec asks for HTTPS, but, as in Synapse, that is the gateway operator's business.
  if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') throw new MatrixError('M_INVALID_PARAM', "'data.url' must be an http(s) URL");
  if (parsed.pathname !== NOTIFY_PATH) throw new MatrixError('M_INVALID_PARAM', `'data.url' must have a path of '${NOTIFY_PATH}'`);
  const format = data['format'];
  if (format !== undefined && typeof format !== 'string') throw new MatrixError('M_INVALID_PARAM', "'data.format' must be a string");
}
