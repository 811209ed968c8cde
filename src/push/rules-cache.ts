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
import { buildRuleset, type Ruleset } from './rules.js';
import * as store from './store.js';

export const PUSH_RULES_CHANNEL = 'prat_push_rules';
const TTL_MS = 60_000;
const MAX_USERS = 100_000;

/** A user's whole ruleset (defaults merged with their rules), built once. */
export interface UserRuleset {
  ruleset: Ruleset;
  /** The override rules are the spec's defaults, untouched (no rule of theirs, no change). */
  defaultOverrides: boolean;
  /** Every rule is the spec's default, untouched. */
  allDefault: boolean;
}

export class RulesCache {
  private readonly entries = new Lru<string, UserRuleset & { loadedAt: number }>(MAX_USERS);
  private generation = 0;

  async rulesetsOf(db: Queryable, userIds: string[]): Promise<Map<string, UserRuleset>> {
    const now = Date.now();
    const out = new Map<string, UserRuleset>();
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
      const entry = {
        ruleset: buildRuleset(u, r.rules, r.overrides),
        defaultOverrides: !r.rules.some((x) => x.kind === 'override') && !r.overrides.some((x) => x.kind === 'override'),
        allDefault: r.rules.length === 0 && r.overrides.length === 0,
      };
      out.set(u, entry);
      if (keep) this.entries.set(u, { ...entry, loadedAt: now });
    }
    return out;
  }

  /** The user's rules changed (committed): the next evaluation reads them again. */
  invalidate(userId: string): void {
    this.generation++;
    this.entries.delete(userId);
  }
}
