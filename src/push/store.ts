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

// Counts past the user's read receipt. An unthreaded receipt (thread_id '') covers every thread;
// a threaded one covers its thread only ('main' is the main timeline, thread_id '' here). Which receipt wins is the furthest of m.read and
// m.read.private (the spec's "Marking notifications as read").
const COUNTS: NamedQuery = {
  name: 'push_counts',
  text: `WITH reads AS (
    SELECT room_id, thread_id, MAX(event_stream_ordering) AS pos FROM sync_receipts
    WHERE user_id = $1 AND room_id = ANY($2) AND receipt_type IN ('m.read', 'm.read.private')
    GROUP BY room_id, thread_id
  )
  SELECT a.room_id, a.thread_id,
         COUNT(*) FILTER (WHERE a.notif) AS notification_count,
         COUNT(*) FILTER (WHERE a.highlight) AS highlight_count
  FROM event_push_actions a
  LEFT JOIN reads u ON u.room_id = a.room_id AND u.thread_id = ''
  LEFT JOIN reads t ON t.room_id = a.room_id AND t.thread_id = COALESCE(NULLIF(a.thread_id, ''), 'main')
  WHERE a.user_id = $1 AND a.room_id = ANY($2) AND a.stream_ordering <= $3
    AND a.stream_ordering > GREATEST(COALESCE(u.pos, 0), COALESCE(t.pos, 0))
    AND ${NOT_FROM_IGNORED}
  GROUP BY a.room_id, a.thread_id`,
};

export async function notificationCounts(
  db: Queryable,
  userId: string,
  rooms: string[],
  upTo: number,
): Promise<{ room_id: string; thread_id: string; notification_count: number; highlight_count: number }[]> {
  if (rooms.length === 0) return [];
  return (await db.query(COUNTS, [userId, rooms, upTo])).rows;
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
