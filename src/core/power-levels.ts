// Reading m.room.power_levels and the create event into numbers the auth rules compare.
//
// Two kinds of reading live here and must not be confused:
//  - *Reading* a level out of state (userPowerLevel, requiredPowerLevelForEvent, ...) is lenient,
//    because whatever is in state was already accepted under its room version's rules, and pre-v10
//    rooms legitimately hold "50" strings (and v1-v5 rooms floats). A value that cannot be read at
//    all falls back to the default rather than throwing, so one odd event cannot wedge a room.
//  - *Validating* a new power levels event (validatePowerLevelsContent) is strict per room version:
//    v10+ accepts only integers.
import type { StateLookup } from './auth-rules.js';
import type { RoomVersion } from './room-versions.js';
import type { JsonObject, JsonValue, RoomEvent } from './types.js';

/** Defaults from the client-server API's m.room.power_levels schema. */
export const POWER_LEVEL_DEFAULTS = Object.freeze({
  usersDefault: 0,
  eventsDefault: 0,
  /**
   * 50 whether or not a power levels event exists. Old spec text said 0 when there is no power
   * levels event; that was reverted (MSC1304, matrix-spec PR 1479) because it let anyone take over
   * a room before its power levels were sent, and Synapse and gomatrixserverlib use 50.
   */
  stateDefault: 50,
  ban: 50,
  kick: 50,
  redact: 50,
  invite: 0,
  notificationsRoom: 50,
});

/** Level a room creator has when the room has no power levels event (v1-v11). */
export const CREATOR_DEFAULT_POWER_LEVEL = 100;

/** The top-level integer properties whose changes rule "power levels" 6 (v11 numbering) polices. */
export const NAMED_LEVEL_KEYS = [
  'users_default',
  'events_default',
  'state_default',
  'ban',
  'redact',
  'kick',
  'invite',
] as const;
export type NamedLevelKey = (typeof NAMED_LEVEL_KEYS)[number];

/** Spec fragment "v1-stringy-power-levels": optional whitespace, one optional sign, decimal digits. */
const INTEGER_STRING = /^\s*[+-]?[0-9]+\s*$/;

/**
 * Reads one power level value the way room versions 1-9 allow it: integers, strings holding an
 * integer, floats truncated toward zero (v1-v5 "floaty" power levels), and, as Synapse's `int()`
 * does, booleans as 0/1. Returns undefined for anything else (null, objects, "abc", NaN).
 */
export function parsePowerLevelValue(value: unknown): number | undefined {
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) return undefined;
    const n = Math.trunc(value);
    return n === 0 ? 0 : n; // no -0
  }
  if (typeof value === 'string') {
    if (!INTEGER_STRING.test(value)) return undefined;
    const n = Number.parseInt(value.trim(), 10);
    return Number.isFinite(n) ? (n === 0 ? 0 : n) : undefined;
  }
  if (typeof value === 'boolean') return value ? 1 : 0;
  return undefined;
}

/** v10+: a power level must be a JSON integer, nothing else. */
export function isStrictPowerLevelInteger(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value);
}

/** Whether a value is acceptable as a power level in this room version. */
export function isValidPowerLevelValue(value: unknown, version: RoomVersion): boolean {
  return version.integerPowerLevels ? isStrictPowerLevelInteger(value) : parsePowerLevelValue(value) !== undefined;
}

export interface PowerLevels {
  readonly usersDefault: number;
  readonly eventsDefault: number;
  readonly stateDefault: number;
  readonly ban: number;
  readonly kick: number;
  readonly redact: number;
  readonly invite: number;
  /** Explicit per-user levels (creators never appear here in v12). */
  readonly users: ReadonlyMap<string, number>;
  /** Explicit per-event-type levels. */
  readonly events: ReadonlyMap<string, number>;
  /** Notification levels; `room` is always present (default 50). */
  readonly notifications: ReadonlyMap<string, number>;
}

function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function own(obj: JsonObject, key: string): JsonValue | undefined {
  return Object.prototype.hasOwnProperty.call(obj, key) ? obj[key] : undefined;
}

function readLevel(content: JsonObject, key: string, fallback: number): number {
  // Synapse treats an explicit null like an absent key.
  const raw = own(content, key);
  if (raw === undefined || raw === null) return fallback;
  return parsePowerLevelValue(raw) ?? fallback;
}

function readLevelMap(value: JsonValue | undefined): Map<string, number> {
  const out = new Map<string, number>();
  if (!isObject(value)) return out;
  for (const [k, v] of Object.entries(value)) {
    const n = parsePowerLevelValue(v);
    if (n !== undefined) out.set(k, n);
  }
  return out;
}

// State resolution runs the auth rules thousands of times against the same power levels event,
// and each run reads several levels; event content is never mutated once an event exists, so the
// parse is kept per content object.
const parsed = new WeakMap<JsonObject, PowerLevels>();
const NO_POWER_LEVELS: JsonObject = Object.freeze({}) as JsonObject;

/** Parses power levels content (or its absence) into levels with every default filled in. */
export function parsePowerLevelsContent(content: JsonObject | undefined): PowerLevels {
  const c = content ?? NO_POWER_LEVELS;
  const cached = parsed.get(c);
  if (cached) return cached;
  const levels = parseUncached(c);
  parsed.set(c, levels);
  return levels;
}

function parseUncached(c: JsonObject): PowerLevels {
  const notifications = readLevelMap(own(c, 'notifications'));
  if (!notifications.has('room')) notifications.set('room', POWER_LEVEL_DEFAULTS.notificationsRoom);
  return {
    usersDefault: readLevel(c, 'users_default', POWER_LEVEL_DEFAULTS.usersDefault),
    eventsDefault: readLevel(c, 'events_default', POWER_LEVEL_DEFAULTS.eventsDefault),
    stateDefault: readLevel(c, 'state_default', POWER_LEVEL_DEFAULTS.stateDefault),
    ban: readLevel(c, 'ban', POWER_LEVEL_DEFAULTS.ban),
    kick: readLevel(c, 'kick', POWER_LEVEL_DEFAULTS.kick),
    redact: readLevel(c, 'redact', POWER_LEVEL_DEFAULTS.redact),
    invite: readLevel(c, 'invite', POWER_LEVEL_DEFAULTS.invite),
    users: readLevelMap(own(c, 'users')),
    events: readLevelMap(own(c, 'events')),
    notifications,
  };
}

/** The power levels in force, from the state lookup. */
export function currentPowerLevels(lookup: StateLookup): PowerLevels {
  return parsePowerLevelsContent(lookup('m.room.power_levels', '')?.content);
}

/**
 * The room creators in the sense of the room version:
 *  - v1-v10: `content.creator` of the create event;
 *  - v11: the create event's sender (`creator` is gone);
 *  - v12: the sender plus every string in `content.additional_creators`.
 */
export function roomCreators(create: Pick<RoomEvent, 'sender' | 'content'> | undefined, version: RoomVersion): Set<string> {
  const creators = new Set<string>();
  if (!create) return creators;
  if (version.implicitRoomCreator) {
    creators.add(create.sender);
  } else {
    const creator = own(create.content, 'creator');
    if (typeof creator === 'string') creators.add(creator);
  }
  if (version.privilegedCreators) {
    const extra = own(create.content, 'additional_creators');
    if (Array.isArray(extra)) {
      for (const u of extra) if (typeof u === 'string') creators.add(u);
    }
  }
  return creators;
}

/** v12+: whether the user is a room creator and so has infinite power. */
export function isPrivilegedCreator(userId: string, lookup: StateLookup, version: RoomVersion): boolean {
  return version.privilegedCreators && roomCreators(lookup('m.room.create', ''), version).has(userId);
}

/**
 * A user's power level. v12 creators are Infinity, which makes "target level < sender level"
 * false between two creators, so creators cannot kick or ban each other, as intended.
 */
export function userPowerLevel(userId: string, lookup: StateLookup, version: RoomVersion): number {
  if (isPrivilegedCreator(userId, lookup, version)) return Number.POSITIVE_INFINITY;
  const pl = lookup('m.room.power_levels', '');
  if (pl) {
    const levels = parsePowerLevelsContent(pl.content);
    return levels.users.get(userId) ?? levels.usersDefault;
  }
  // Before any power levels event, the creator is the only one with power.
  return roomCreators(lookup('m.room.create', ''), version).has(userId) ? CREATOR_DEFAULT_POWER_LEVEL : 0;
}

/**
 * The spec's "required power level" for sending an event of this type: `events[type]`, else
 * `state_default` for state events and `events_default` for others.
 */
export function requiredPowerLevelForEvent(type: string, isState: boolean, lookup: StateLookup): number {
  const levels = currentPowerLevels(lookup);
  return levels.events.get(type) ?? (isState ? levels.stateDefault : levels.eventsDefault);
}

/** `ban`, `kick`, `redact`, `invite` and the defaults, with spec defaults filled in. */
export function namedPowerLevel(name: NamedLevelKey, lookup: StateLookup): number {
  const levels = currentPowerLevels(lookup);
  switch (name) {
    case 'users_default':
      return levels.usersDefault;
    case 'events_default':
      return levels.eventsDefault;
    case 'state_default':
      return levels.stateDefault;
    case 'ban':
      return levels.ban;
    case 'kick':
      return levels.kick;
    case 'redact':
      return levels.redact;
    case 'invite':
      return levels.invite;
  }
}

/** Level needed to trigger a notification of this kind (e.g. `room` for @room). */
export function notificationPowerLevel(key: string, lookup: StateLookup): number {
  return currentPowerLevels(lookup).notifications.get(key) ?? POWER_LEVEL_DEFAULTS.notificationsRoom;
}

/**
 * Loose user id check used for the `users` keys of power levels: a leading `@` and a `:`. This is
 * the check every deployed server applies there (Synapse's UserID.from_string); tightening it would
 * reject power levels events other servers accept and split the room.
 */
export function looksLikeUserId(value: string): boolean {
  return value.startsWith('@') && value.indexOf(':') > 0;
}

/**
 * Validates the shape of new power levels content for this room version, returning a reason if it
 * must be rejected (auth rule "power levels" 1-4, v11 numbering, plus the v12 creator rule). The
 * comparison against the previous power levels is done by the auth rules.
 */
export function validatePowerLevelsContent(
  content: JsonObject,
  version: RoomVersion,
  creators: ReadonlySet<string> = new Set(),
): string | undefined {
  if (version.integerPowerLevels) {
    for (const key of NAMED_LEVEL_KEYS) {
      const v = own(content, key);
      if (v !== undefined && !isStrictPowerLevelInteger(v)) {
        return `power levels "${key}" must be an integer, got ${JSON.stringify(v)}`;
      }
    }
    for (const key of ['events', 'notifications'] as const) {
      const v = own(content, key);
      if (v === undefined) continue;
      if (!isObject(v)) return `power levels "${key}" must be an object`;
      for (const [k, level] of Object.entries(v)) {
        if (!isStrictPowerLevelInteger(level)) {
          return `power levels "${key}.${k}" must be an integer, got ${JSON.stringify(level)}`;
        }
      }
    }
  }
  const users = own(content, 'users');
  if (users !== undefined) {
    if (!isObject(users)) return 'power levels "users" must be an object';
    for (const [userId, level] of Object.entries(users)) {
      if (!looksLikeUserId(userId)) return `power levels "users" key ${JSON.stringify(userId)} is not a valid user id`;
      if (!isValidPowerLevelValue(level, version)) {
        return version.integerPowerLevels
          ? `power level of ${userId} must be an integer, got ${JSON.stringify(level)}`
          : `power level of ${userId} is not an integer or integer string: ${JSON.stringify(level)}`;
      }
    }
    if (version.privilegedCreators) {
      for (const userId of Object.keys(users)) {
        if (creators.has(userId)) {
          return `room creator ${userId} cannot be listed in power levels "users": creators have infinite power`;
        }
      }
    }
  }
  return undefined;
}
