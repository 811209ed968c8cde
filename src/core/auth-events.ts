// Auth events selection (server-server API, "Auth events selection"): which state an event cites
// in its auth_events, and hence which state the auth rules may consult for it.
import type { StateLookup } from './auth-rules.js';
import type { RoomVersion } from './room-versions.js';
import type { JsonObject, JsonValue } from './types.js';

export interface AuthSelectable {
  type: string;
  sender: string;
  state_key?: string;
  content: JsonObject;
}

function isObject(value: JsonValue | undefined): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** content.third_party_invite.signed.token, if the event carries one. */
export function thirdPartyInviteToken(content: JsonObject): string | undefined {
  const tpi = content['third_party_invite'];
  if (!isObject(tpi)) return undefined;
  const signed = tpi['signed'];
  if (!isObject(signed)) return undefined;
  const token = signed['token'];
  return typeof token === 'string' ? token : undefined;
}

/**
 * The (type, state_key) pairs an event's auth_events may contain, in the spec's order. The list is
 * what *may* be cited: selection only cites those present in the room state.
 *
 * v12 leaves out m.room.create: the room id is the create event's id, which already pins it, and
 * citing it is an error under v12 auth rule 3.2.
 */
export function authEventTypesFor(event: AuthSelectable, version: RoomVersion): Array<[type: string, stateKey: string]> {
  if (event.type === 'm.room.create') return [];
  const out: Array<[string, string]> = [];
  const seen = new Set<string>();
  const add = (type: string, sk: string): void => {
    const k = `${type}\u0000${sk}`;
    if (seen.has(k)) return;
    seen.add(k);
    out.push([type, sk]);
  };
  if (!version.roomIdFromCreateEvent) add('m.room.create', '');
  add('m.room.power_levels', '');
  add('m.room.member', event.sender);
  if (event.type === 'm.room.member' && typeof event.state_key === 'string') {
    const membership = event.content['membership'];
    add('m.room.member', event.state_key);
    // The server-server text lists join rules for join and invite only, but a knock is decided
    // by the join rule (and without it the rule reads as "invite", refusing the knock); Synapse
    // selects and accepts it for knocks too.
    if (membership === 'join' || membership === 'invite' || membership === 'knock') {
      add('m.room.join_rules', '');
    }
    if (membership === 'invite') {
      const token = thirdPartyInviteToken(event.content);
      if (token !== undefined) add('m.room.third_party_invite', token);
    }
    if (membership === 'join' && version.restrictedJoinRule) {
      const authoriser = event.content['join_authorised_via_users_server'];
      if (typeof authoriser === 'string') add('m.room.member', authoriser);
    }
  }
  return out;
}

/** Event ids from the given state to cite as auth_events for a new event. */
export function selectAuthEvents(event: AuthSelectable, currentState: StateLookup, version: RoomVersion): string[] {
  const ids: string[] = [];
  for (const [type, sk] of authEventTypesFor(event, version)) {
    const found = currentState(type, sk);
    if (found && !ids.includes(found.event_id)) ids.push(found.event_id);
  }
  return ids;
}
