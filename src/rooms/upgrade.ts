// POST /v3/rooms/{roomId}/upgrade (spec "Room Upgrades", server behaviour), in the spec's order:
//  1. the user must be allowed to send m.room.tombstone in the old room;
//  2. a new room whose create event names the old one as `predecessor` and copies its `type`
//     (and m.federate); v12+ takes `additional_creators` from the request only;
//  3. transferable state copied: server ACL, encryption, name, avatar, topic, guest access,
//     history visibility, join rules, power levels, plus space children and bans, as Synapse
//     does. Power levels: v12 creators are never listed; before v12 the upgrader keeps their
//     level (100 if they were an infinitely powerful v12 creator), raised while the state is
//     copied if some copied event needs more, and put back after;
//  4. local aliases move to the new room, with the canonical alias; a published room stays
//     published under its new id;
//  5. the tombstone in the old room;
//  6. the old room's events_default and invite raised to max(50, users_default + 1).
// Memberships are not copied (the spec advises against it), but when the new room cannot be
// joined freely (join rule not public) the old room's joined local members are invited, as
// Element offers to do, so following the tombstone works for them.
// The new room is made by createRoom (one transaction); steps 4-6 follow it. Like Synapse, the
// whole is not one transaction across both rooms: a crash in between leaves a new room without
// a tombstone in the old, which a retry of the upgrade replaces.
import { currentPowerLevels, parsePowerLevelValue, requiredPowerLevelForEvent, userPowerLevel } from '../core/power-levels.js';
import { getRoomVersion } from '../core/room-versions.js';
import { isValidUserId } from '../core/identifiers.js';
import type { JsonObject, JsonValue } from '../core/types.js';
import { MatrixError, forbidden } from '../http/errors.js';
import { loadStateLookup, type RoomDeps } from './context.js';
import { createRoom } from './create.js';
import { changeMembership } from './membership.js';
import { domainOf } from '../core/auth-rules.js';
import { notInRoom } from './errors.js';
import { findRoom } from './read.js';
import { sendState, type Sender } from './send.js';
import * as directorySql from './store/directory.js';
import * as historySql from './store/history.js';
import * as membershipsSql from './store/memberships.js';
import * as roomsSql from './store/rooms.js';

const TRANSFERABLE = [
  'm.room.server_acl',
  'm.room.encryption',
  'm.room.name',
  'm.room.avatar',
  'm.room.topic',
  'm.room.guest_access',
  'm.room.history_visibility',
  'm.room.join_rules',
];

/** Every level a power levels content names: what an upgrader may need to copy the state. */
function highestLevel(pl: JsonObject): number {
  let max = 0;
  for (const k of ['state_default', 'events_default', 'ban', 'kick', 'redact', 'invite']) max = Math.max(max, parsePowerLevelValue(pl[k]) ?? 50);
  const events = pl['events'];
  if (typeof events === 'object' && events !== null && !Array.isArray(events)) {
    for (const v of Object.values(events)) max = Math.max(max, parsePowerLevelValue(v) ?? 0);
  }
  return max;
}

/**
 * Upgrades in progress, per server (RoomDeps): a client retrying while the first request still
 * runs gets the same replacement room rather than a second one (in this process; Synapse
 * dedupes the same way, per process).
 */
const inFlight = new WeakMap<RoomDeps, Map<string, Promise<{ replacement_room: string }>>>();

export function upgradeRoom(d: RoomDeps, who: Sender, roomId: string, body: { new_version: string; additional_creators?: string[] }): Promise<{ replacement_room: string }> {
  let running = inFlight.get(d);
  if (!running) inFlight.set(d, (running = new Map()));
  const key = JSON.stringify([roomId, who.userId, body.new_version, body.additional_creators ?? []]);
  const existing = running.get(key);
  if (existing) return existing;
  const p = doUpgrade(d, who, roomId, body).finally(() => running.delete(key));
  running.set(key, p);
  return p;
}

async function doUpgrade(d: RoomDeps, who: Sender, roomId: string, body: { new_version: string; additional_creators?: string[] }): Promise<{ replacement_room: string }> {
  const newVersion = getRoomVersion(body.new_version);
  if (!newVersion) throw new MatrixError('M_UNSUPPORTED_ROOM_VERSION', `Room version ${body.new_version} is not supported by this server`);
  for (const u of body.additional_creators ?? []) if (!isValidUserId(u)) throw new MatrixError('M_INVALID_PARAM', `${u} is not a valid user id`);

  // 1. The right to upgrade.
  const old = await findRoom(d.db, roomId);
  if (!old || old.row.current_snapshot === null) throw notInRoom(roomId);
  const member = await membershipsSql.getMembership(d.db, old.row.room_nid, who.userId);
  if (member?.membership !== 'join') throw notInRoom(roomId);
  const state = await d.state.load(d.db, old.row.current_snapshot);
  const pairs = await d.state.keyPairsOf(d.db, state.keys());
  const loaded = await d.events.byNids(d.db, state.values());
  const current = new Map<string, { type: string; stateKey: string; content: JsonObject }>();
  for (const [k, nid] of state) {
    const p = pairs.get(k);
    const e = loaded.get(nid);
    if (p && e) current.set(`${p[0]}\u0000${p[1]}`, { type: p[0], stateKey: p[1], content: e.event.content });
  }
  const lookup = await loadStateLookup(d, d.db, state, [
    ['m.room.create', ''],
    ['m.room.power_levels', ''],
  ]);
  const level = userPowerLevel(who.userId, lookup, old.version);
  const needed = requiredPowerLevelForEvent('m.room.tombstone', true, lookup);
  if (level < needed) throw forbidden(`You need power level ${needed} to upgrade this room (to send m.room.tombstone); you have ${level}`);

  // 2 and 3. The new room, with the old one's transferable state.
  const oldCreate = current.get('m.room.create\u0000')?.content ?? {};
  // predecessor.event_id: the last event of the old room (optional from v12 on, so left out).
  const latest = await historySql.topoAtStream(d.db, old.row.room_nid, null);
  const [lastRow] = latest ? await historySql.timelinePage(d.db, old.row.room_nid, 'b', latest, undefined, 1) : [];
  const latestId = lastRow ? (await d.events.one(d.db, lastRow.event_nid))?.event.event_id : undefined;
  const creationContent: JsonObject = {
    predecessor: { room_id: roomId, ...(latestId !== undefined && !newVersion.roomIdFromCreateEvent ? { event_id: latestId } : {}) },
  };
  if (typeof oldCreate['type'] === 'string') creationContent['type'] = oldCreate['type'];
  if (oldCreate['m.federate'] === false) creationContent['m.federate'] = false;
  if (newVersion.privilegedCreators && body.additional_creators && body.additional_creators.length > 0) {
    creationContent['additional_creators'] = [...new Set(body.additional_creators)];
  }

  const oldPl: JsonObject = { ...(current.get('m.room.power_levels\u0000')?.content ?? {}) };
  const users: Record<string, JsonValue> = { ...((oldPl['users'] as JsonObject | undefined) ?? {}) };
  let finalPl: JsonObject | undefined;
  let setupPl: JsonObject;
  if (newVersion.privilegedCreators) {
    // v12: creators have infinite power and may not appear in `users`.
    delete users[who.userId];
    for (const u of body.additional_creators ?? []) delete users[u];
    setupPl = { ...oldPl, users };
  } else {
    const keep = Number.isFinite(level) ? level : 100;
    const setupLevel = Math.max(keep, highestLevel(oldPl));
    finalPl = { ...oldPl, users: { ...users, [who.userId]: keep } };
    setupPl = { ...oldPl, users: { ...users, [who.userId]: setupLevel } };
    if (setupLevel === keep) finalPl = undefined;
  }

  const initial: Array<{ type: string; state_key?: string; content: JsonObject }> = [{ type: 'm.room.power_levels', content: setupPl }];
  for (const type of TRANSFERABLE) {
    const s = current.get(`${type}\u0000`);
    if (s) initial.push({ type, content: s.content });
  }
  // Without join rules the room was invite-only (auth rules); say so, or the preset would not.
  if (!current.has('m.room.join_rules\u0000')) initial.push({ type: 'm.room.join_rules', content: { join_rule: 'invite' } });
  for (const s of current.values()) {
    if (s.type === 'm.space.child' && Object.keys(s.content).length > 0) initial.push({ type: s.type, state_key: s.stateKey, content: s.content });
    if (s.type === 'm.room.member' && s.content['membership'] === 'ban') {
      initial.push({ type: s.type, state_key: s.stateKey, content: { membership: 'ban', ...(typeof s.content['reason'] === 'string' ? { reason: s.content['reason'] } : {}) } });
    }
  }
  // public_chat adds nothing the copied state does not override (no guest access, no invite: 0).
  const { room_id: newRoomId } = await createRoom(d, who.userId, {
    room_version: newVersion.id,
    preset: 'public_chat',
    creation_content: creationContent,
    initial_state: initial,
  });
  if (finalPl) await sendState(d, who, newRoomId, 'm.room.power_levels', '', finalPl);

  // 4. Aliases, the canonical alias and the directory listing follow the room.
  const newRoom = (await findRoom(d.db, newRoomId))!;
  const moved = await directorySql.moveAliases(d.db, old.row.room_nid, newRoom.row.room_nid);
  const canonical = current.get('m.room.canonical_alias\u0000')?.content;
  if (canonical && (typeof canonical['alias'] === 'string' || Array.isArray(canonical['alt_aliases']))) {
    const content: JsonObject = {};
    if (typeof canonical['alias'] === 'string' && moved.includes(canonical['alias'])) content['alias'] = canonical['alias'];
    const alt = Array.isArray(canonical['alt_aliases']) ? canonical['alt_aliases'].filter((a): a is string => typeof a === 'string' && moved.includes(a)) : [];
    if (alt.length > 0) content['alt_aliases'] = alt;
    if (Object.keys(content).length > 0) await sendState(d, who, newRoomId, 'm.room.canonical_alias', '', content);
    await tryInOldRoom(d, roomId, () => sendState(d, who, roomId, 'm.room.canonical_alias', '', {}));
  }
  if (old.row.is_public) {
    await roomsSql.setPublic(d.db, newRoom.row.room_nid, true);
    await roomsSql.setPublic(d.db, old.row.room_nid, false);
  }

  const joinRule = current.get('m.room.join_rules\u0000')?.content['join_rule'];
  if (joinRule !== 'public') {
    for (const m of await membershipsSql.joinedMembers(d.db, old.row.room_nid)) {
      if (m.user_id === who.userId || domainOf(m.user_id) !== d.serverName) continue;
      await tryInOldRoom(d, newRoomId, () => changeMembership(d, who.userId, newRoomId, m.user_id, 'invite'));
    }
  }

  // 5. The tombstone.
  await sendState(d, who, roomId, 'm.room.tombstone', '', { body: 'This room has been replaced', replacement_room: newRoomId });

  // 6. Nobody below moderator talks or invites in the old room any more.
  const pl = currentPowerLevels(lookup);
  const restricted = Math.max(50, pl.usersDefault + 1);
  if (pl.eventsDefault < restricted || pl.invite < restricted) {
    await tryInOldRoom(d, roomId, () =>
      sendState(d, who, roomId, 'm.room.power_levels', '', {
        ...oldPl,
        events_default: Math.max(pl.eventsDefault, restricted),
        invite: Math.max(pl.invite, restricted),
      }),
    );
  }
  return { replacement_room: newRoomId };
}

/** A best-effort change (old room power levels, invites): the upgrader may lack the power. */
async function tryInOldRoom(d: RoomDeps, roomId: string, fn: () => Promise<unknown>): Promise<void> {
  try {
    await fn();
  } catch (err) {
    if (!(err instanceof MatrixError)) throw err;
    d.log.info({ err, roomId }, 'room upgrade: could not update the old room');
  }
}
