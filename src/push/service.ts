// Push rules: the user's ruleset (defaults merged with their own rules), CRUD with before/after,
// enabled and actions; and, for new room events, evaluation for each local member into
// event_push_actions (the notification counts of /sync and GET /notifications).
import type { Database, Queryable } from '../db/pool.js';
import { MatrixError, notFound } from '../http/errors.js';
import type { AccountDataService } from '../sync/account-data.js';
import { DefaultsEvaluation, evaluate, type EvalContext, type EvalEvent } from './evaluate.js';
import { buildRuleset, defaultRules, isKnownAction, type Action, type Condition, type PushRule, type RuleKind, type Ruleset, RULE_KINDS } from './rules.js';
import type { PushActionsOf } from '../rooms/store/events.js';
import { RulesCache } from './rules-cache.js';
import * as store from './store.js';

export const PUSH_RULES_TYPE = 'm.push_rules';

export interface NewRule {
  actions: unknown[];
  conditions?: unknown[];
  pattern?: string;
}

export function parseKind(kind: string): RuleKind {
  if (!(RULE_KINDS as readonly string[]).includes(kind)) throw new MatrixError('M_INVALID_PARAM', `Unknown push rule kind '${kind}'`);
  return kind as RuleKind;
}

function checkActions(actions: unknown[]): Action[] {
  for (const a of actions) if (!isKnownAction(a)) throw new MatrixError('M_INVALID_PARAM', `Unrecognised push rule action: ${JSON.stringify(a)}`);
  return actions as Action[];
}

function checkConditions(conditions: unknown[]): Condition[] {
  for (const c of conditions) {
    if (typeof c !== 'object' || c === null || Array.isArray(c) || typeof (c as Record<string, unknown>)['kind'] !== 'string') {
      throw new MatrixError('M_INVALID_PARAM', 'Each condition must be an object with a kind');
    }
  }
  return conditions as Condition[];
}

export class PushService {
  /** Rules of the users events are evaluated for; `rulesChanged` hears other processes' edits. */
  private readonly rulesCache = new RulesCache();

  constructor(
    private readonly db: Database,
    private readonly accountData: AccountDataService,
  ) {}

  /** A user's rules changed in the database (the prat_push_rules announcement). */
  rulesChanged(userId: string): void {
    this.rulesCache.invalidate(userId);
  }

  /** Reads outside a snapshot (the push rule endpoints). */
  get dbForReads(): Queryable {
    return this.db;
  }

  async ruleset(db: Queryable, userId: string): Promise<Ruleset> {
    const { rules, overrides } = await store.userRules(db, userId);
    return buildRuleset(userId, rules, overrides);
  }

  /** The m.push_rules account data content: {global: ruleset}. */
  async pushRulesContent(db: Queryable, userId: string): Promise<{ global: Ruleset }> {
    return { global: forClients(await this.ruleset(db, userId)) };
  }

  async getRule(userId: string, kind: RuleKind, ruleId: string): Promise<PushRule> {
    const rs = forClients(await this.ruleset(this.db, userId));
    const r = rs[kind].find((x) => x.rule_id === ruleId);
    if (!r) throw notFound('Unknown push rule');
    return r;
  }

  async putRule(userId: string, kind: RuleKind, ruleId: string, body: NewRule, before?: string, after?: string): Promise<void> {
    if (ruleId.startsWith('.')) throw new MatrixError('M_INVALID_PARAM', "Rule ids starting with '.' are reserved for server-default rules");
    if (ruleId.length === 0 || ruleId.includes('/') || ruleId.includes('\\')) throw new MatrixError('M_INVALID_PARAM', 'Invalid rule id');
    if (before !== undefined && after !== undefined) throw new MatrixError('M_INVALID_PARAM', 'Give before or after, not both');
    const actions = checkActions(body.actions);
    let conditions: Condition[] | null = null;
    let pattern: string | null = null;
    if (kind === 'content') {
      if (typeof body.pattern !== 'string') throw new MatrixError('M_MISSING_PARAM', 'Content rules need a pattern');
      pattern = body.pattern;
    } else if (kind === 'override' || kind === 'underride') {
      conditions = checkConditions(body.conditions ?? []);
    } else if (kind === 'room' && !ruleId.startsWith('!')) {
      throw new MatrixError('M_INVALID_PARAM', 'A room rule id must be a room id');
    } else if (kind === 'sender' && !ruleId.startsWith('@')) {
      throw new MatrixError('M_INVALID_PARAM', 'A sender rule id must be a user id');
    }
    const anchor = before ?? after;
    if (anchor?.startsWith('.')) throw new MatrixError('M_INVALID_PARAM', 'before/after must name a user-defined rule');
    await this.edit(userId, 'push_rule_put', async (tx) => {
      const ids = (await store.ruleIdsOfKind(tx, userId, kind)).filter((id) => id !== ruleId);
      let index = 0; // A new rule without before/after goes first: the most recent is the most specific.
      const existing = (await store.ruleIdsOfKind(tx, userId, kind)).indexOf(ruleId);
      if (anchor !== undefined) {
        const at = ids.indexOf(anchor);
        if (at < 0) throw notFound('before/after rule not found');
        index = before !== undefined ? at : at + 1;
      } else if (existing >= 0) {
        index = existing; // An update without before/after keeps its place.
      }
      ids.splice(index, 0, ruleId);
      await store.upsertRule(tx, userId, kind, ruleId, index, { conditions, pattern, actions });
      for (let i = 0; i < ids.length; i++) if (ids[i] !== ruleId) await store.setOrdering(tx, userId, kind, ids[i]!, i);
      await store.setOrdering(tx, userId, kind, ruleId, index);
    });
  }

  async deleteRule(userId: string, kind: RuleKind, ruleId: string): Promise<void> {
    if (ruleId.startsWith('.')) {
      // Server-default rules cannot be deleted; an unknown dotted id is simply not found.
      if (defaultRules(userId)[kind].some((r) => r.rule_id === ruleId)) throw new MatrixError('M_INVALID_PARAM', 'Server-default rules cannot be deleted');
      throw notFound('Unknown push rule');
    }
    await this.edit(userId, 'push_rule_delete', async (tx) => {
      if (!(await store.deleteRule(tx, userId, kind, ruleId))) throw notFound('Unknown push rule');
    });
  }

  async setEnabled(userId: string, kind: RuleKind, ruleId: string, enabled: boolean): Promise<void> {
    await this.edit(userId, 'push_rule_enabled', async (tx) => {
      if (ruleId.startsWith('.')) {
        if (!defaultRules(userId)[kind].some((r) => r.rule_id === ruleId)) throw notFound('Unknown push rule');
        await store.overrideDefaultEnabled(tx, userId, kind, ruleId, enabled);
      } else if (!(await store.setRuleEnabled(tx, userId, kind, ruleId, enabled))) throw notFound('Unknown push rule');
    });
  }

  async setActions(userId: string, kind: RuleKind, ruleId: string, actions: unknown[]): Promise<void> {
    const checked = checkActions(actions);
    await this.edit(userId, 'push_rule_actions', async (tx) => {
      if (ruleId.startsWith('.')) {
        if (!defaultRules(userId)[kind].some((r) => r.rule_id === ruleId)) throw notFound('Unknown push rule');
        await store.overrideDefaultActions(tx, userId, kind, ruleId, checked);
      } else if (!(await store.setRuleActions(tx, userId, kind, ruleId, checked))) throw notFound('Unknown push rule');
    });
  }

  /** Runs an edit under the user's rule lock and bumps m.push_rules so syncs see the new rules. */
  private async edit(userId: string, name: string, fn: (tx: Queryable) => Promise<void>): Promise<void> {
    let pos: number;
    try {
      pos = await this.db.withTx(name, async (tx) => {
        await store.lockUserRules(tx, userId);
        await fn(tx);
        // The stored content is a marker; sync and GET serve the rules computed at read time.
        return this.accountData.setIn(tx, userId, '', PUSH_RULES_TYPE, { changed: true });
      });
    } finally {
      this.rulesCache.invalidate(userId);
    }
    this.accountData.notify(userId, pos);
  }

  // ---- evaluation ------------------------------------------------------------------------------

  /**
   * Evaluates one event for each local member (except its sender): what to store for those it
   * notifies. `members` maps each joined local user to their display name in the room. The rows
   * are written by the event's own write (rooms/store/events.ts), in its transaction.
   */
  async evaluateEvent(
    db: Queryable,
    event: EvalEvent & { event_id: string },
    threadId: string,
    members: ReadonlyMap<string, string | null>,
    ctx: Omit<EvalContext, 'displayName'>,
  ): Promise<PushActionsOf[]> {
    const users = [...members.keys()].filter((u) => u !== event.sender);
    if (users.length === 0) return [];
    const rulesets = await this.rulesCache.rulesetsOf(db, users);
    const out: PushActionsOf[] = [];
    // One context for all members (this runs for every member of a room, for every event).
    const memberCtx: EvalContext = { ...ctx, displayName: null };
    // With the default override rules, a membership event notifies nobody but an invitee
    // (.m.rule.invite_for_me; .m.rule.member_event silences the rest): a join in a big room
    // need not walk every member's rules.
    const membership = event.type === 'm.room.member' ? event.state_key : undefined;
    // The default rules see who evaluates only through the event's body (user name, display
    // name), its m.mentions and an invite's state_key: for an event with none of these, every
    // member with the default rules gets the same outcome, evaluated once.
    const sameForDefaults = membership === undefined && typeof event.content['body'] !== 'string' && !Object.hasOwn(event.content, 'm.mentions');
    let defaultsOutcome: ReturnType<typeof evaluate> | undefined;
    let defaults: DefaultsEvaluation | undefined;
    for (let i = 0; i < users.length; i++) {
      const u = users[i]!;
      const { ruleset, defaultOverrides, allDefault } = rulesets[i]!;
      if (membership !== undefined && defaultOverrides && u !== membership) continue;
      memberCtx.displayName = members.get(u) ?? null;
      let outcome: ReturnType<typeof evaluate>;
      if (sameForDefaults && allDefault) outcome = defaultsOutcome ??= evaluate(ruleset, event, u, memberCtx);
      else if (allDefault) outcome = (defaults ??= new DefaultsEvaluation(ruleset, event, memberCtx)).outcome(ruleset, u, memberCtx);
      else outcome = evaluate(ruleset, event, u, memberCtx);
      if (!outcome.notify) continue;
      out.push({ userId: u, threadId, actions: outcome.actions, notify: outcome.notify, highlight: outcome.highlight });
    }
    return out;
  }
}

/** Room and sender rules carry no conditions or pattern on the wire; others as stored. */
export function forClients(rs: Ruleset): Ruleset {
  const out = {} as Ruleset;
  for (const kind of RULE_KINDS) out[kind] = rs[kind].map((r) => ({ ...r }));
  return out;
}
