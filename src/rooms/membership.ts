// Membership changes: join, invite, leave, kick, ban, unban, knock, forget. Each builds an
// m.room.member event; the auth rules (core) decide, and refuse with a reason a person can read.
// What the rules cannot know is checked here: restricted joins need an authorising member of
// this server, kicks and unbans need a target in the matching membership.
import { domainOf } from '../core/auth-rules.js';
import { currentPowerLevels, userPowerLevel } from '../core/power-levels.js';
import type { JsonObject, JsonValue } from '../core/types.js';
import { isValidUserId } from '../core/identifiers.js';
import { MatrixError, forbidden } from '../http/errors.js';
import { loadStateLookup, type RoomDeps } from './context.js';
import type { RoomLock } from './queue.js';
import { currentStateEvent, findRoom, notInRoom } from './read.js';
import { sendUnderLock } from './send.js';
import * as membershipsSql from './store/memberships.js';
import * as roomsSql from './store/rooms.js';

export type MembershipAction = 'join' | 'invite' | 'leave' | 'kick' | 'ban' | 'unban' | 'knock';

export interface MembershipRequest {
  reason?: string;
  /** createRoom's is_direct: marks the invite as a direct chat. */
  isDirect?: boolean;
  /** The joining user is a guest: only rooms with guest_access can_join let them in. */
  guest?: boolean;
}

/** The displayname and avatar_url of a local user's profile, for member event content. */
async function profileContent(d: RoomDeps, userId: string): Promise<JsonObject> {
  if (domainOf(userId) !== d.serverName) return {};
  try {
    const p = await d.accounts.getProfile(userId);
    return { ...(p.displayname !== undefined ? { displayname: p.displayname } : {}), ...(p.avatar_url !== undefined ? { avatar_url: p.avatar_url } : {}) };
  } catch {
    return {};
  }
}

/** A room id or alias to a room id; unknown aliases are 404 as the spec's join answers. */
export async function resolveRoomIdOrAlias(d: RoomDeps, roomIdOrAlias: string): Promise<string> {
  if (roomIdOrAlias.startsWith('!')) return roomIdOrAlias;
  if (roomIdOrAlias.startsWith('#')) {
    const roomId = await roomsSql.resolveAlias(d.db, roomIdOrAlias);
    if (!roomId) throw new MatrixError('M_NOT_FOUND', `Room alias ${roomIdOrAlias} not found`);
    return roomId;
  }
  throw new MatrixError('M_INVALID_PARAM', `${roomIdOrAlias} is neither a room id nor a room alias`);
}

function withReason(content: JsonObject, reason: string | undefined): JsonObject {
  return reason !== undefined ? { ...content, reason } : content;
}

async function membershipOf(d: RoomDeps, lock: RoomLock, userId: string): Promise<{ membership: JsonValue | undefined; content: JsonObject | undefined; eventId: string | undefined }> {
  const e = await currentStateEvent(d, lock.tx, lock.room.currentSnapshot!, 'm.room.member', userId);
  return { membership: e?.content['membership'], content: e?.content, eventId: e?.event_id };
}

/**
 * For a join to a restricted room (v8+) by a user who is not invited: the allow list names rooms
 * whose members may join; a joined member of this server who may invite authorises the join
 * (join_authorised_via_users_server), as the spec's restricted join rule requires.
 */
async function restrictedJoinAuthoriser(d: RoomDeps, lock: RoomLock, userId: string, joinRules: JsonObject): Promise<string> {
  const allow = Array.isArray(joinRules['allow']) ? joinRules['allow'] : [];
  const roomIds = allow
    .filter((a): a is JsonObject => typeof a === 'object' && a !== null && !Array.isArray(a) && a['type'] === 'm.room_membership')
    .map((a) => a['room_id'])
    .filter((r): r is string => typeof r === 'string');
  if (!(await membershipsSql.isJoinedToAny(lock.tx, userId, roomIds))) {
    throw forbidden('You are not invited to this room, and not a member of any room its join rules allow');
  }
  const current = await d.state.load(lock.tx, lock.room.currentSnapshot!);
  const lookup = await loadStateLookup(d, lock.tx, current, [
    ['m.room.create', ''],
    ['m.room.power_levels', ''],
  ]);
  const inviteLevel = currentPowerLevels(lookup).invite;
  let best: { userId: string; level: number } | undefined;
  for (const m of await membershipsSql.joinedMembers(lock.tx, lock.room.roomNid)) {
    if (domainOf(m.user_id) !== d.serverName) continue;
    const level = userPowerLevel(m.user_id, lookup, lock.room.version);
    if (level >= inviteLevel && (!best || level > best.level)) best = { userId: m.user_id, level };
  }
  if (!best) throw forbidden('No member of this server may invite you to this restricted room, so the join cannot be authorised');
  return best.userId;
}

/** One membership change by `actor` on `target`; returns the event id (existing when a no-op). */
export async function changeMembership(
  d: RoomDeps,
  actor: string,
  roomId: string,
  target: string,
  action: MembershipAction,
  req: MembershipRequest = {},
): Promise<string> {
  if (!isValidUserId(target)) throw new MatrixError('M_INVALID_PARAM', `${target} is not a valid user id`);
  let profile: JsonObject = {};
  if (action === 'join' || action === 'knock') profile = await profileContent(d, actor);
  if (action === 'invite') {
    if (domainOf(target) !== d.serverName) {
      throw forbidden(`Cannot invite ${target}: inviting users of other servers needs federation, which this server does not offer yet`);
    }
    try {
      const p = await d.accounts.getProfile(target);
      profile = { ...(p.displayname !== undefined ? { displayname: p.displayname } : {}), ...(p.avatar_url !== undefined ? { avatar_url: p.avatar_url } : {}) };
    } catch {
      throw new MatrixError('M_NOT_FOUND', `User ${target} does not exist`);
    }
  }

  return d.queue.run(roomId, async (lock) => {
    const mine = await membershipOf(d, lock, target);
    const send = (membership: string, extra: JsonObject = {}) =>
      sendUnderLock(d, lock, {
        type: 'm.room.member',
        sender: actor,
        state_key: target,
        content: withReason({ ...extra, membership }, req.reason),
      });

    switch (action) {
      case 'join': {
        const content: JsonObject = { ...profile };
        if (mine.membership === 'join' && sameProfile(mine.content, content) && req.reason === undefined) return mine.eventId!;
        if (req.guest && mine.membership !== 'join') {
          const access = await currentStateEvent(d, lock.tx, lock.room.currentSnapshot!, 'm.room.guest_access', '');
          if (access?.content['guest_access'] !== 'can_join') {
            throw new MatrixError('M_GUEST_ACCESS_FORBIDDEN', 'Guests may not join this room (its guest_access is not can_join)');
          }
        }
        const joinRules = await currentStateEvent(d, lock.tx, lock.room.currentSnapshot!, 'm.room.join_rules', '');
        const rule = joinRules?.content['join_rule'];
        const v = lock.room.version;
        if (
          mine.membership !== 'join' &&
          mine.membership !== 'invite' &&
          mine.membership !== 'ban' &&
          ((v.restrictedJoinRule && rule === 'restricted') || (v.knockRestrictedJoinRule && rule === 'knock_restricted'))
        ) {
          content['join_authorised_via_users_server'] = await restrictedJoinAuthoriser(d, lock, actor, joinRules!.content);
        }
        return send('join', content);
      }
      case 'invite':
        return send('invite', { ...profile, ...(req.isDirect ? { is_direct: true } : {}) });
      case 'leave':
        if (mine.membership === undefined || mine.membership === 'leave') {
          // Nothing to leave; the same answer whether or not the room exists.
          throw notInRoom(roomId);
        }
        return send('leave');
      case 'kick':
        if (mine.membership !== 'join' && mine.membership !== 'invite' && mine.membership !== 'knock') {
          throw forbidden(`${target} is not in the room, so cannot be kicked`);
        }
        return send('leave');
      case 'ban':
        return send('ban');
      case 'unban':
        if (mine.membership !== 'ban') throw forbidden(`${target} is not banned from the room`);
        return send('leave');
      case 'knock':
        if (!lock.room.version.knockJoinRule) {
          throw forbidden(`Room version ${lock.room.version.id} does not support knocking`);
        }
        return send('knock', profile);
    }
  });
}

function sameProfile(a: JsonObject | undefined, b: JsonObject): boolean {
  return a !== undefined && a['displayname'] === b['displayname'] && a['avatar_url'] === b['avatar_url'];
}

/** POST /forget: only once the user has left (or was kicked or banned). */
export async function forget(d: RoomDeps, userId: string, roomId: string): Promise<void> {
  const room = await findRoom(d.db, roomId);
  const m = room ? await membershipsSql.getMembership(d.db, room.row.room_nid, userId) : undefined;
  if (!room || !m) throw notInRoom(roomId);
  if (m.membership === 'join' || m.membership === 'invite' || m.membership === 'knock') {
    throw new MatrixError('M_UNKNOWN', `You are still in room ${roomId} (${m.membership}); leave it before forgetting it`, { status: 400 });
  }
  await membershipsSql.forget(d.db, room.row.room_nid, userId);
}

/** After a profile change: a new join event with the new profile in every joined room. */
export async function propagateProfile(d: RoomDeps, userId: string): Promise<void> {
  for (const m of await membershipsSql.roomsOfUser(d.db, userId, ['join'])) {
    try {
      await changeMembership(d, userId, m.room_id, userId, 'join');
    } catch (err) {
      // One room refusing (e.g. a ban racing the change) must not stop the others.
      d.log.warn({ err, roomId: m.room_id, userId }, 'could not update member event after profile change');
    }
  }
}

/** On deactivation: leave every room the user is in, invited to, or knocking on. */
export async function leaveAllRooms(d: RoomDeps, userId: string): Promise<void> {
  for (const m of await membershipsSql.roomsOfUser(d.db, userId, ['join', 'invite', 'knock'])) {
    try {
      await changeMembership(d, userId, m.room_id, userId, 'leave');
    } catch (err) {
      d.log.warn({ err, roomId: m.room_id, userId }, 'could not leave room on deactivation');
    }
  }
}
