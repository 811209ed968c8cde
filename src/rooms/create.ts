// POST /createRoom (client-server API "Creation"): the events, in the spec's order, all built
// and persisted in one transaction under the new room's lock, so a room exists whole or not
// at all:
//  1. m.room.create (creation_content, room_version; `creator` before v11)
//  2. the creator's join
//  3. m.room.power_levels (defaults, preset, then power_level_content_override)
//  4. m.room.canonical_alias when room_alias_name is given
//  5. the preset's join_rules, history_visibility, guest_access
//  6. initial_state
//  7. m.room.name and m.room.topic
//  8. invites (is_direct marks them)
import { randomBytes } from 'node:crypto';
import { domainOf } from '../core/auth-rules.js';
import { isValidRoomAlias, isValidUserId } from '../core/identifiers.js';
import { getRoomVersion, type RoomVersion } from '../core/room-versions.js';
import type { JsonObject } from '../core/types.js';
import { MatrixError } from '../http/errors.js';
import { buildCreateEvent } from './builder.js';
import type { RoomDeps } from './context.js';
import { persistEvent } from './persist.js';
import { sendUnderLock } from './send.js';
import * as roomsSql from './store/rooms.js';

export type Preset = 'private_chat' | 'public_chat' | 'trusted_private_chat';

export interface CreateRoomRequest {
  visibility?: 'public' | 'private';
  room_alias_name?: string;
  name?: string;
  topic?: string;
  invite?: string[];
  room_version?: string;
  creation_content?: JsonObject;
  initial_state?: Array<{ type: string; state_key?: string; content: JsonObject }>;
  preset?: Preset;
  is_direct?: boolean;
  power_level_content_override?: JsonObject;
}

const PRESETS: Record<Preset, { joinRule: string; historyVisibility: string; guestCanJoin: boolean; inviteesAreAdmins: boolean; powerOverride: JsonObject }> = {
  // Private chats let any member invite (invite level 0), as Synapse's presets do.
  private_chat: { joinRule: 'invite', historyVisibility: 'shared', guestCanJoin: true, inviteesAreAdmins: false, powerOverride: { invite: 0 } },
  trusted_private_chat: { joinRule: 'invite', historyVisibility: 'shared', guestCanJoin: true, inviteesAreAdmins: true, powerOverride: { invite: 0 } },
  public_chat: { joinRule: 'public', historyVisibility: 'shared', guestCanJoin: false, inviteesAreAdmins: false, powerOverride: {} },
};

/** Power levels of a new room, before preset and client overrides (Synapse's defaults). */
function defaultPowerLevels(creator: string, version: RoomVersion): JsonObject {
  return {
    // v12 creators have infinite power and must not be listed.
    users: version.privilegedCreators ? {} : { [creator]: 100 },
    users_default: 0,
    events: {
      'm.room.name': 50,
      'm.room.power_levels': 100,
      'm.room.history_visibility': 100,
      'm.room.canonical_alias': 50,
      'm.room.avatar': 50,
      'm.room.tombstone': 100,
      'm.room.server_acl': 100,
      'm.room.encryption': 100,
    },
    events_default: 0,
    state_default: 50,
    ban: 50,
    kick: 50,
    redact: 50,
    invite: 50,
  };
}

function randomRoomLocalpart(): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
  let out = '';
  for (const b of randomBytes(18)) out += alphabet[b % 52];
  return out;
}

export async function createRoom(d: RoomDeps, creator: string, req: CreateRoomRequest): Promise<{ room_id: string; room_alias?: string }> {
  const versionId = req.room_version ?? d.config.rooms.default_room_version;
  const version = getRoomVersion(versionId);
  if (!version) throw new MatrixError('M_UNSUPPORTED_ROOM_VERSION', `Room version ${versionId} is not supported by this server`);
  const preset = PRESETS[req.preset ?? (req.visibility === 'public' ? 'public_chat' : 'private_chat')];

  const invitees = [...new Set(req.invite ?? [])];
  // Profiles are read here, before the room's transaction: a read through the pool while it
  // holds a connection could wait for ever once concurrent transactions hold them all.
  type Profile = { displayname?: string; avatar_url?: string };
  const profiles = new Map<string, Profile>();
  for (const u of invitees) {
    if (!isValidUserId(u)) throw new MatrixError('M_INVALID_PARAM', `${u} is not a valid user id`);
    if (domainOf(u) !== d.serverName) {
      throw new MatrixError('M_FORBIDDEN', `Cannot invite ${u}: inviting users of other servers needs federation, which this server does not offer yet`);
    }
    try {
      profiles.set(u, await d.accounts.getProfile(u));
    } catch {
      throw new MatrixError('M_NOT_FOUND', `User ${u} does not exist`);
    }
  }
  const creatorProfile: Profile = await d.accounts.getProfile(creator).catch(() => ({}));

  // As Synapse: an override listing users must list the creator (v1-v11), or they would lock
  // themselves out of their own room halfway through creating it; v12 creators have infinite
  // power and must not be listed at all.
  const overrideUsers = req.power_level_content_override?.['users'];
  if (overrideUsers !== undefined) {
    if (typeof overrideUsers !== 'object' || overrideUsers === null || Array.isArray(overrideUsers)) {
      throw new MatrixError('M_INVALID_PARAM', "power_level_content_override 'users' must be an object");
    }
    const listed = Object.prototype.hasOwnProperty.call(overrideUsers, creator);
    if (!version.privilegedCreators && !listed) {
      throw new MatrixError('M_INVALID_PARAM', `Not a valid power_level_content_override: 'users' did not contain ${creator}`);
    }
    if (version.privilegedCreators && listed) {
      throw new MatrixError('M_INVALID_PARAM', `Not a valid power_level_content_override: room creators (${creator}) have infinite power in room version ${version.id} and cannot be listed in 'users'`);
    }
  }

  let alias: string | undefined;
  if (req.room_alias_name !== undefined) {
    alias = `#${req.room_alias_name}:${d.serverName}`;
    if (req.room_alias_name.length === 0 || /[:\s]/.test(req.room_alias_name) || !isValidRoomAlias(alias)) {
      throw new MatrixError('M_INVALID_PARAM', `Invalid room_alias_name ${JSON.stringify(req.room_alias_name)}`);
    }
    if (await roomsSql.resolveAlias(d.db, alias)) throw new MatrixError('M_ROOM_IN_USE', `Room alias ${alias} is already taken`);
  }

  const initialState = new Map<string, { type: string; state_key: string; content: JsonObject }>();
  for (const s of req.initial_state ?? []) initialState.set(`${s.type}\u0000${s.state_key ?? ''}`, { ...s, state_key: s.state_key ?? '' });
  const takeInitial = (type: string) => {
    const k = `${type}\u0000`;
    const s = initialState.get(k);
    initialState.delete(k);
    return s?.content;
  };

  // 1. The create event. Its content comes from creation_content, but room_version is ours.
  const createContent: JsonObject = { ...(req.creation_content ?? {}), room_version: version.id };
  if (version.implicitRoomCreator) delete createContent['creator'];
  else createContent['creator'] = creator;
  if (version.privilegedCreators && preset.inviteesAreAdmins && invitees.length > 0) {
    // v12: trusted_private_chat invitees become additional creators (their "same power").
    const prior = Array.isArray(createContent['additional_creators']) ? (createContent['additional_creators'] as string[]) : [];
    createContent['additional_creators'] = [...new Set([...prior, ...invitees])];
  }
  const roomIdGiven = version.roomIdFromCreateEvent ? undefined : `!${randomRoomLocalpart()}:${d.serverName}`;
  const create = buildCreateEvent(d, version, roomIdGiven, { type: 'm.room.create', sender: creator, content: createContent });
  const roomId = create.room_id;

  const isPublic = req.visibility === 'public';
  await d.queue.run(
    roomId,
    async (lock) => {
      const state = (type: string, content: JsonObject, stateKey = '') =>
        sendUnderLock(d, lock, { type, sender: creator, state_key: stateKey, content });

      await persistEvent(d, lock, create);
      // 2. The creator joins.
      const { displayname, avatar_url } = creatorProfile;
      await state('m.room.member', { membership: 'join', ...(displayname !== undefined ? { displayname } : {}), ...(avatar_url !== undefined ? { avatar_url } : {}) }, creator);

      // 3. Power levels: an initial_state power levels event replaces the defaults; the preset
      // and then power_level_content_override are merged over the top-level keys.
      const levels: JsonObject = { ...(takeInitial('m.room.power_levels') ?? defaultPowerLevels(creator, version)), ...preset.powerOverride };
      if (preset.inviteesAreAdmins && !version.privilegedCreators) {
        levels['users'] = { ...(levels['users'] as JsonObject), ...Object.fromEntries(invitees.map((u) => [u, 100])) };
      }
      Object.assign(levels, req.power_level_content_override ?? {});
      await state('m.room.power_levels', levels);

      // 4. The alias.
      if (alias !== undefined) {
        if (!(await roomsSql.insertAlias(lock.tx, alias, lock.room.roomNid, creator))) {
          throw new MatrixError('M_ROOM_IN_USE', `Room alias ${alias} is already taken`);
        }
        await state('m.room.canonical_alias', { alias });
      }

      // 5. The preset, unless initial_state says otherwise.
      await state('m.room.join_rules', takeInitial('m.room.join_rules') ?? { join_rule: preset.joinRule });
      await state('m.room.history_visibility', takeInitial('m.room.history_visibility') ?? { history_visibility: preset.historyVisibility });
      const guestAccess = takeInitial('m.room.guest_access');
      if (guestAccess) await state('m.room.guest_access', guestAccess);
      else if (preset.guestCanJoin) await state('m.room.guest_access', { guest_access: 'can_join' });

      // 6. The rest of initial_state.
      for (const s of initialState.values()) await state(s.type, s.content, s.state_key);

      // 7. Name and topic.
      if (req.name !== undefined) await state('m.room.name', { name: req.name });
      if (req.topic !== undefined) {
        // Both the plain `topic` and the structured `m.topic` of spec v1.15.
        await state('m.room.topic', { topic: req.topic, 'm.topic': { 'm.text': [{ body: req.topic, mimetype: 'text/plain' }] } });
      }

      // 8. Invites.
      for (const u of invitees) {
        const p = profiles.get(u) ?? {};
        await sendUnderLock(d, lock, {
          type: 'm.room.member',
          sender: creator,
          state_key: u,
          content: {
            membership: 'invite',
            ...(p.displayname !== undefined ? { displayname: p.displayname } : {}),
            ...(p.avatar_url !== undefined ? { avatar_url: p.avatar_url } : {}),
            ...(req.is_direct ? { is_direct: true } : {}),
          },
        });
      }
    },
    { newRoom: { version: version.id, creator, isPublic } },
  );
  return { room_id: roomId, ...(alias !== undefined ? { room_alias: alias } : {}) };
}
