// The push rules of the users events are evaluated for, kept in memory: every event of a shared
// room reads them for each local member, under the room's lock.
//
// Kept right by invalidation: this process drops a user's entry after committing an edit of
// their rules, and a trigger (migrations/0009) announces every change on prat_push_rules, which
// every process (this one included) hears through its LISTEN connection. A load that overlaps an
// invalidation is used but not kept (the generation check), so an entry never outlives a change
// it did not see. Entries also expire after a minute, which bounds how long a missed
// announcement (a lost LISTEN connection) can leave a copy stale.
import type { Queryable } from '../db/pool.js';
import { Lru } from '../rooms/lru.js';
import type { DefaultOverride, StoredRule } from './rules.js';
import * as store from './store.js';

export const PUSH_RULES_CHANNEL = 'prat_push_rules';
const TTL_MS = 60_000;
const MAX_USERS = 100_000;

type UserRules = { rules: StoredRule[]; overrides: DefaultOverride[] };

export class RulesCache {
  private readonly entries = new Lru<string, UserRules & { loadedAt: number }>(MAX_USERS);
  private generation = 0;

  async rulesOf(db: Queryable, userIds: string[]): Promise<Map<string, UserRules>> {
    const now = Date.now();
    const out = new Map<string, UserRules>();
    const missing: string[] = [];
    for (const u of userIds) {
      const hit = this.entries.get(u);
      if (hit && hit.loadedAt > now - TTL_MS) out.set(u, hit);
      else missing.push(u);
    }
    if (missing.length === 0) return out;
    const generation = this.generation;
    const loaded = await store.rulesOfUsers(db, missing);
    const keep = generation === this.generation;
    for (const [u, r] of loaded) {
      out.set(u, r);
      if (keep) this.entries.set(u, { ...r, loadedAt: now });
    }
    return out;
  }

  /** The user's rules changed (committed): the next evaluation reads them again. */
  invalidate(userId: string): void {
    this.generation++;
    this.entries.delete(userId);
  }
}
