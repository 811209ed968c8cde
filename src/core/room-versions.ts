// The room version registry: every behaviour that differs between room versions is a named flag
// here, so auth rules, redaction, id formats and state resolution ask the version, never compare
// version strings. See the spec's content/rooms/v1.md ... v12.md.

export type EventIdFormat =
  /** `$random:server`, event_id carried in the PDU (v1, v2). */
  | 'v1'
  /** `$` + standard base64 of the reference hash (v3). */
  | 'v3'
  /** `$` + URL-safe base64 of the reference hash (v4 and later). */
  | 'v4';

export type StateResolutionAlgorithm = 'v1' | 'v2' | 'v2.1';

export interface RoomVersion {
  readonly id: string;
  readonly stable: boolean;
  readonly eventIdFormat: EventIdFormat;
  readonly stateResolution: StateResolutionAlgorithm;
  /** v1-v5: m.room.aliases events are authorised by the sender's server only. */
  readonly specialCaseAliasesAuth: boolean;
  /** v5+: signing keys must be valid at the event's origin_server_ts (federation check). */
  readonly enforceKeyValidity: boolean;
  /** v6+: events must be strict canonical JSON (integers only, in range). */
  readonly strictCanonicalJson: boolean;
  /** v6+: changing `notifications` in power levels is subject to the power-level rules. */
  readonly limitNotificationsPowerLevels: boolean;
  /** v7+: the `knock` join rule and membership. */
  readonly knockJoinRule: boolean;
  /** v8+: the `restricted` join rule with join_authorised_via_users_server. */
  readonly restrictedJoinRule: boolean;
  /** v9+: redaction keeps join_authorised_via_users_server in m.room.member content. */
  readonly restrictedJoinRuleFix: boolean;
  /** v10+: the `knock_restricted` join rule. */
  readonly knockRestrictedJoinRule: boolean;
  /** v10+: power level values must be integers (not strings holding integers). */
  readonly integerPowerLevels: boolean;
  /** v11+: the create event has no `creator`; its sender is the creator. */
  readonly implicitRoomCreator: boolean;
  /** v11+: redaction rules of MSC2176/MSC3821/MSC3989 and `redacts` moved into content. */
  readonly updatedRedactionRules: boolean;
  /** v12+: room creators (sender and additional_creators) have infinite power level. */
  readonly privilegedCreators: boolean;
  /** v12+: the room id is `!` + the create event's reference hash; create events have no room_id. */
  readonly roomIdFromCreateEvent: boolean;
}

const V1: RoomVersion = {
  id: '1',
  stable: true,
  eventIdFormat: 'v1',
  stateResolution: 'v1',
  specialCaseAliasesAuth: true,
  enforceKeyValidity: false,
  strictCanonicalJson: false,
  limitNotificationsPowerLevels: false,
  knockJoinRule: false,
  restrictedJoinRule: false,
  restrictedJoinRuleFix: false,
  knockRestrictedJoinRule: false,
  integerPowerLevels: false,
  implicitRoomCreator: false,
  updatedRedactionRules: false,
  privilegedCreators: false,
  roomIdFromCreateEvent: false,
};

const V2: RoomVersion = { ...V1, id: '2', stateResolution: 'v2' };
const V3: RoomVersion = { ...V2, id: '3', eventIdFormat: 'v3' };
const V4: RoomVersion = { ...V3, id: '4', eventIdFormat: 'v4' };
const V5: RoomVersion = { ...V4, id: '5', enforceKeyValidity: true };
const V6: RoomVersion = {
  ...V5,
  id: '6',
  specialCaseAliasesAuth: false,
  strictCanonicalJson: true,
  limitNotificationsPowerLevels: true,
};
const V7: RoomVersion = { ...V6, id: '7', knockJoinRule: true };
const V8: RoomVersion = { ...V7, id: '8', restrictedJoinRule: true };
const V9: RoomVersion = { ...V8, id: '9', restrictedJoinRuleFix: true };
const V10: RoomVersion = { ...V9, id: '10', knockRestrictedJoinRule: true, integerPowerLevels: true };
const V11: RoomVersion = { ...V10, id: '11', implicitRoomCreator: true, updatedRedactionRules: true };
const V12: RoomVersion = {
  ...V11,
  id: '12',
  stateResolution: 'v2.1',
  privilegedCreators: true,
  roomIdFromCreateEvent: true,
};

export const ROOM_VERSIONS: ReadonlyMap<string, RoomVersion> = new Map(
  [V1, V2, V3, V4, V5, V6, V7, V8, V9, V10, V11, V12].map((v) => [v.id, Object.freeze(v)]),
);

/** Synapse's default since 1.x; v12 room ids are unreadable to clients from before 2025. */
export const DEFAULT_ROOM_VERSION = '11';

export function getRoomVersion(id: string): RoomVersion | undefined {
  return ROOM_VERSIONS.get(id);
}
