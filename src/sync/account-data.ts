// Account data (global and per room), tags and the ignored-users list. Every write takes the next
// account-data stream position and wakes the owner's syncs.
import type { Database, Queryable } from '../db/pool.js';
import { MatrixError } from '../http/errors.js';
import type { Notifier } from './notifier.js';
import * as store from './store/account-data.js';
import { nextPosition } from './store/positions.js';

/** Types the server maintains itself; clients may read but not write them (the spec: 405). */
const SERVER_GLOBAL_TYPES = new Set(['m.push_rules']);
const SERVER_ROOM_TYPES = new Set(['m.fully_read']);
export const IGNORED_USERS = 'm.ignored_user_list';
export const TAGS = 'm.tag';

export class AccountDataService {
  constructor(
    private readonly db: Database,
    private readonly notifier: Notifier,
  ) {}

  /**
   * Global types whose content the server computes (m.push_rules: the rules, from push); their
   * stored row is only a change marker for the stream.
   */
  readonly computed = new Map<string, (db: Queryable, userId: string) => Promise<Record<string, unknown>>>();

  async get(userId: string, roomId: string, type: string): Promise<Record<string, unknown>> {
    const compute = roomId === '' ? this.computed.get(type) : undefined;
    if (compute) return compute(this.db, userId);
    const content = await store.getAccountData(this.db, userId, roomId, type);
    // A deleted entry is kept as {} for incremental syncs; to GET it is gone.
    if (content === undefined || Object.keys(content).length === 0) throw new MatrixError('M_NOT_FOUND', 'Account data not found');
    return content;
  }

  /** PUT from a client: server-maintained types are refused. */
  async putFromClient(userId: string, roomId: string, type: string, content: Record<string, unknown>): Promise<void> {
    if ((roomId === '' ? SERVER_GLOBAL_TYPES : SERVER_ROOM_TYPES).has(type)) {
      throw new MatrixError('M_BAD_JSON', `Cannot set ${type} through this API`, { status: 405 });
    }
    if (type === IGNORED_USERS) validateIgnored(content);
    await this.set(userId, roomId, type, content);
  }

  /** Writes one entry (server-maintained types included), in its own transaction. */
  async set(userId: string, roomId: string, type: string, content: Record<string, unknown>): Promise<number> {
    const pos = await this.db.withTx('account_data_put', (tx) => this.setIn(tx, userId, roomId, type, content));
    this.notifier.notify('accountData', pos, { userIds: [userId] });
    return pos;
  }

  /**
   * Inside a caller's transaction (push rule edits bump m.push_rules this way). The caller must
   * call notify() after commit.
   */
  async setIn(tx: Queryable, userId: string, roomId: string, type: string, content: Record<string, unknown>): Promise<number> {
    const pos = await nextPosition(tx, 'account_data');
    await store.upsertAccountData(tx, userId, roomId, type, content, pos);
    return pos;
  }

  notify(userId: string, pos: number): void {
    this.notifier.notify('accountData', pos, { userIds: [userId] });
  }

  async getTags(userId: string, roomId: string): Promise<Record<string, Record<string, unknown>>> {
    const content = await store.getAccountData(this.db, userId, roomId, TAGS);
    const tags = content?.['tags'];
    return typeof tags === 'object' && tags !== null && !Array.isArray(tags) ? (tags as Record<string, Record<string, unknown>>) : {};
  }

  /** Adds or removes one tag: read-modify-write under the stream lock, so concurrent edits compose. */
  async editTag(userId: string, roomId: string, tag: string, value: Record<string, unknown> | null): Promise<void> {
    const pos = await this.db.withTx('room_tags_edit', async (tx) => {
      const pos = await nextPosition(tx, 'account_data');
      const content = (await store.getAccountData(tx, userId, roomId, TAGS)) ?? {};
      const tags = typeof content['tags'] === 'object' && content['tags'] !== null ? { ...(content['tags'] as Record<string, unknown>) } : {};
      if (value === null) delete tags[tag];
      else tags[tag] = value;
      await store.upsertAccountData(tx, userId, roomId, TAGS, { tags }, pos);
      return pos;
    });
    this.notify(userId, pos);
  }

  /** The users this user ignores (m.ignored_user_list), read in the caller's snapshot. */
  async ignoredUsers(db: Queryable, userId: string): Promise<Set<string>> {
    const content = await store.getAccountData(db, userId, '', IGNORED_USERS);
    const ignored = content?.['ignored_users'];
    return new Set(typeof ignored === 'object' && ignored !== null && !Array.isArray(ignored) ? Object.keys(ignored) : []);
  }
}

function validateIgnored(content: Record<string, unknown>): void {
  const ignored = content['ignored_users'];
  if (ignored === undefined) return;
  if (typeof ignored !== 'object' || ignored === null || Array.isArray(ignored)) {
    throw new MatrixError('M_BAD_JSON', "'ignored_users' must be an object");
  }
}
