// A room's public description from its current state: what the public room directory, the
// space hierarchy and room summaries show (spec PublicRoomsChunk, SpaceHierarchyRoomsChunk,
// MSC3266 summaries share these fields), and whether a user may preview the room.
import { redactEvent } from '../core/redaction.js';
import type { JsonObject, RoomEvent } from '../core/types.js';
import type { Queryable } from '../db/pool.js';
import type { RoomDeps } from './context.js';
import type { KnownRoom } from './read.js';
import * as directorySql from './store/directory.js';
import * as membershipsSql from './store/memberships.js';
import { effectiveVisibility } from './visibility.js';

export interface RoomSummary {
  room_id: string;
  name?: string;
  topic?: string;
  avatar_url?: string;
  canonical_alias?: string;
  num_joined_members: number;
  world_readable: boolean;
  guest_can_join: boolean;
  join_rule: string;
  room_type?: string;
  /** Not part of the public chunk: extra facts for the summary and hierarchy. */
  extra: {
    roomVersion: string;
    encryption?: string;
    allowedRoomIds: string[];
    /** m.space.child events (state key = child room id), for the hierarchy. */
    children: RoomEvent[];
    createEvent?: RoomEvent;
  };
}

const SUMMARY_TYPES = [
  'm.room.create',
  'm.room.name',
  'm.room.topic',
  'm.room.avatar',
  'm.room.canonical_alias',
  'm.room.join_rules',
  'm.room.history_visibility',
  'm.room.guest_access',
  'm.room.encryption',
];

/** Summaries of rooms by nid (unknown or stateless rooms are absent). */
export async function summarizeRooms(d: RoomDeps, db: Queryable, rooms: KnownRoom[]): Promise<Map<string, RoomSummary>> {
  const out = new Map<string, RoomSummary>();
  const counts = await directorySql.joinedCounts(db, rooms.map((r) => r.row.room_nid));
  for (const room of rooms) {
    if (room.row.current_snapshot === null) continue;
    const state = await d.state.load(db, room.row.current_snapshot);
    const pairs = await d.state.keyPairsOf(db, state.keys());
    const wanted = new Map<string, number>();
    const childNids: number[] = [];
    for (const [k, e] of state) {
      const p = pairs.get(k);
      if (!p) continue;
      if (p[1] === '' && SUMMARY_TYPES.includes(p[0])) wanted.set(p[0], e);
      else if (p[0] === 'm.space.child') childNids.push(e);
    }
    const loaded = await d.events.byNids(db, [...wanted.values(), ...childNids]);
    // A redacted state event counts as its redacted form (a redacted name is no name).
    const content = (type: string): JsonObject | undefined => {
      const nid = wanted.get(type);
      const e = nid === undefined ? undefined : loaded.get(nid);
      if (!e) return undefined;
      return e.redactedBy !== null ? redactEvent(e.event, room.version).content : e.event.content;
    };
    const str = (v: unknown) => (typeof v === 'string' ? v : undefined);
    const name = str(content('m.room.name')?.['name']);
    const topic = str(content('m.room.topic')?.['topic']);
    const avatar = str(content('m.room.avatar')?.['url']);
    const alias = str(content('m.room.canonical_alias')?.['alias']);
    const roomType = str(content('m.room.create')?.['type']);
    const joinRules = content('m.room.join_rules');
    const allow = Array.isArray(joinRules?.['allow']) ? (joinRules!['allow'] as unknown[]) : [];
    const encryption = str(content('m.room.encryption')?.['algorithm']);
    const createNid = wanted.get('m.room.create');
    out.set(room.row.room_id, {
      room_id: room.row.room_id,
      ...(name ? { name } : {}),
      ...(topic ? { topic } : {}),
      ...(avatar ? { avatar_url: avatar } : {}),
      ...(alias ? { canonical_alias: alias } : {}),
      num_joined_members: counts.get(room.row.room_nid) ?? 0,
      world_readable: effectiveVisibility(content('m.room.history_visibility')) === 'world_readable',
      guest_can_join: content('m.room.guest_access')?.['guest_access'] === 'can_join',
      join_rule: str(joinRules?.['join_rule']) ?? 'invite',
      ...(roomType !== undefined ? { room_type: roomType } : {}),
      extra: {
        roomVersion: room.row.version,
        ...(encryption ? { encryption } : {}),
        allowedRoomIds: allow
          .filter((a): a is JsonObject => typeof a === 'object' && a !== null && (a as JsonObject)['type'] === 'm.room_membership')
          .map((a) => a['room_id'])
          .filter((r): r is string => typeof r === 'string'),
        children: childNids.map((n) => loaded.get(n)?.event).filter((e): e is RoomEvent => e !== undefined),
        ...(createNid !== undefined && loaded.get(createNid) ? { createEvent: loaded.get(createNid)!.event } : {}),
      },
    });
  }
  return out;
}

/** The public chunk of a summary (PublicRoomsChunk / SpaceHierarchyRoomsChunk fields). */
export function publicChunk(s: RoomSummary): Omit<RoomSummary, 'extra'> {
  const { extra: _extra, ...rest } = s;
  return rest;
}

/**
 * Whether a user may see a room's summary without being in it (Synapse's rules for the
 * hierarchy and summaries): joined or invited, world_readable, public or knockable, or
 * restricted to a room the user is joined to. A null user (no token) only gets the open cases.
 */
export async function mayPreview(db: Queryable, s: RoomSummary, roomNid: number, userId: string | null): Promise<boolean> {
  if (userId !== null) {
    const m = await membershipsSql.getMembership(db, roomNid, userId);
    if (m && (m.membership === 'join' || m.membership === 'invite')) return true;
  }
  if (s.world_readable) return true;
  if (s.join_rule === 'public' || s.join_rule === 'knock' || s.join_rule === 'knock_restricted') return true;
  if ((s.join_rule === 'restricted' || s.join_rule === 'knock_restricted') && userId !== null) {
    return membershipsSql.isJoinedToAny(db, userId, s.extra.allowedRoomIds);
  }
  return false;
}
