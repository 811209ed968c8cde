// Push rule evaluation: pure, no I/O. Given an event, the room context and a user's ruleset, the
// first enabled matching rule (override, content, room, sender, underride, in order) gives the
// actions. Follows the spec's condition definitions; where the spec is silent (word boundaries
// in content.body, unknown condition kinds never matching) it follows what Synapse does.
import { impliedConditions, RULE_KINDS, type Action, type Condition, type PushRule, type RuleKind, type Ruleset } from './rules.js';

export interface EvalEvent {
  type: string;
  sender: string;
  room_id: string;
  state_key?: string;
  content: Record<string, unknown>;
  [key: string]: unknown;
}

export interface EvalContext {
  /** Joined members in the room. */
  memberCount: number;
  /** The user's display name in the room (contains_display_name), if any. */
  displayName: string | null;
  /** Sender's power level, and the level each notification key needs (power_levels.notifications). */
  senderPowerLevel: number;
  notificationLevels: Record<string, number>;
}

export interface Outcome {
  ruleId: string | null;
  actions: Action[];
  notify: boolean;
  highlight: boolean;
}

/** Splits a dotted key into path segments; `\.` is a literal dot and `\\` a backslash. */
export function splitKey(key: string): string[] {
  const parts: string[] = [];
  let cur = '';
  for (let i = 0; i < key.length; i++) {
    const c = key[i]!;
    if (c === '\\' && (key[i + 1] === '.' || key[i + 1] === '\\')) {
      cur += key[++i];
    } else if (c === '.') {
      parts.push(cur);
      cur = '';
    } else cur += c;
  }
  parts.push(cur);
  return parts;
}

// Keys come from rules, so there are few distinct ones; splitting is cached.
const splitCache = new Map<string, string[]>();

export function lookup(event: Record<string, unknown>, key: string): unknown {
  let parts = splitCache.get(key);
  if (parts === undefined) {
    parts = splitKey(key);
    if (splitCache.size > 5000) splitCache.clear();
    splitCache.set(key, parts);
  }
  let v: unknown = event;
  for (const part of parts) {
    if (typeof v !== 'object' || v === null || Array.isArray(v) || !Object.hasOwn(v, part)) return undefined;
    v = (v as Record<string, unknown>)[part];
  }
  return v;
}

const regexCache = new Map<string, RegExp>();

/** Glob (`*` any run, `?` one character) to a case-insensitive regex, whole value or word-bounded. */
export function globRegex(glob: string, wordBoundary: boolean): RegExp {
  const cacheKey = `${wordBoundary ? 'w' : 'v'}${glob}`;
  let re = regexCache.get(cacheKey);
  if (re) return re;
  let body = '';
  for (const c of glob) {
    if (c === '*') body += '.*?';
    else if (c === '?') body += '.';
    else body += c.replace(/[\\^$.|+()[\]{}\-]/g, '\\$&');
  }
  // Word boundaries as Synapse draws them: not preceded or followed by a word character.
  re = wordBoundary ? new RegExp(`(?:^|\\W)(?:${body})(?:\\W|$)`, 'isu') : new RegExp(`^(?:${body})$`, 'isu');
  if (regexCache.size > 5000) regexCache.clear();
  regexCache.set(cacheKey, re);
  return re;
}

const ASCII = /^[\x00-\x7f]*$/;
let lastText: string | undefined;
let lastLower: string | null = null;

/** The text lowercased when it is ASCII (else null): the same body is checked for every member. */
function asciiLower(text: string): string | null {
  if (text !== lastText) {
    lastText = text;
    lastLower = ASCII.test(text) ? text.toLowerCase() : null;
  }
  return lastLower;
}

/**
 * Whether a case-insensitive search for `literal` in `text` may succeed. For ASCII text and an
 * ASCII literal, a substring test of the lowercased strings decides it (no other code points can
 * fold into them); it rules out most members of a big room before any regex runs.
 */
function mayContain(text: string, literal: string): boolean {
  const lower = asciiLower(text);
  if (lower === null || !ASCII.test(literal)) return true;
  return lower.includes(literal.toLowerCase());
}

function eventMatch(event: EvalEvent, cond: Condition): boolean {
  if (typeof cond.key !== 'string' || typeof cond.pattern !== 'string') return false;
  const value = lookup(event, cond.key);
  if (typeof value !== 'string') return false;
  const words = cond.key === 'content.body';
  if (words && !/[*?]/.test(cond.pattern) && !mayContain(value, cond.pattern)) return false;
  return globRegex(cond.pattern, words).test(value);
}

const isScalar = (v: unknown) => v === null || typeof v === 'string' || typeof v === 'boolean' || (typeof v === 'number' && Number.isInteger(v));

function memberCountMatches(is: unknown, count: number): boolean {
  if (typeof is !== 'string') return false;
  const m = /^(==|<=|>=|<|>)?(\d+)$/.exec(is);
  if (!m) return false;
  const n = Number(m[2]);
  switch (m[1]) {
    case '<':
      return count < n;
    case '>':
      return count > n;
    case '<=':
      return count <= n;
    case '>=':
      return count >= n;
    default:
      return count === n;
  }
}

export function conditionMatches(event: EvalEvent, cond: Condition, userId: string, ctx: EvalContext): boolean {
  switch (cond.kind) {
    case 'event_match':
      return eventMatch(event, cond);
    case 'event_property_is': {
      if (typeof cond.key !== 'string' || !isScalar(cond.value)) return false;
      const v = lookup(event, cond.key);
      return v !== undefined && isScalar(v) && v === cond.value;
    }
    case 'event_property_contains': {
      if (typeof cond.key !== 'string' || !isScalar(cond.value)) return false;
      const v = lookup(event, cond.key);
      return Array.isArray(v) && v.some((x) => isScalar(x) && x === cond.value);
    }
    case 'contains_display_name': {
      const body = event.content['body'];
      if (typeof body !== 'string' || !ctx.displayName) return false;
      return containsWord(body, ctx.displayName);
    }
    case 'room_member_count':
      return memberCountMatches(cond.is, ctx.memberCount);
    case 'sender_notification_permission': {
      if (typeof cond.key !== 'string') return false;
      const needed = ctx.notificationLevels[cond.key] ?? 50;
      return ctx.senderPowerLevel >= needed;
    }
    default:
      // The spec: a condition kind the server does not understand never matches.
      return false;
  }
}

/** Literal (not glob) word-bounded, case-insensitive search: display names may hold `*` or `?`. */
const wordRegexes = new Map<string, RegExp>();

function containsWord(body: string, word: string): boolean {
  if (!mayContain(body, word)) return false;
  let re = wordRegexes.get(word);
  if (re === undefined) {
    const escaped = word.replace(/[\\^$.*+?()[\]{}|\-]/g, '\\$&');
    re = new RegExp(`(?:^|\\W)${escaped}(?:\\W|$)`, 'iu');
    if (wordRegexes.size > 5000) wordRegexes.clear();
    wordRegexes.set(word, re);
  }
  return re.test(body);
}

function ruleMatches(kind: string, r: PushRule, event: EvalEvent, userId: string, ctx: EvalContext): boolean {
  if (kind === 'content') {
    if (typeof r.pattern !== 'string') return false;
    return eventMatch(event, { kind: 'event_match', key: 'content.body', pattern: r.pattern });
  }
  const conditions = kind === 'room' || kind === 'sender' ? impliedConditions(kind, r.rule_id) : (r.conditions ?? []);
  return conditions.every((c) => conditionMatches(event, c, userId, ctx));
}

/** Whether the actions notify, and whether they highlight. */
export function summarise(actions: Action[]): { notify: boolean; highlight: boolean } {
  let notify = false;
  let highlight = false;
  for (const a of actions) {
    // coalesce is a variant of notify; dont_notify is the legacy spelling of no actions.
    if (a === 'notify' || a === 'coalesce') notify = true;
    else if (typeof a === 'object' && a.set_tweak === 'highlight') highlight = a.value === undefined ? true : a.value === true;
  }
  return { notify, highlight: notify && highlight };
}

// The spec (v1.7): these legacy rules apply only to events without an m.mentions property.
const LEGACY_MENTION_RULES = new Set(['.m.rule.contains_display_name', '.m.rule.roomnotif', '.m.rule.contains_user_name']);

const NO_MATCH: Outcome = { ruleId: null, actions: [], notify: false, highlight: false };

/** The rules `evaluate` tries for this event, in order (enabled, and not legacy ones set aside by m.mentions). */
function* applicable(ruleset: Ruleset, event: EvalEvent): Generator<[RuleKind, PushRule, number]> {
  const hasMentions = Object.hasOwn(event.content, 'm.mentions');
  for (const kind of RULE_KINDS) {
    const rules = ruleset[kind];
    for (let i = 0; i < rules.length; i++) {
      const r = rules[i]!;
      if (!r.enabled || (hasMentions && r.default && LEGACY_MENTION_RULES.has(r.rule_id))) continue;
      yield [kind, r, i];
    }
  }
}

export function evaluate(ruleset: Ruleset, event: EvalEvent, userId: string, ctx: EvalContext): Outcome {
  // The loop of `applicable`, written out: this runs per member and event, a generator costs more.
  const hasMentions = Object.hasOwn(event.content, 'm.mentions');
  for (const kind of RULE_KINDS) {
    for (const r of ruleset[kind]) {
      if (!r.enabled || (hasMentions && r.default && LEGACY_MENTION_RULES.has(r.rule_id))) continue;
      if (ruleMatches(kind, r, event, userId, ctx)) return { ruleId: r.rule_id, actions: r.actions, ...summarise(r.actions) };
    }
  }
  return NO_MATCH;
}

// The default rules whose outcome depends on who evaluates them (their user id, localpart or
// display name). Every other default rule matches for all members or for none.
const PER_MEMBER_DEFAULTS = new Set(['.m.rule.invite_for_me', '.m.rule.is_user_mention', '.m.rule.contains_display_name', '.m.rule.contains_user_name']);

/**
 * Evaluation of one event for every member whose rules are all the spec's defaults (the rulesets
 * differ only in the user id inside them), prepared once: the rules that do not depend on the
 * member are tried once, and each member only tries the few that do, up to the first rule that
 * matches for everyone. With thousands of members this is what keeps a message cheap.
 */
export class DefaultsEvaluation {
  private readonly perMember: [RuleKind, number][] = [];
  private readonly fallback: Outcome;
  /** A membership event with a state key: the only kind .m.rule.invite_for_me can match. */
  private readonly invitable: boolean;
  /** The user ids in content.m.mentions.user_ids (.m.rule.is_user_mention matches no one else). */
  private readonly mentioned: ReadonlySet<unknown>;
  /** content.body, lowercased, when it is ASCII (null: not ASCII; undefined: no body). */
  private readonly bodyLower: string | null | undefined;
  /** The words of an ASCII body (maximal runs of [a-z0-9_]), lowercased. */
  private readonly words: ReadonlySet<string> | undefined;

  /** `sample`: the ruleset of any member with only default rules. */
  constructor(
    sample: Ruleset,
    private readonly event: EvalEvent,
    ctx: EvalContext,
  ) {
    let fallback = NO_MATCH;
    for (const [kind, r, i] of applicable(sample, event)) {
      if (PER_MEMBER_DEFAULTS.has(r.rule_id)) this.perMember.push([kind, i]);
      else if (ruleMatches(kind, r, event, '', ctx)) {
        fallback = { ruleId: r.rule_id, actions: r.actions, ...summarise(r.actions) };
        break;
      }
    }
    this.fallback = fallback;
    this.invitable = typeof event.state_key === 'string' && event.type.toLowerCase() === 'm.room.member';
    const ids = lookup(event, 'content.m\\.mentions.user_ids');
    this.mentioned = new Set(Array.isArray(ids) ? ids : []);
    const body = event.content['body'];
    this.bodyLower = typeof body === 'string' ? (ASCII.test(body) ? body.toLowerCase() : null) : undefined;
    this.words = typeof this.bodyLower === 'string' ? new Set(this.bodyLower.split(/[^a-z0-9_]+/)) : undefined;
  }

  /** The same outcome as `evaluate(ruleset, event, userId, ctx)` for a member with only default rules. */
  outcome(ruleset: Ruleset, userId: string, ctx: EvalContext): Outcome {
    for (const [kind, i] of this.perMember) {
      const r = ruleset[kind][i]!;
      if (this.mayMatch(r, userId, ctx) && ruleMatches(kind, r, this.event, userId, ctx)) return { ruleId: r.rule_id, actions: r.actions, ...summarise(r.actions) };
    }
    return this.fallback;
  }

  /**
   * False only when the member's rule cannot match, from what the constructor learnt of the
   * event: with thousands of members, most are ruled out here without a regex or an allocation.
   */
  private mayMatch(r: PushRule, userId: string, ctx: EvalContext): boolean {
    switch (r.rule_id) {
      case '.m.rule.invite_for_me':
        return this.invitable;
      case '.m.rule.is_user_mention':
        return this.mentioned.has(userId);
      case '.m.rule.contains_display_name':
        return this.bodyLower !== undefined && !!ctx.displayName && this.mayHaveWord(ctx.displayName, false);
      case '.m.rule.contains_user_name':
        return this.bodyLower !== undefined && typeof r.pattern === 'string' && this.mayHaveWord(r.pattern, true);
      default:
        return true;
    }
  }

  /**
   * Whether the body may hold `literal` as a word, case-insensitively. In an ASCII body, a literal
   * of word characters only is there exactly when it is one of the body's words (\W, even with
   * the regex's `iu` flags, matches every ASCII non-word character); other ASCII literals are
   * looked for as substrings; a glob, or a body that is not ASCII, is left to the regex.
   */
  private mayHaveWord(literal: string, glob: boolean): boolean {
    if (this.words === undefined || this.bodyLower == null) return true;
    if (WORD_CHARS.test(literal)) return this.words.has(literal.toLowerCase());
    if ((glob && /[*?]/.test(literal)) || !ASCII.test(literal)) return true;
    return this.bodyLower.includes(literal.toLowerCase());
  }
}

const WORD_CHARS = /^[A-Za-z0-9_]+$/;
