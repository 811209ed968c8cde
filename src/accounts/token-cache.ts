// Access tokens seen recently, kept in memory: every request authenticates, and the lookup
// would otherwise be a round trip to the database each time.
//
// Kept right by invalidation: this process drops a user's tokens after committing anything that
// revokes one of them or changes the user's standing (AccountService), and a trigger
// (migrations/0010) announces every such change on prat_auth, which every process (this one
// included) hears through its LISTEN connection. A load that overlaps an invalidation is used but
// not kept (the generation check), so an entry never outlives a change it did not see. Entries
// also expire, which bounds how long a missed announcement (a lost LISTEN connection) could
// keep a revoked token working.
import { Lru } from '../rooms/lru.js';
import type { TokenRow } from './store.js';

export const AUTH_CHANNEL = 'prat_auth';
const TTL_MS = 60_000;
const MAX_TOKENS = 100_000;

export class TokenCache {
  private entries = new Lru<string, { row: TokenRow; loadedAt: number }>(MAX_TOKENS);
  private readonly byUser = new Map<string, Set<string>>();
  private generation = 0;

  /** The row of an access token (the key: the token itself), from the cache or `load`. */
  async get(token: string, load: () => Promise<TokenRow | undefined>): Promise<TokenRow | undefined> {
    const now = Date.now();
    const hit = this.entries.get(token);
    if (hit && hit.loadedAt > now - TTL_MS) return hit.row;
    const generation = this.generation;
    const row = await load();
    // Unknown tokens are not kept: a token is only ever created, never revived.
    if (row && generation === this.generation) {
      this.entries.set(token, { row, loadedAt: now });
      let tokens = this.byUser.get(row.user_id);
      if (!tokens) this.byUser.set(row.user_id, (tokens = new Set()));
      tokens.add(token);
      // The index must cover every entry (invalidation finds them through it): start afresh.
      if (this.byUser.size > MAX_TOKENS) {
        this.byUser.clear();
        this.entries = new Lru(MAX_TOKENS);
      }
    }
    return row;
  }

  /** The user's tokens or standing changed (committed): their next requests read them again. */
  invalidateUser(userId: string): void {
    this.generation++;
    for (const token of this.byUser.get(userId) ?? []) this.entries.delete(token);
    this.byUser.delete(userId);
  }
}
