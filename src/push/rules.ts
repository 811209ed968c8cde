// Push rule types and the spec's server-default rules (client-server API, "Predefined Rules"),
// in the spec's order. Defaults are code, not rows: a user's changes to them (enabled, actions)
// are stored as overrides, so new server versions bring new defaults to everyone.

export type RuleKind = 'override' | 'content' | 'room' | 'sender' | 'underride';
export const RULE_KINDS: readonly RuleKind[] = ['override', 'content', 'room', 'sender', 'underride'];

export type Action = string | { set_tweak: string; value?: unknown };

export interface Condition {
  kind: string;
  key?: string;
  pattern?: string;
  value?: unknown;
  is?: string;
}

export interface PushRule {
  rule_id: string;
  default: boolean;
  enabled: boolean;
  actions: Action[];
  conditions?: Condition[];
  pattern?: string;
}

export type Ruleset = Record<RuleKind, PushRule[]>;

const notifySound = (sound: string): Action[] => ['notify', { set_tweak: 'sound', value: sound }];
const highlight: Action = { set_tweak: 'highlight' };
const match = (key: string, pattern: string): Condition => ({ kind: 'event_match', key, pattern });
const rule = (rule_id: string, conditions: Condition[], actions: Action[], enabled = true): PushRule => ({
  rule_id,
  default: true,
  enabled,
  conditions,
  actions,
});

/** The server-default rules for one user, per the spec's definitions. */
export function defaultRules(userId: string): Ruleset {
  const localpart = userId.slice(1, userId.indexOf(':') > 0 ? userId.indexOf(':') : undefined);
  return {
    override: [
      rule('.m.rule.master', [], [], false),
      rule('.m.rule.suppress_notices', [match('content.msgtype', 'm.notice')], []),
      rule(
        '.m.rule.invite_for_me',
        [match('type', 'm.room.member'), match('content.membership', 'invite'), match('state_key', userId)],
        notifySound('default'),
      ),
      rule('.m.rule.member_event', [match('type', 'm.room.member')], []),
      rule(
        '.m.rule.is_user_mention',
        [{ kind: 'event_property_contains', key: 'content.m\\.mentions.user_ids', value: userId }],
        [...notifySound('default'), highlight],
      ),
      rule('.m.rule.contains_display_name', [{ kind: 'contains_display_name' }], [...notifySound('default'), highlight]),
      rule(
        '.m.rule.is_room_mention',
        [
          { kind: 'event_property_is', key: 'content.m\\.mentions.room', value: true },
          { kind: 'sender_notification_permission', key: 'room' },
        ],
        ['notify', highlight],
      ),
      rule('.m.rule.roomnotif', [match('content.body', '@room'), { kind: 'sender_notification_permission', key: 'room' }], ['notify', highlight]),
      rule('.m.rule.tombstone', [match('type', 'm.room.tombstone'), match('state_key', '')], ['notify', highlight]),
      rule('.m.rule.reaction', [match('type', 'm.reaction')], []),
      rule('.m.rule.room.server_acl', [match('type', 'm.room.server_acl'), match('state_key', '')], []),
      rule('.m.rule.suppress_edits', [{ kind: 'event_property_is', key: 'content.m\\.relates_to.rel_type', value: 'm.replace' }], []),
    ],
    content: [
      { rule_id: '.m.rule.contains_user_name', default: true, enabled: true, pattern: localpart, actions: [...notifySound('default'), highlight] },
    ],
    room: [],
    sender: [],
    underride: [
      rule('.m.rule.call', [match('type', 'm.call.invite')], notifySound('ring')),
      rule('.m.rule.encrypted_room_one_to_one', [{ kind: 'room_member_count', is: '2' }, match('type', 'm.room.encrypted')], notifySound('default')),
      rule('.m.rule.room_one_to_one', [{ kind: 'room_member_count', is: '2' }, match('type', 'm.room.message')], notifySound('default')),
      rule('.m.rule.message', [match('type', 'm.room.message')], ['notify']),
      rule('.m.rule.encrypted', [match('type', 'm.room.encrypted')], ['notify']),
    ],
  };
}

/** A user rule as stored. */
export interface StoredRule {
  kind: RuleKind;
  rule_id: string;
  conditions: Condition[] | null;
  pattern: string | null;
  actions: Action[];
  enabled: boolean;
}

export interface DefaultOverride {
  kind: string;
  rule_id: string;
  enabled: boolean | null;
  actions: Action[] | null;
}

/** The conditions a room or sender rule stands for (its id is the room or user). */
export function impliedConditions(kind: RuleKind, ruleId: string): Condition[] {
  if (kind === 'room') return [match('room_id', ruleId)];
  if (kind === 'sender') return [match('sender', ruleId)];
  return [];
}

/**
 * Merges a user's own rules (sorted) and overrides into the defaults: within each kind the user's
 * rules come before the defaults, except .m.rule.master, which always comes first.
 */
export function buildRuleset(userId: string, stored: StoredRule[], overrides: DefaultOverride[]): Ruleset {
  const defaults = defaultRules(userId);
  const out = {} as Ruleset;
  for (const kind of RULE_KINDS) {
    const user: PushRule[] = stored
      .filter((r) => r.kind === kind)
      .map((r) => {
        const pr: PushRule = { rule_id: r.rule_id, default: false, enabled: r.enabled, actions: r.actions };
        if (kind === 'content') pr.pattern = r.pattern ?? '';
        else if (kind === 'override' || kind === 'underride') pr.conditions = r.conditions ?? [];
        return pr;
      });
    const defs = defaults[kind].map((d) => {
      const o = overrides.find((x) => x.kind === kind && x.rule_id === d.rule_id);
      return { ...d, ...(o?.enabled != null ? { enabled: o.enabled } : {}), ...(o?.actions != null ? { actions: o.actions } : {}) };
    });
    const master = defs.filter((d) => d.rule_id === '.m.rule.master');
    out[kind] = [...master, ...user, ...defs.filter((d) => d.rule_id !== '.m.rule.master')];
  }
  return out;
}

export function isKnownAction(a: unknown): a is Action {
  if (a === 'notify' || a === 'dont_notify' || a === 'coalesce') return true;
  if (typeof a === 'object' && a !== null && !Array.isArray(a)) {
    const t = (a as Record<string, unknown>)['set_tweak'];
    return typeof t === 'string' && t.length > 0;
  }
  return false;
}
