// Builders for auth-rule tests: RoomEvent objects with fake ids and no real hashes or signatures
// (the auth rules never look at either). State is set directly, without authorising it, so each
// test can describe exactly the state a rule is checked against.
import type { StateLookup } from './auth-rules.js';
import { getRoomVersion, type RoomVersion } from './room-versions.js';
import type { JsonObject, RoomEvent } from './types.js';
import { stateKey } from './types.js';

export const ALICE = '@alice:a.example';
export const BOB = '@bob:b.example';
export const CAROL = '@carol:c.example';
export const DAVE = '@dave:a.example';

export const ALL_VERSIONS: RoomVersion[] = Array.from({ length: 12 }, (_, i) => version(String(i + 1)));

export function version(id: string): RoomVersion {
  const v = getRoomVersion(id);
  if (!v) throw new Error(`unknown room version ${id}`);
  return v;
}

/** Versions from `from` to `to` inclusive, by number. */
export function versions(from: number, to = 12): RoomVersion[] {
  return ALL_VERSIONS.filter((v) => Number(v.id) >= from && Number(v.id) <= to);
}

/**
 * The `users` entry giving the default creator (Alice) 100, or nothing in v12, where creators may
 * not be listed and have infinite power anyway.
 */
export function creatorLevels(v: RoomVersion, creator = ALICE): JsonObject {
  return v.privilegedCreators ? {} : { [creator]: 100 };
}

let sequence = 0;

/** A fresh event id of the room version's shape; v1/v2 ids carry the origin server. */
export function fakeEventId(v: RoomVersion, server = 'a.example'): string {
  sequence += 1;
  if (v.eventIdFormat === 'v1') return `$ev${sequence}:${server}`;
  // 43 characters like a real reference hash, unique by construction.
  return `$${`fake${sequence}`.padEnd(43, 'A')}`;
}

export interface EventFields {
  type: string;
  sender: string;
  content?: JsonObject;
  state_key?: string;
  prev_events?: string[];
  auth_events?: string[];
  redacts?: string;
  event_id?: string;
  room_id?: string;
  signatures?: Record<string, Record<string, string>>;
}

export function makeEvent(v: RoomVersion, roomId: string, fields: EventFields): RoomEvent {
  const event: RoomEvent = {
    event_id: fields.event_id ?? fakeEventId(v, fields.sender.slice(fields.sender.indexOf(':') + 1)),
    room_id: fields.room_id ?? roomId,
    sender: fields.sender,
    type: fields.type,
    content: fields.content ?? {},
    origin_server_ts: 1_700_000_000_000 + sequence,
    depth: sequence,
    prev_events: fields.prev_events ?? [],
    auth_events: fields.auth_events ?? [],
    hashes: { sha256: 'fakehash' },
    signatures: fields.signatures ?? {},
  };
  if (fields.state_key !== undefined) event.state_key = fields.state_key;
  if (fields.redacts !== undefined) event.redacts = fields.redacts;
  return event;
}

/** A create event for the version; v12 derives the room id from its event id. */
export function makeCreate(v: RoomVersion, sender = ALICE, content: JsonObject = {}, roomId?: string): RoomEvent {
  const eventId = fakeEventId(v, sender.slice(sender.indexOf(':') + 1));
  const fullContent: JsonObject = { room_version: v.id, ...content };
  if (!v.implicitRoomCreator && !('creator' in content)) fullContent['creator'] = sender;
  const id = roomId ?? (v.roomIdFromCreateEvent ? `!${eventId.slice(1)}` : `!room${sequence}:${sender.slice(sender.indexOf(':') + 1)}`);
  return makeEvent(v, id, { type: 'm.room.create', sender, content: fullContent, state_key: '', event_id: eventId });
}

/**
 * A room whose state is written directly. `send` builds an event against the room without adding
 * it to state; `set` puts an event into state; `check`-style helpers live in the tests.
 */
export class TestRoom {
  readonly create: RoomEvent;
  readonly roomId: string;
  readonly state = new Map<string, RoomEvent>();

  constructor(
    readonly version: RoomVersion,
    opts: { creator?: string; createContent?: JsonObject } = {},
  ) {
    this.create = makeCreate(version, opts.creator ?? ALICE, opts.createContent ?? {});
    this.roomId = this.create.room_id;
    this.set(this.create);
  }

  /** A room with the creator joined, power levels (creator 100) and the given join rule. */
  static standard(v: RoomVersion, joinRule = 'public', opts: { creator?: string; createContent?: JsonObject; powerLevels?: JsonObject } = {}): TestRoom {
    const room = new TestRoom(v, opts);
    const creator = room.create.sender;
    room.member(creator, 'join');
    room.powerLevels(
      opts.powerLevels ?? { users: creatorLevels(v, creator) },
      creator,
    );
    room.joinRule(joinRule);
    return room;
  }

  send(fields: EventFields): RoomEvent {
    return makeEvent(this.version, this.roomId, fields);
  }

  set(event: RoomEvent): RoomEvent {
    if (event.state_key === undefined) throw new Error('only state events go into state');
    this.state.set(stateKey(event.type, event.state_key), event);
    return event;
  }

  member(user: string, membership: string, sender = user, extra: JsonObject = {}): RoomEvent {
    return this.set(this.send({ type: 'm.room.member', sender, state_key: user, content: { membership, ...extra } }));
  }

  powerLevels(content: JsonObject, sender = this.create.sender): RoomEvent {
    return this.set(this.send({ type: 'm.room.power_levels', sender, state_key: '', content }));
  }

  joinRule(rule: string, extra: JsonObject = {}): RoomEvent {
    return this.set(this.send({ type: 'm.room.join_rules', sender: this.create.sender, state_key: '', content: { join_rule: rule, ...extra } }));
  }

  remove(type: string, sk: string): void {
    this.state.delete(stateKey(type, sk));
  }

  get lookup(): StateLookup {
    return (type, sk) => this.state.get(stateKey(type, sk));
  }

  /** A membership event for `user` set by `sender`. */
  memberEvent(user: string, membership: string, sender = user, extra: JsonObject = {}, prev?: string[]): RoomEvent {
    return this.send({
      type: 'm.room.member',
      sender,
      state_key: user,
      content: { membership, ...extra },
      ...(prev ? { prev_events: prev } : {}),
    });
  }
}
