// The authorization rules of room versions 1-12 (spec v1.19, content/rooms/vN.md), as a pure
// function of an event, the state it is checked against, and the room version.
//
// Where Synapse (the implementation the federation converged on) and the spec text differ on an
// edge, the rule below follows Synapse so that this server reaches the same verdicts as the rest of
// the room; each such place says so.
//
// What is *not* decided here, and by whom:
//  - Signatures: cryptographic verification (sender's server, v1/v2 event id server, the
//    join_authorised_via_users_server's server) belongs to the signature checker;
//    checkRequiredSignatures() below only tells which servers must have signed.
//  - Hashes and redaction of events failing them.
//  - v3+ redactions: they pass the auth rules like any event (subject only to the required power
//    level for `m.room.redaction`); whether the redaction is *applied* is decided when the redacted
//    event is known: the sender has the redact level, or both events share the sender's server
//    (spec "Handling redactions"). v1/v2 keep the older rule inside the auth rules, done here.
import { authEventTypesFor, thirdPartyInviteToken } from './auth-events.js';
import { decodeBase64Any } from './base64.js';
import { encodeCanonicalJson } from './canonical-json.js';
import { toWirePdu } from './hashes.js';
import { isValidUserId } from './identifiers.js';
import {
  NAMED_LEVEL_KEYS,
  currentPowerLevels,
  parsePowerLevelValue,
  requiredPowerLevelForEvent,
  roomCreators,
  userPowerLevel,
  validatePowerLevelsContent,
} from './power-levels.js';
import { getRoomVersion, type RoomVersion } from './room-versions.js';
import { verifyJsonSignature } from './signing.js';
import type { AuthResult, EventReference, JsonObject, JsonValue, Pdu, RoomEvent, StateMap } from './types.js';
import { stateKey as joinStateKey } from './types.js';

/** The state an event is authorised against: its auth events, or the room state before it. */
export type StateLookup = (type: string, stateKey: string) => RoomEvent | undefined;

const ALLOW: AuthResult = Object.freeze({ allowed: true });

function reject(reason: string): AuthResult {
  return { allowed: false, reason };
}

function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function own(obj: JsonObject, key: string): JsonValue | undefined {
  return Object.prototype.hasOwnProperty.call(obj, key) ? obj[key] : undefined;
}

/** The part after the first `:` of a user, room or (v1/v2) event id. */
export function domainOf(id: string): string | undefined {
  const i = id.indexOf(':');
  return i < 0 ? undefined : id.slice(i + 1);
}

export function referenceId(ref: EventReference): string {
  return typeof ref === 'string' ? ref : ref[0];
}

function membershipOf(event: RoomEvent | undefined): JsonValue | undefined {
  return event ? own(event.content, 'membership') : undefined;
}

// ---------------------------------------------------------------------------------------------
// Rule 1: m.room.create

function checkCreate(event: RoomEvent, version: RoomVersion): AuthResult {
  if (event.prev_events.length > 0) return reject('m.room.create must not have prev_events');
  if (version.roomIdFromCreateEvent) {
    // The room id *is* the create event's id; a create PDU carrying its own room_id could not
    // hash to it, so any mismatch means the PDU had a room_id (v12 rule 1.2).
    if (event.room_id !== `!${event.event_id.slice(1)}`) {
      return reject('m.room.create must not carry a room_id in this room version');
    }
  } else {
    const roomDomain = domainOf(event.room_id);
    const senderDomain = domainOf(event.sender);
    if (roomDomain === undefined || roomDomain !== senderDomain) {
      return reject(`m.room.create room_id domain ${roomDomain ?? '(none)'} does not match sender domain ${senderDomain ?? '(none)'}`);
    }
  }
  const roomVersion = own(event.content, 'room_version');
  if (roomVersion !== undefined && (typeof roomVersion !== 'string' || getRoomVersion(roomVersion) === undefined)) {
    return reject(`m.room.create has unrecognised room_version ${JSON.stringify(roomVersion)}`);
  }
  // Presence only, as Synapse checks; v11 dropped the property and uses the sender instead.
  if (!version.implicitRoomCreator && own(event.content, 'creator') === undefined) {
    return reject('m.room.create has no creator property');
  }
  if (version.privilegedCreators) {
    const extra = own(event.content, 'additional_creators');
    if (extra !== undefined) {
      if (!Array.isArray(extra)) return reject('m.room.create additional_creators must be an array of user ids');
      for (const u of extra) {
        // The grammar `sender` must meet, historical localparts included.
        if (typeof u !== 'string' || !isValidUserId(u)) {
          return reject(`m.room.create additional_creators contains an invalid user id: ${JSON.stringify(u)}`);
        }
      }
    }
  }
  return ALLOW;
}

// ---------------------------------------------------------------------------------------------
// Rule 2 (v12: 3): the auth_events list itself, when the caller has it

/**
 * Checks an event's auth_events against the auth events selection algorithm: every cited event is
 * supplied, in the same room, of an expected (type, state_key), not duplicated, not rejected, and
 * (before v12) the create event is among them. In v12 citing the create event is itself an error,
 * since it is not among the selected types.
 */
export function checkAuthEventsList(
  event: RoomEvent,
  authEvents: Iterable<RoomEvent>,
  version: RoomVersion,
  isRejected: (eventId: string) => boolean = () => false,
): AuthResult {
  // Rule 1 allows or rejects a create event before rule 2 is reached, so its auth_events (which
  // should be empty) are never judged; Synapse does not judge them either.
  if (event.type === 'm.room.create') return ALLOW;
  const byId = new Map<string, RoomEvent>();
  for (const e of authEvents) byId.set(e.event_id, e);
  const expected = new Set(authEventTypesFor(event, version).map(([t, sk]) => joinStateKey(t, sk)));
  const seen = new Map<string, string>();
  for (const ref of event.auth_events) {
    const id = referenceId(ref);
    const authEvent = byId.get(id);
    if (!authEvent) return reject(`auth event ${id} was not supplied`);
    if (authEvent.room_id !== event.room_id) {
      return reject(`auth event ${id} belongs to room ${authEvent.room_id}, not ${event.room_id}`);
    }
    if (authEvent.state_key === undefined) return reject(`auth event ${id} is not a state event`);
    const key = joinStateKey(authEvent.type, authEvent.state_key);
    const prior = seen.get(key);
    if (prior !== undefined) {
      return reject(`duplicate auth events for (${authEvent.type}, ${JSON.stringify(authEvent.state_key)}): ${prior} and ${id}`);
    }
    if (!expected.has(key)) {
      return reject(`auth event ${id} of (${authEvent.type}, ${JSON.stringify(authEvent.state_key)}) is not one the auth events selection allows`);
    }
    if (isRejected(id)) return reject(`auth event ${id} was itself rejected`);
    seen.set(key, id);
  }
  if (!version.roomIdFromCreateEvent && !seen.has(joinStateKey('m.room.create', ''))) {
    return reject('no m.room.create event among the auth events');
  }
  return ALLOW;
}

/** A lookup over a set of events, keyed by (type, state_key). */
export function stateLookupFromEvents(events: Iterable<RoomEvent>): StateLookup {
  const map = new Map<string, RoomEvent>();
  for (const e of events) if (e.state_key !== undefined) map.set(joinStateKey(e.type, e.state_key), e);
  return (type, sk) => map.get(joinStateKey(type, sk));
}

/** A lookup over a state map of event ids, with a loader for the events. */
export function stateLookupFromStateMap(state: StateMap, getEvent: (eventId: string) => RoomEvent | undefined): StateLookup {
  return (type, sk) => {
    const id = state.get(joinStateKey(type, sk));
    return id === undefined ? undefined : getEvent(id);
  };
}

/**
 * Both halves for a received event: the auth_events list (rule 2 / v12 rule 3) and the rules
 * against those auth events. In v12 the create event is not among the auth events, so pass it
 * separately (it is the event whose id the room id names).
 */
export function checkEventAgainstAuthEvents(
  event: RoomEvent,
  authEvents: readonly RoomEvent[],
  version: RoomVersion,
  options: { createEvent?: RoomEvent; isRejected?: (eventId: string) => boolean } = {},
): AuthResult {
  const listed = checkAuthEventsList(event, authEvents, version, options.isRejected);
  if (!listed.allowed) return listed;
  // v12 rule 2: the room id must name an *accepted* create event.
  if (version.roomIdFromCreateEvent && event.type !== 'm.room.create' && options.createEvent && options.isRejected?.(options.createEvent.event_id)) {
    return reject(`the room's create event ${options.createEvent.event_id} was rejected`);
  }
  const cited = new Set(event.auth_events.map(referenceId));
  const used = authEvents.filter((e) => cited.has(e.event_id));
  if (options.createEvent && !used.some((e) => e.event_id === options.createEvent!.event_id)) {
    used.push(options.createEvent);
  }
  return checkEventAuth(event, stateLookupFromEvents(used), version);
}

// ---------------------------------------------------------------------------------------------
// The rules proper

/**
 * Whether `event` is allowed given `authState`: the state it is authorised against, either its auth
 * events (on receipt) or the room state before it (state resolution, current-state check). The
 * lookup must answer m.room.create even in v12, where the create event is not an auth event.
 */
export function checkEventAuth(event: RoomEvent, authState: StateLookup, version: RoomVersion): AuthResult {
  if (event.type === 'm.room.create') return checkCreate(event, version);

  const create = authState('m.room.create', '');
  if (!create) return reject('no m.room.create event in the auth state');

  if (version.roomIdFromCreateEvent && event.room_id !== `!${create.event_id.slice(1)}`) {
    return reject(`room id ${event.room_id} does not name the create event ${create.event_id}`);
  }
  // Power granted in one room must never authorise events in another (Synapse checks every auth
  // event's room; the create event stands in for them when the caller passes state).
  if (create.room_id !== event.room_id) {
    return reject(`the create event ${create.event_id} belongs to room ${create.room_id}, not ${event.room_id}`);
  }

  const federates = createAllowsFederation(create);
  if (!federates && domainOf(event.sender) !== domainOf(create.sender)) {
    return reject(`room is not federated (m.federate is false) and ${event.sender} is not on the creator's server`);
  }

  if (version.specialCaseAliasesAuth && event.type === 'm.room.aliases') {
    if (event.state_key === undefined) return reject('m.room.aliases must be a state event');
    if (event.state_key === '') return reject('m.room.aliases must have a non-empty state_key');
    if (event.state_key !== domainOf(event.sender)) {
      return reject(`m.room.aliases state_key ${JSON.stringify(event.state_key)} does not match the sender's server`);
    }
    return ALLOW;
  }

  if (event.type === 'm.room.member') return checkMembership(event, authState, version, create, federates);

  const senderMembership = membershipOf(authState('m.room.member', event.sender));
  if (senderMembership !== 'join') return reject(`${event.sender} is not joined to the room`);

  const senderLevel = userPowerLevel(event.sender, authState, version);

  if (event.type === 'm.room.third_party_invite') {
    const inviteLevel = currentPowerLevels(authState).invite;
    return senderLevel >= inviteLevel
      ? ALLOW
      : reject(`${event.sender} has power level ${senderLevel}, below the invite level ${inviteLevel}`);
  }

  const isState = event.state_key !== undefined;
  const required = requiredPowerLevelForEvent(event.type, isState, authState);
  if (senderLevel < required) {
    return reject(`${event.sender} has power level ${senderLevel}, below the ${required} required to send ${event.type}`);
  }

  if (isState && event.state_key!.startsWith('@') && event.state_key !== event.sender) {
    return reject(`state_key ${JSON.stringify(event.state_key)} is another user's id; only ${event.sender}'s own is allowed`);
  }

  if (event.type === 'm.room.power_levels') return checkPowerLevels(event, authState, version, senderLevel, create);

  if (event.type === 'm.room.redaction' && version.eventIdFormat === 'v1') {
    return checkV1Redaction(event, authState, senderLevel);
  }

  return ALLOW;
}

/**
 * Synapse federates only when `m.federate` is absent or exactly `true`; the spec says "set to
 * false", and a non-boolean value is malformed anyway, so treating it as "do not federate" is the
 * conservative reading and the one the network uses.
 */
export function createAllowsFederation(create: RoomEvent): boolean {
  const f = own(create.content, 'm.federate');
  return f === undefined || f === true;
}

// ---------------------------------------------------------------------------------------------
// m.room.member

function checkMembership(
  event: RoomEvent,
  authState: StateLookup,
  version: RoomVersion,
  create: RoomEvent,
  federates: boolean,
): AuthResult {
  const target = event.state_key;
  if (target === undefined) return reject('m.room.member event has no state_key');
  const membership = own(event.content, 'membership');
  if (membership === undefined) return reject('m.room.member event has no membership in content');

  if (membership === 'join') {
    // The creator's own first join, straight after the create event.
    const prev = event.prev_events.map(referenceId);
    if (prev.length === 1 && prev[0] === create.event_id) {
      const creator = version.implicitRoomCreator ? create.sender : own(create.content, 'creator');
      if (creator === target) return ALLOW;
    }
  }

  // Not in the spec's rule list but applied by Synapse: in a room that does not federate, no
  // membership may concern a user of another server either.
  if (!federates && domainOf(target) !== domainOf(create.sender)) {
    return reject(`room is not federated (m.federate is false) and ${target} is not on the creator's server`);
  }

  const senderMembership = membershipOf(authState('m.room.member', event.sender));
  const targetMembership = membershipOf(authState('m.room.member', target));
  const joinRulesEvent = authState('m.room.join_rules', '');
  // A join rules event whose join_rule is absent means "invite"; one that is present but
  // malformed (null, a number) matches no rule and so allows no joins, as in Synapse.
  const declaredRule = joinRulesEvent ? own(joinRulesEvent.content, 'join_rule') : undefined;
  const joinRule = declaredRule === undefined ? 'invite' : declaredRule;
  const levels = currentPowerLevels(authState);
  const senderLevel = userPowerLevel(event.sender, authState, version);

  switch (membership) {
    case 'join': {
      if (event.sender !== target) return reject(`${event.sender} cannot make ${target} join`);
      if (senderMembership === 'ban') return reject(`${target} is banned from the room`);
      const invitedOrJoined = senderMembership === 'invite' || senderMembership === 'join';
      if (joinRule === 'invite' || (version.knockJoinRule && joinRule === 'knock')) {
        return invitedOrJoined ? ALLOW : reject(`${target} is not invited to this ${joinRule} room`);
      }
      if (
        (version.restrictedJoinRule && joinRule === 'restricted') ||
        (version.knockRestrictedJoinRule && joinRule === 'knock_restricted')
      ) {
        if (invitedOrJoined) return ALLOW;
        const authoriser = own(event.content, 'join_authorised_via_users_server');
        if (typeof authoriser !== 'string') {
          return reject(`join to a ${joinRule} room without an invite needs join_authorised_via_users_server`);
        }
        // Synapse also requires the authorising user to be joined, which "a user with sufficient
        // permission to invite" implies since invites need a joined sender.
        if (membershipOf(authState('m.room.member', authoriser)) !== 'join') {
          return reject(`authorising user ${authoriser} is not joined to the room`);
        }
        const authoriserLevel = userPowerLevel(authoriser, authState, version);
        if (authoriserLevel < levels.invite) {
          return reject(`authorising user ${authoriser} has power level ${authoriserLevel}, below the invite level ${levels.invite}`);
        }
        return ALLOW;
      }
      if (joinRule === 'public') return ALLOW;
      return reject(`join rule ${JSON.stringify(joinRule)} does not allow ${target} to join`);
    }

    case 'invite': {
      if (Object.prototype.hasOwnProperty.call(event.content, 'third_party_invite')) {
        if (targetMembership === 'ban') return reject(`${target} is banned from the room`);
        return checkThirdPartyInvite(event, target, authState);
      }
      if (senderMembership !== 'join') return reject(`${event.sender} is not joined to the room and cannot invite`);
      if (targetMembership === 'join') return reject(`${target} is already joined to the room`);
      if (targetMembership === 'ban') return reject(`${target} is banned from the room`);
      return senderLevel >= levels.invite
        ? ALLOW
        : reject(`${event.sender} has power level ${senderLevel}, below the invite level ${levels.invite}`);
    }

    case 'leave': {
      if (event.sender === target) {
        const mayLeave =
          senderMembership === 'invite' ||
          senderMembership === 'join' ||
          (version.knockJoinRule && senderMembership === 'knock');
        return mayLeave
          ? ALLOW
          : reject(`${target} cannot leave: current membership is ${JSON.stringify(senderMembership ?? 'none')}`);
      }
      if (senderMembership !== 'join') return reject(`${event.sender} is not joined to the room and cannot kick or unban`);
      if (targetMembership === 'ban' && senderLevel < levels.ban) {
        return reject(`${event.sender} has power level ${senderLevel}, below the ban level ${levels.ban} needed to unban`);
      }
      const targetLevel = userPowerLevel(target, authState, version);
      if (senderLevel < levels.kick) {
        return reject(`${event.sender} has power level ${senderLevel}, below the kick level ${levels.kick}`);
      }
      if (targetLevel >= senderLevel) {
        return reject(`${event.sender} (power level ${senderLevel}) cannot kick ${target} (power level ${targetLevel})`);
      }
      return ALLOW;
    }

    case 'ban': {
      if (senderMembership !== 'join') return reject(`${event.sender} is not joined to the room and cannot ban`);
      if (senderLevel < levels.ban) {
        return reject(`${event.sender} has power level ${senderLevel}, below the ban level ${levels.ban}`);
      }
      const targetLevel = userPowerLevel(target, authState, version);
      if (targetLevel >= senderLevel) {
        return reject(`${event.sender} (power level ${senderLevel}) cannot ban ${target} (power level ${targetLevel})`);
      }
      return ALLOW;
    }

    case 'knock': {
      if (!version.knockJoinRule) return reject('knocking is not supported in this room version');
      if (joinRule !== 'knock' && !(version.knockRestrictedJoinRule && joinRule === 'knock_restricted')) {
        return reject(`join rule ${JSON.stringify(joinRule)} does not allow knocking`);
      }
      if (event.sender !== target) return reject(`${event.sender} cannot knock on behalf of ${target}`);
      if (senderMembership === 'ban' || senderMembership === 'invite' || senderMembership === 'join') {
        return reject(`${target} cannot knock: current membership is ${senderMembership}`);
      }
      return ALLOW;
    }

    default:
      return reject(`unknown membership ${JSON.stringify(membership)}`);
  }
}

function publicKeysOf(invite: RoomEvent): string[] {
  const keys: string[] = [];
  const single = own(invite.content, 'public_key');
  if (typeof single === 'string') keys.push(single);
  const list = own(invite.content, 'public_keys');
  if (Array.isArray(list)) {
    for (const entry of list) {
      if (isObject(entry) && typeof entry['public_key'] === 'string') keys.push(entry['public_key']);
    }
  }
  return keys;
}

function decodeKey(text: string): Uint8Array | undefined {
  // Identity servers have published keys in URL-safe base64 as well as standard.
  try {
    return decodeBase64Any(text);
  } catch {
    return undefined;
  }
}

function checkThirdPartyInvite(event: RoomEvent, target: string, authState: StateLookup): AuthResult {
  const tpi = own(event.content, 'third_party_invite');
  if (!isObject(tpi)) return reject('third_party_invite must be an object');
  const signed = own(tpi, 'signed');
  if (!isObject(signed)) return reject('third_party_invite has no signed object');
  const mxid = own(signed, 'mxid');
  const token = own(signed, 'token');
  if (mxid === undefined || token === undefined) return reject('third_party_invite.signed needs both mxid and token');
  if (mxid !== target) return reject(`third_party_invite.signed.mxid ${JSON.stringify(mxid)} does not match state_key ${target}`);
  const tokenString = thirdPartyInviteToken(event.content);
  const invite = tokenString === undefined ? undefined : authState('m.room.third_party_invite', tokenString);
  if (!invite) return reject(`no m.room.third_party_invite with token ${JSON.stringify(token)} in the room`);
  if (invite.sender !== event.sender) {
    return reject(`${event.sender} did not send the third party invite (${invite.sender} did)`);
  }
  // Any ed25519 signature by any listed key allows, as the spec says. (Synapse abandons a key at
  // its first failing signature; for a bundle an identity server signed honestly the outcome is
  // the same.)
  const signatures = own(signed, 'signatures');
  if (isObject(signatures)) {
    for (const keyText of publicKeysOf(invite)) {
      const key = decodeKey(keyText);
      if (!key) continue;
      for (const [server, block] of Object.entries(signatures)) {
        if (!isObject(block)) continue;
        for (const keyId of Object.keys(block)) {
          if (!keyId.startsWith('ed25519:')) continue;
          if (verifyJsonSignature(signed, server, keyId, key)) return ALLOW;
        }
      }
    }
  }
  return reject("third_party_invite.signed carries no valid signature from the invite's public keys");
}

// ---------------------------------------------------------------------------------------------
// m.room.power_levels

function levelsMap(value: JsonValue | undefined): JsonObject | undefined | null {
  if (value === undefined) return undefined;
  return isObject(value) ? value : null;
}

function checkPowerLevels(
  event: RoomEvent,
  authState: StateLookup,
  version: RoomVersion,
  senderLevel: number,
  create: RoomEvent,
): AuthResult {
  const shape = validatePowerLevelsContent(event.content, version, roomCreators(create, version));
  if (shape !== undefined) return reject(shape);

  // Keyed by the event's own state_key as Synapse does; only "" is ever the room's power levels.
  const previous = authState('m.room.power_levels', event.state_key ?? '');
  if (!previous) return ALLOW;

  const oldContent = previous.content;
  const newContent = event.content;

  // One level changing: `old`/`new` are the raw values, undefined when absent.
  const check = (what: string, oldRaw: JsonValue | undefined, newRaw: JsonValue | undefined, otherUser: boolean): AuthResult | undefined => {
    const oldLevel = oldRaw === undefined ? undefined : parsePowerLevelValue(oldRaw);
    const newLevel = newRaw === undefined ? undefined : parsePowerLevelValue(newRaw);
    if (oldRaw !== undefined && oldLevel === undefined) return reject(`current power level ${what} is not a valid power level: ${JSON.stringify(oldRaw)}`);
    if (newRaw !== undefined && newLevel === undefined) return reject(`new power level ${what} is not a valid power level: ${JSON.stringify(newRaw)}`);
    if (oldLevel !== undefined && newLevel !== undefined && oldLevel === newLevel) return undefined;
    if (otherUser && oldLevel !== undefined && oldLevel >= senderLevel) {
      return reject(`${event.sender} (power level ${senderLevel}) cannot change ${what}, whose current level ${oldLevel} is not below theirs`);
    }
    if (oldLevel !== undefined && oldLevel > senderLevel) {
      return reject(`${event.sender} (power level ${senderLevel}) cannot change ${what} from ${oldLevel}, above their own level`);
    }
    if (newLevel !== undefined && newLevel > senderLevel) {
      return reject(`${event.sender} (power level ${senderLevel}) cannot set ${what} to ${newLevel}, above their own level`);
    }
    return undefined;
  };

  for (const key of NAMED_LEVEL_KEYS) {
    const r = check(`"${key}"`, own(oldContent, key), own(newContent, key), false);
    if (r) return r;
  }

  const maps: Array<'users' | 'events' | 'notifications'> = ['users', 'events'];
  if (version.limitNotificationsPowerLevels) maps.push('notifications');
  for (const name of maps) {
    const oldMap = levelsMap(own(oldContent, name));
    const newMap = levelsMap(own(newContent, name));
    if (oldMap === null) return reject(`current power levels "${name}" is not an object`);
    if (newMap === null) return reject(`power levels "${name}" must be an object`);
    const keys = new Set([...Object.keys(oldMap ?? {}), ...Object.keys(newMap ?? {})]);
    for (const k of keys) {
      const r = check(
        `${name}[${JSON.stringify(k)}]`,
        oldMap ? own(oldMap, k) : undefined,
        newMap ? own(newMap, k) : undefined,
        name === 'users' && k !== event.sender,
      );
      if (r) return r;
    }
  }
  return ALLOW;
}

// ---------------------------------------------------------------------------------------------
// m.room.redaction, v1 and v2 only

function checkV1Redaction(event: RoomEvent, authState: StateLookup, senderLevel: number): AuthResult {
  const redactLevel = currentPowerLevels(authState).redact;
  if (senderLevel >= redactLevel) return ALLOW;
  const redacts = event.redacts;
  // Synapse lets a redaction without a usable `redacts` through: it redacts nothing.
  if (typeof redacts !== 'string') return ALLOW;
  const redacterDomain = domainOf(event.event_id);
  if (redacterDomain !== undefined && redacterDomain === domainOf(redacts)) return ALLOW;
  return reject(`${event.sender} has power level ${senderLevel}, below the redact level ${redactLevel}, and ${redacts} is from another server`);
}

/** The event a redaction targets: `content.redacts` from v11, the top-level `redacts` before. */
export function redactedEventId(redaction: Pick<Pdu, 'redacts' | 'content'>, version: RoomVersion): string | undefined {
  const id = version.updatedRedactionRules ? own(redaction.content, 'redacts') : redaction.redacts;
  return typeof id === 'string' ? id : undefined;
}

/**
 * Whether an accepted redaction may be *applied* to the event it targets ("Handling redactions",
 * v3+): the redaction's sender has the redact level in the state the redaction was authorised
 * against, or both events come from the same server. In v1/v2 the auth rules already decided
 * this (the event id domain rule), so an accepted redaction applies.
 */
export function checkRedactionApplies(
  redaction: RoomEvent,
  redacted: RoomEvent,
  authState: StateLookup,
  version: RoomVersion,
): AuthResult {
  if (redaction.room_id !== redacted.room_id) {
    return reject(`redaction ${redaction.event_id} is in room ${redaction.room_id}, the redacted event in ${redacted.room_id}`);
  }
  if (version.eventIdFormat === 'v1') return ALLOW;
  const senderDomain = domainOf(redaction.sender);
  if (senderDomain !== undefined && senderDomain === domainOf(redacted.sender)) return ALLOW;
  const senderLevel = userPowerLevel(redaction.sender, authState, version);
  const redactLevel = currentPowerLevels(authState).redact;
  if (senderLevel >= redactLevel) return ALLOW;
  return reject(
    `${redaction.sender} has power level ${senderLevel}, below the redact level ${redactLevel}, and ${redacted.event_id} was sent from another server`,
  );
}

// ---------------------------------------------------------------------------------------------
// Checks on the PDU that come before the auth rules

export const MAX_PDU_BYTES = 65536;
export const MAX_ID_BYTES = 255;

function canonicalLength(value: unknown): number {
  try {
    return Buffer.byteLength(encodeCanonicalJson(value), 'utf8');
  } catch {
    // v1-v5 events may hold floats, which canonical JSON refuses; measure them with sorted keys
    // so the size check still applies.
    return Buffer.byteLength(JSON.stringify(sortKeys(value)), 'utf8');
  }
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (typeof value === 'object' && value !== null) {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(value).sort()) out[k] = sortKeys((value as Record<string, unknown>)[k]);
    return out;
  }
  return value;
}

/**
 * Size limits of the server-server API: the whole PDU at most 65,536 bytes of canonical JSON, and
 * sender, room_id, state_key, type and event_id each at most 255 bytes. The whole-PDU limit is on
 * the wire form: given the room version, a RoomEvent is measured without the fields the version
 * does not send (v3+ event_id, v12 create room_id), as the sending server measured it.
 */
export function checkEventSizeLimits(pdu: Pdu, version?: RoomVersion): AuthResult {
  const size = canonicalLength(version ? toWirePdu(pdu, version) : pdu);
  if (size > MAX_PDU_BYTES) return reject(`event is ${size} bytes of canonical JSON, over the ${MAX_PDU_BYTES} byte limit`);
  const fields: Array<[string, unknown]> = [
    ['sender', pdu.sender],
    ['room_id', pdu.room_id],
    ['state_key', pdu.state_key],
    ['type', pdu.type],
    ['event_id', pdu.event_id],
  ];
  for (const [name, value] of fields) {
    if (typeof value === 'string' && Buffer.byteLength(value, 'utf8') > MAX_ID_BYTES) {
      return reject(`${name} is ${Buffer.byteLength(value, 'utf8')} bytes, over the ${MAX_ID_BYTES} byte limit`);
    }
  }
  return ALLOW;
}

/**
 * Servers whose signatures an event must carry before it can be accepted: the sender's server
 * (except for third-party-invite invites, whose sender is the original inviter), the event id's
 * server in v1/v2, and for restricted joins the server of join_authorised_via_users_server.
 * Returns a rejection naming the first one missing; the signature checker verifies them.
 *
 * The authorising server is only required on joins, as Synapse does; the spec phrases rule 4.2
 * for any membership carrying the key.
 */
export function requiredSigningServers(event: RoomEvent, version: RoomVersion): string[] {
  const servers: string[] = [];
  const isThirdPartyInvite =
    event.type === 'm.room.member' &&
    own(event.content, 'membership') === 'invite' &&
    Object.prototype.hasOwnProperty.call(event.content, 'third_party_invite');
  const senderDomain = domainOf(event.sender);
  if (!isThirdPartyInvite && senderDomain !== undefined) servers.push(senderDomain);
  if (version.eventIdFormat === 'v1') {
    const d = domainOf(event.event_id);
    if (d !== undefined && !servers.includes(d)) servers.push(d);
  }
  if (version.restrictedJoinRule && event.type === 'm.room.member' && own(event.content, 'membership') === 'join') {
    const authoriser = own(event.content, 'join_authorised_via_users_server');
    if (typeof authoriser === 'string') {
      const d = domainOf(authoriser);
      if (d !== undefined && !servers.includes(d)) servers.push(d);
    }
  }
  return servers;
}

/** Whether every server in requiredSigningServers() has at least one signature on the event. */
export function checkRequiredSignatures(event: RoomEvent, version: RoomVersion): AuthResult {
  if (domainOf(event.sender) === undefined) return reject(`sender ${event.sender} is not a valid user id`);
  for (const server of requiredSigningServers(event, version)) {
    const block = isObject(event.signatures) ? (event.signatures as Record<string, unknown>)[server] : undefined;
    if (!isObject(block) || Object.keys(block).length === 0) return reject(`event is not signed by ${server}`);
  }
  return ALLOW;
}
