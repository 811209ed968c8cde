// Push rules (user-defined rules and overrides of the defaults) and event push actions.
import type { NamedQuery, Queryable } from '../db/pool.js';
import type { Action, Condition, DefaultOverride, RuleKind, StoredRule } from './rules.js';

const SELECT_RULES = 'SELECT kind, rule_id, conditions, pattern, actions, enabled FROM push_rules WHERE user_id = $1 ORDER BY kind, ordering';
const SELECT_OVERRIDES = 'SELECT kind, rule_id, enabled, actions FROM push_rule_default_overrides WHERE user_id = $1';
const SELECT_RULES_AND_OVERRIDES_OF = `
  SELECT
    (SELECT json_agg(r)
       FROM (SELECT user_id, kind, rule_id, conditions, pattern, actions, enabled FROM push_rules WHERE user_id = ANY($1)
             ORDER BY user_id, kind, ordering) r) AS rules,
    (SELECT json_agg(o) FROM (SELECT user_id, kind, rule_id, enabled, actions FROM push_rule_default_overrides WHERE user_id = ANY($1)) o) AS overrides`;
const LOCK_USER = `SELECT pg_advisory_xact_lock(${0x70757368}, hashtext($1))`;
const IDS_OF_KIND = 'SELECT rule_id FROM push_rules WHERE user_id = $1 AND kind = $2 ORDER BY ordering';
const UPSERT_RULE = `
  INSERT INTO push_rules (user_id, kind, rule_id, ordering, conditions, pattern, actions, enabled)
  VALUES ($1, $2, $3, $4, $5, $6, $7, TRUE)
  ON CONFLICT (user_id, kind, rule_id) DO UPDATE SET ordering = EXCLUDED.ordering, conditions = EXCLUDED.conditions,
    pattern = EXCLUDED.pattern, actions = EXCLUDED.actions`;
const SET_ORDERING = 'UPDATE push_rules SET ordering = $4 WHERE user_id = $1 AND kind = $2 AND rule_id = $3';
const DELETE_RULE = 'DELETE FROM push_rules WHERE user_id = $1 AND kind = $2 AND rule_id = $3';
const SET_ENABLED = 'UPDATE push_rules SET enabled = $4 WHERE user_id = $1 AND kind = $2 AND rule_id = $3';
const SET_ACTIONS = 'UPDATE push_rules SET actions = $4 WHERE user_id = $1 AND kind = $2 AND rule_id = $3';
const OVERRIDE_ENABLED = `
  INSERT INTO push_rule_default_overrides (user_id, kind, rule_id, enabled) VALUES ($1, $2, $3, $4)
  ON CONFLICT (user_id, kind, rule_id) DO UPDATE SET enabled = EXCLUDED.enabled`;
const OVERRIDE_ACTIONS = `
  INSERT INTO push_rule_default_overrides (user_id, kind, rule_id, actions) VALUES ($1, $2, $3, $4)
  ON CONFLICT (user_id, kind, rule_id) DO UPDATE SET actions = EXCLUDED.actions`;

export async function userRules(db: Queryable, userId: string): Promise<{ rules: StoredRule[]; overrides: DefaultOverride[] }> {
  const [rules, overrides] = await Promise.all([db.query<StoredRule>(SELECT_RULES, [userId]), db.query<DefaultOverride>(SELECT_OVERRIDES, [userId])]);
  return { rules: rules.rows, overrides: overrides.rows };
}

/** Rules of many users (evaluation for every member of a room). */
export async function rulesOfUsers(db: Queryable, userIds: string[]): Promise<Map<string, { rules: StoredRule[]; overrides: DefaultOverride[] }>> {
  const out = new Map<string, { rules: StoredRule[]; overrides: DefaultOverride[] }>();
  for (const u of userIds) out.set(u, { rules: [], overrides: [] });
  if (userIds.length === 0) return out;
  // One round trip (this runs under a room's lock, for every event of a shared room).
  const res = await db.query<{ rules: Array<StoredRule & { user_id: string }> | null; overrides: Array<DefaultOverride & { user_id: string }> | null }>(
    SELECT_RULES_AND_OVERRIDES_OF,
    [userIds],
  );
  for (const r of res.rows[0]?.rules ?? []) out.get(r.user_id)?.rules.push(r);
  for (const o of res.rows[0]?.overrides ?? []) out.get(o.user_id)?.overrides.push(o);
  return out;
}

/** Serialises rule edits of one user (before/after renumbering reads, then writes). */
export async function lockUserRules(tx: Queryable, userId: string): Promise<void> {
  await tx.query(LOCK_USER, [userId]);
}

export async function ruleIdsOfKind(tx: Queryable, userId: string, kind: RuleKind): Promise<string[]> {
  return (await tx.query<{ rule_id: string }>(IDS_OF_KIND, [userId, kind])).rows.map((r) => r.rule_id);
}

export async function upsertRule(
  tx: Queryable,
  userId: string,
  kind: RuleKind,
  ruleId: string,
  ordering: number,
  rule: { conditions: Condition[] | null; pattern: string | null; actions: Action[] },
): Promise<void> {
  await tx.query(UPSERT_RULE, [
    userId,
    kind,
    ruleId,
    ordering,
    rule.conditions === null ? null : JSON.stringify(rule.conditions),
    rule.pattern,
    JSON.stringify(rule.actions),
  ]);
}

export async function setOrdering(tx: Queryable, userId: string, kind: RuleKind, ruleId: string, ordering: number): Promise<void> {
  await tx.query(SET_ORDERING, [userId, kind, ruleId, ordering]);
}

export async function deleteRule(tx: Queryable, userId: string, kind: RuleKind, ruleId: string): Promise<boolean> {
  return ((await tx.query(DELETE_RULE, [userId, kind, ruleId])).rowCount ?? 0) > 0;
}

export async function setRuleEnabled(tx: Queryable, userId: string, kind: RuleKind, ruleId: string, enabled: boolean): Promise<boolean> {
  return ((await tx.query(SET_ENABLED, [userId, kind, ruleId, enabled])).rowCount ?? 0) > 0;
}

export async function setRuleActions(tx: Queryable, userId: string, kind: RuleKind, ruleId: string, actions: Action[]): Promise<boolean> {
  return ((await tx.query(SET_ACTIONS, [userId, kind, ruleId, JSON.stringify(actions)])).rowCount ?? 0) > 0;
}

export async function overrideDefaultEnabled(tx: Queryable, userId: string, kind: RuleKind, ruleId: string, enabled: boolean): Promise<void> {
  await tx.query(OVERRIDE_ENABLED, [userId, kind, ruleId, enabled]);
}

export async function overrideDefaultActions(tx: Queryable, userId: string, kind: RuleKind, ruleId: string, actions: Action[]): Promise<void> {
  await tx.query(OVERRIDE_ACTIONS, [userId, kind, ruleId, JSON.stringify(actions)]);
}

// ---- event push actions and counts ------------------------------------------------------------

/**
 * Events from users the reader ignores (m.ignored_user_list) neither count nor list: the rows
 * are kept (unignoring brings them back) and left out when read. The ignored list is an InitPlan
 * evaluated once; when it is empty (NULL) the OR stops there and no event is looked up.
 */
const IGNORED_OF_USER = `(SELECT array_agg(k) FROM sync_account_data d,
    jsonb_object_keys(CASE WHEN jsonb_typeof(d.content->'ignored_users') = 'object' THEN d.content->'ignored_users' ELSE '{}'::jsonb END) k
  WHERE d.user_id = $1 AND d.room_id = '' AND d.data_type = 'm.ignored_user_list')`;
export const NOT_FROM_IGNORED = `(${IGNORED_OF_USER} IS NULL OR NOT EXISTS (
    SELECT 1 FROM event_nids n JOIN events e USING (event_nid) WHERE n.event_id = a.event_id AND e.sender = ANY(${IGNORED_OF_USER}::text[])))`;

export interface CountRow {
  room_id: string;
  thread_id: string;
  notification_count: number;
  highlight_count: number;
}

// Counts past the user's read receipt. An unthreaded receipt (thread_id '') covers every thread;
// a threaded one covers its thread only ('main' is the main timeline, thread_id '' here). Which
// receipt wins is the furthest of m.read and m.read.private (the spec's "Marking notifications
// as read").
/**
 * The counts, continuing earlier ones (UnreadCounts): per room, `known_receipts` and `known_upto`
 * describe counts already made up to known_upto against those receipts. Where the room's
 * receipts are still the same, only the actions after known_upto are counted (`delta`); else
 * everything after the receipts. Every room comes back with its receipts' signature, and one row
 * per thread with actions counted (thread_id NULL when there are none).
 *
 * The actions are read per room from the unthreaded receipt (or known_upto) on, as an index
 * range: every thread's effective read position is at least the unthreaded one, so nothing
 * unread lies below it, and a read history is never walked again.
 */
/**
 * The counting as common table expressions, ending in `counted` (the rows below), to be used
 * whole (COUNTS_SINCE) or inside a bigger statement (the woken sync's, src/sync/store/woken.ts).
 * `$1` is the user. `rooms`: an expression for the text[] of rooms; `asked`: a FROM item with
 * columns (room_id, known_receipts, known_upto), one row per room; `upTo`: the last position.
 */
export function countsCtes(p: { ignored: string; rooms: string; asked: string; upTo: string }): string {
  return `reads AS (
    SELECT room_id, thread_id, MAX(event_stream_ordering) AS pos FROM sync_receipts
    WHERE user_id = $1 AND room_id = ANY(${p.rooms}) AND receipt_type IN ('m.read', 'm.read.private')
    GROUP BY room_id, thread_id
  ), asked AS (
    SELECT q.room_id, q.known_receipts, q.known_upto,
           COALESCE((SELECT string_agg(r.thread_id || '=' || r.pos, ',' ORDER BY r.thread_id) FROM reads r WHERE r.room_id = q.room_id), '') AS receipts,
           COALESCE((SELECT r.pos FROM reads r WHERE r.room_id = q.room_id AND r.thread_id = ''), 0) AS unthreaded
    FROM ${p.asked}
  ), judged AS (
    SELECT room_id, receipts, unthreaded, known_upto, COALESCE(known_receipts = receipts AND known_upto <= ${p.upTo}, false) AS delta FROM asked
  ), bounded AS (
    SELECT room_id, receipts, delta, CASE WHEN delta THEN GREATEST(unthreaded, known_upto) ELSE unthreaded END AS from_pos FROM judged
  ), counted AS (
    SELECT b.room_id, b.receipts, b.delta, c.thread_id,
           COALESCE(c.notification_count, 0)::int AS notification_count, COALESCE(c.highlight_count, 0)::int AS highlight_count
    FROM bounded b
    LEFT JOIN LATERAL (
      SELECT a.thread_id, COUNT(*) FILTER (WHERE a.notif) AS notification_count, COUNT(*) FILTER (WHERE a.highlight) AS highlight_count
      FROM event_push_actions a
      LEFT JOIN reads t ON t.room_id = a.room_id AND t.thread_id = COALESCE(NULLIF(a.thread_id, ''), 'main')
      WHERE a.user_id = $1 AND a.room_id = b.room_id
        AND a.stream_ordering > b.from_pos
        AND a.stream_ordering <= ${p.upTo}
        AND a.stream_ordering > COALESCE(t.pos, 0)
        AND ${p.ignored}
      GROUP BY a.thread_id
    ) c ON true
  )`;
}
/** A row of `counted`: thread_id NULL for a room with nothing counted. */
export type CountedRow = Omit<CountRow, 'thread_id'> & { thread_id: string | null; receipts: string; delta: boolean };

const countsSinceSql = (ignored: string) =>
  `WITH ${countsCtes({ ignored, rooms: '$2', asked: 'unnest($2::text[], $3::text[], $4::bigint[]) AS q(room_id, known_receipts, known_upto)', upTo: '$5' })}
  SELECT * FROM counted`;
// Two statements: the ignored-senders test costs nothing to run when the list is empty, but its
// planning made the statement's (custom) plan cost more than running it.
const COUNTS_SINCE: NamedQuery = { name: 'push_counts_since', text: countsSinceSql('true') };
const COUNTS_SINCE_IGNORING: NamedQuery = { name: 'push_counts_since_ignoring', text: countsSinceSql(NOT_FROM_IGNORED) };

export async function countsSince(
  db: Queryable,
  userId: string,
  rooms: string[],
  knownReceipts: (string | null)[],
  knownUpTo: (number | null)[],
  upTo: number,
  ignoresSomeone: boolean,
): Promise<CountedRow[]> {
  return (await db.query(ignoresSomeone ? COUNTS_SINCE_IGNORING : COUNTS_SINCE, [userId, rooms, knownReceipts, knownUpTo, upTo])).rows;
}

/** The counts of `rooms` from scratch (COUNTS_SINCE with nothing known). */
export async function notificationCounts(db: Queryable, userId: string, rooms: string[], upTo: number): Promise<CountRow[]> {
  if (rooms.length === 0) return [];
  const rows = await countsSince(db, userId, rooms, rooms.map(() => null), rooms.map(() => null), upTo, true);
  return rows.filter((r): r is typeof r & { thread_id: string } => r.thread_id !== null && (r.notification_count > 0 || r.highlight_count > 0));
}

const NOTIFICATIONS = `
  SELECT a.room_id, a.event_id, a.stream_ordering, a.actions, a.received_ts,
         a.stream_ordering <= GREATEST(COALESCE(
           (SELECT MAX(event_stream_ordering) FROM sync_receipts r WHERE r.user_id = a.user_id AND r.room_id = a.room_id
              AND r.receipt_type IN ('m.read', 'm.read.private') AND (r.thread_id = '' OR r.thread_id = COALESCE(NULLIF(a.thread_id, ''), 'main'))), 0), 0) AS read
  FROM event_push_actions a
  WHERE a.user_id = $1 AND a.notif AND ($2::bigint IS NULL OR a.stream_ordering < $2) AND (NOT $3 OR a.highlight)
    AND ${NOT_FROM_IGNORED}
  ORDER BY a.stream_ordering DESC LIMIT $4`;

export async function listNotifications(
  db: Queryable,
  userId: string,
  before: number | null,
  onlyHighlight: boolean,
  limit: number,
): Promise<{ room_id: string; event_id: string; stream_ordering: number; actions: Action[]; received_ts: number; read: boolean }[]> {
  return (await db.query(NOTIFICATIONS, [userId, before, onlyHighlight, limit])).rows;
}

/** Room versions, to shape the listed events (read-only over the rooms schema). */
export async function roomVersions(db: Queryable, roomIds: string[]): Promise<{ room_id: string; version: string }[]> {
  return (await db.query('SELECT room_id, version FROM rooms WHERE room_id = ANY($1::text[])', [roomIds])).rows;
}
