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
  // A plain map, oldest entries dropped first when full: a hit is one lookup (this runs for every
  // member of a room, for every event; an LRU's re-insertion per hit costs more than the rest).
  private readonly entries = new Map<string, UserRuleset & { loadedAt: number }>();
  private generation = 0;

  /** The rulesets of `userIds`, in their order. */
  async rulesetsOf(db: Queryable, userIds: string[]): Promise<UserRuleset[]> {
    const now = Date.now();
    const out: UserRuleset[] = new Array(userIds.length);
    let missing: string[] | undefined;
    for (let i = 0; i < userIds.length; i++) {
      const hit = this.entries.get(userIds[i]!);
      if (hit !== undefined && hit.loadedAt > now - TTL_MS) out[i] = hit;
      else (missing ??= []).push(userIds[i]!);
    }
    if (missing === undefined) return out;
    const generation = this.generation;
    const loaded = await store.rulesOfUsers(db, missing);
    const keep = generation === this.generation;
    const built = new Map<string, UserRuleset>();
    for (const [u, r] of loaded) {
      const entry = {
        ruleset: buildRuleset(u, r.rules, r.overrides),
        defaultOverrides: !r.rules.some((x) => x.kind === 'override') && !r.overrides.some((x) => x.kind === 'override'),
        allDefault: r.rules.length === 0 && r.overrides.length === 0,
      };
      built.set(u, entry);
      if (keep) {
        this.entries.delete(u);
        this.entries.set(u, { ...entry, loadedAt: now });
        if (this.entries.size > MAX_USERS) this.entries.delete(this.entries.keys().next().value!);
      }
    }
    for (let i = 0; i < userIds.length; i++) out[i] ??= built.get(userIds[i]!)!;
    return out;
  }

  /** The user's rules changed (committed): the next evaluation reads them again. */
  invalidate(userId: string): void {
    this.generation++;
    this.entries.delete(userId);
  }
}
