// Room aliases and the public room directory (spec "Room aliases", "Listing rooms").
//  - Aliases live in room_aliases; only this server's aliases can be created here, since
//    resolving another server's needs federation.
//  - Deleting an alias, and publishing a room, take the same right as Synapse asks: the alias's
//    creator (for its deletion), a server admin, or a member with the power to set the room's
//    canonical alias.
//  - /publicRooms lists published rooms, most joined members first, with offset tokens.
import { domainOf } from '../../core/auth-rules.js';
import { isValidRoomAlias } from '../../core/identifiers.js';
import { requiredPowerLevelForEvent, userPowerLevel } from '../../core/power-levels.js';
import { getRoomVersion } from '../../core/room-versions.js';
import type { JsonObject } from '../../core/types.js';
import type { Queryable } from '../../db/pool.js';
import { MatrixError, forbidden } from '../../http/errors.js';
import type { Requester } from '../../http/types.js';
import { loadStateLookup, type RoomDeps } from '../context.js';
import { notInRoom } from '../errors.js';
import { currentStateEvent, findRoom, type KnownRoom, type Reader } from '../read.js';
import { sendState } from '../send.js';
import * as directorySql from '../store/directory.js';
import * as membershipsSql from '../store/memberships.js';
import * as roomsSql from '../store/rooms.js';
import { publicChunk, summarizeRooms } from '../summary.js';
import { roomAccess } from '../visibility.js';

function checkAlias(alias: string): void {
  if (!isValidRoomAlias(alias)) throw new MatrixError('M_INVALID_PARAM', `${JSON.stringify(alias)} is not a valid room alias`);
}

/** Joined, with at least the power to send m.room.canonical_alias (or a server admin). */
export async function canChangeRoomList(d: RoomDeps, db: Queryable, room: KnownRoom, who: { userId: string; isAdmin?: boolean }): Promise<boolean> {
  if (who.isAdmin) return true;
  const m = await membershipsSql.getMembership(db, room.row.room_nid, who.userId);
  if (m?.membership !== 'join' || room.row.current_snapshot === null) return false;
  const state = await d.state.load(db, room.row.current_snapshot);
  const lookup = await loadStateLookup(
    d,
    db,
    state,
    [
      ['m.room.create', ''],
      ['m.room.power_levels', ''],
    ],
    room.version,
  );
  return userPowerLevel(who.userId, lookup, room.version) >= requiredPowerLevelForEvent('m.room.canonical_alias', true, lookup);
}

/** PUT /directory/room/{roomAlias}. */
export async function createAlias(d: RoomDeps, who: Requester, alias: string, roomId: string): Promise<void> {
  checkAlias(alias);
  if (domainOf(alias) !== d.serverName) throw new MatrixError('M_INVALID_PARAM', `Room alias ${alias} is not on this server`);
  const room = await findRoom(d.db, roomId);
  if (!room) throw notInRoom(roomId);
  if (!who.isAdmin) {
    const m = await membershipsSql.getMembership(d.db, room.row.room_nid, who.userId);
    if (m?.membership !== 'join') throw notInRoom(roomId);
  }
  if (!(await roomsSql.insertAlias(d.db, alias, room.row.room_nid, who.userId))) {
    throw new MatrixError('M_UNKNOWN', `Room alias ${alias} already exists`, { status: 409 });
  }
}

/** GET /directory/room/{roomAlias}. */
export async function resolveAlias(d: RoomDeps, alias: string): Promise<{ room_id: string; servers: string[] }> {
  checkAlias(alias);
  const row = await directorySql.aliasRow(d.db, alias);
  if (!row) throw new MatrixError('M_NOT_FOUND', `Room alias ${alias} not found`);
  return { room_id: row.room_id, servers: [d.serverName] };
}

/**
 * DELETE /directory/room/{roomAlias}. When the alias is the room's canonical alias (or one of
 * its alt_aliases), the canonical alias event is updated without it, as Synapse does, so the
 * room does not keep advertising an alias that no longer resolves.
 */
export async function deleteAlias(d: RoomDeps, who: Requester, alias: string): Promise<void> {
  checkAlias(alias);
  const row = await directorySql.aliasRow(d.db, alias);
  if (!row) throw new MatrixError('M_NOT_FOUND', `Room alias ${alias} not found`);
  const room = (await findRoom(d.db, row.room_id))!;
  if (row.creator !== who.userId && !(await canChangeRoomList(d, d.db, room, who))) {
    throw forbidden('Only the creator of the alias, a room moderator allowed to set the canonical alias, or a server admin may delete it');
  }
  await directorySql.deleteAlias(d.db, alias);
  if (room.row.current_snapshot === null) return;
  const canonical = await currentStateEvent(d, d.db, room.row.current_snapshot, 'm.room.canonical_alias', '');
  if (!canonical) return;
  const content: JsonObject = { ...canonical.content };
  let changed = false;
  if (content['alias'] === alias) {
    delete content['alias'];
    changed = true;
  }
  if (Array.isArray(content['alt_aliases']) && content['alt_aliases'].includes(alias)) {
    content['alt_aliases'] = content['alt_aliases'].filter((a) => a !== alias);
    changed = true;
  }
  if (!changed) return;
  try {
    await sendState(d, who, row.room_id, 'm.room.canonical_alias', '', content);
  } catch (err) {
    // The alias is gone either way; a deleter without the power to edit the room keeps it.
    d.log.info({ err, alias }, 'could not update the canonical alias after deleting an alias');
  }
}

/** GET /rooms/{roomId}/aliases: members (and anyone, in a world_readable room). */
export async function roomAliases(d: RoomDeps, reader: Reader, roomId: string): Promise<{ aliases: string[] }> {
  const access = await roomAccess(d, d.db, roomId, reader.userId);
  if (access.membership?.membership !== 'join' && !access.worldReadableNow) throw notInRoom(roomId);
  return { aliases: await roomsSql.aliasesOfRoom(d.db, access.room.row.room_nid) };
}

/** GET /directory/list/room/{roomId}. */
export async function getDirectoryVisibility(d: RoomDeps, roomId: string): Promise<{ visibility: 'public' | 'private' }> {
  const room = await findRoom(d.db, roomId);
  if (!room) throw new MatrixError('M_NOT_FOUND', `Room ${roomId} not found`);
  return { visibility: room.row.is_public ? 'public' : 'private' };
}

/** PUT /directory/list/room/{roomId}. */
export async function setDirectoryVisibility(d: RoomDeps, who: Requester, roomId: string, visibility: 'public' | 'private'): Promise<void> {
  const room = await findRoom(d.db, roomId);
  if (!room) throw new MatrixError('M_NOT_FOUND', `Room ${roomId} not found`);
  if (!(await canChangeRoomList(d, d.db, room, who))) {
    throw forbidden('You need to be in the room with the power to set its canonical alias to change whether it is published');
  }
  await roomsSql.setPublic(d.db, room.row.room_nid, visibility === 'public');
}

export interface PublicRoomsRequest {
  limit?: number;
  since?: string;
  server?: string;
  filter?: { generic_search_term?: string; room_types?: Array<string | null> };
}

const SINCE = /^p(\d{1,9})$/;

/** GET/POST /publicRooms. */
export async function publicRooms(d: RoomDeps, req: PublicRoomsRequest) {
  if (req.server !== undefined && req.server !== d.serverName) {
    throw new MatrixError('M_INVALID_PARAM', `Listing the rooms of ${req.server} needs federation, which this server does not offer yet`);
  }
  let offset = 0;
  if (req.since !== undefined) {
    const m = SINCE.exec(req.since);
    if (!m) throw new MatrixError('M_INVALID_PARAM', "Invalid 'since' token");
    offset = Number(m[1]);
  }
  const rows = await directorySql.publicRooms(d.db);
  const rooms: KnownRoom[] = [];
  for (const row of rows) {
    const version = getRoomVersion(row.version);
    if (version) rooms.push({ row, version });
  }
  const summaries = [...(await summarizeRooms(d, d.db, rooms)).values()];
  const term = req.filter?.generic_search_term?.trim().toLowerCase();
  const types = req.filter?.room_types;
  const matching = summaries.filter((s) => {
    if (term) {
      const hay = [s.name, s.topic, s.canonical_alias, s.room_id].filter((x): x is string => x !== undefined).join('\n').toLowerCase();
      if (!hay.includes(term)) return false;
    }
    // room_types: null stands for rooms without a type.
    if (types !== undefined && !types.includes(s.room_type ?? null)) return false;
    return true;
  });
  matching.sort((a, b) => b.num_joined_members - a.num_joined_members || (a.room_id < b.room_id ? -1 : a.room_id > b.room_id ? 1 : 0));
  const limit = req.limit !== undefined && req.limit > 0 ? Math.min(req.limit, 500) : matching.length;
  const page = matching.slice(offset, offset + limit);
  return {
    chunk: page.map(publicChunk),
    ...(offset + limit < matching.length ? { next_batch: `p${offset + limit}` } : {}),
    ...(offset > 0 ? { prev_batch: `p${Math.max(0, offset - limit)}` } : {}),
    total_room_count_estimate: summaries.length,
  };
}
