// The user directory (POST /user_directory/search). Whom a searcher may find: users who share a
// joined room with them, users joined to a public room (join rule public, or history
// world_readable: rooms anyone can see into, as Synapse counts them), and, when
// `user_directory.search_all_users` is set, every local user. Deactivated users never show.
// Profiles are the users' global ones (a per-room display name is not public information).
// Only local users are searched: remote users need federation profile queries.
import type { PratConfig } from '../config/schema.js';
import type { Database, Queryable } from '../db/pool.js';
import type { Logger } from '../logger.js';
import type { RoomDeps } from '../rooms/context.js';
import { currentStateEvent } from '../rooms/read.js';
import * as store from './store.js';

export const DEFAULT_LIMIT = 10;
/** The spec sets no maximum; a bound keeps one request from listing the whole server. */
export const MAX_LIMIT = 100;
/** More words than this in one search term are ignored (each is one LIKE per candidate row). */
const MAX_WORDS = 8;

export interface SearchResult {
  results: { user_id: string; display_name?: string; avatar_url?: string }[];
  limited: boolean;
}

const SEPARATORS = new RegExp(store.WORD_SEPARATORS, 'u');

/** The words of a search term, split as the stored names are (store.WORD_SEPARATORS). */
export function searchWords(term: string): string[] {
  return term.split(SEPARATORS).filter((w) => w.length > 0).slice(0, MAX_WORDS);
}

/**
 * Which rooms are public, remembered per room with the snapshot it was computed at: a search
 * re-reads only the rooms whose state changed since. Each process keeps its own; a snapshot id
 * never changes meaning, so several processes cannot disagree for long.
 */
class PublicRooms {
  private readonly known = new Map<number, { snapshot: number; isPublic: boolean }>();

  constructor(private readonly rooms: RoomDeps) {}

  async nids(db: Queryable): Promise<number[]> {
    const rows = await store.roomSnapshots(db);
    const out: number[] = [];
    const present = new Set<number>();
    for (const r of rows) {
      present.add(r.room_nid);
      let entry = this.known.get(r.room_nid);
      if (entry?.snapshot !== r.current_snapshot) {
        entry = { snapshot: r.current_snapshot, isPublic: await this.isPublic(db, r.current_snapshot) };
        this.known.set(r.room_nid, entry);
      }
      if (entry.isPublic) out.push(r.room_nid);
    }
    for (const nid of this.known.keys()) if (!present.has(nid)) this.known.delete(nid);
    return out;
  }

  private async isPublic(db: Queryable, snapshot: number): Promise<boolean> {
    const [joinRules, visibility] = await Promise.all([
      currentStateEvent(this.rooms, db, snapshot, 'm.room.join_rules', ''),
      currentStateEvent(this.rooms, db, snapshot, 'm.room.history_visibility', ''),
    ]);
    return joinRules?.content['join_rule'] === 'public' || visibility?.content['history_visibility'] === 'world_readable';
  }
}

export class UserDirectoryService {
  private readonly publicRooms: PublicRooms;

  constructor(
    private readonly db: Database,
    private readonly config: PratConfig,
    rooms: RoomDeps,
    private readonly log: Logger,
  ) {
    this.publicRooms = new PublicRooms(rooms);
  }

  async search(searcher: string, searchTerm: string, limit: number = DEFAULT_LIMIT): Promise<SearchResult> {
    const words = searchWords(searchTerm);
    // Nothing to match on ("", "@", ":"): no one, rather than everyone.
    if (words.length === 0) return { results: [], limited: false };
    const allUsers = this.config.user_directory.search_all_users;
    const publicRoomNids = allUsers ? [] : await this.publicRooms.nids(this.db);
    const capped = Math.min(limit, MAX_LIMIT);
    // One row more than asked tells whether the list was cut (`limited`).
    const rows = await store.searchUsers(this.db, {
      searcher,
      words,
      // A whole-id search ("@alice:example.org") ranks alice first, as her localpart does.
      wholeTerm: searchTerm.trim().replace(/^@/, '').split(':')[0]!,
      publicRoomNids,
      allUsers,
      limit: capped + 1,
    });
    this.log.debug({ words: words.length, found: rows.length }, 'user directory search');
    return {
      results: rows.slice(0, capped).map((r) => ({
        user_id: r.user_id,
        ...(r.displayname !== null ? { display_name: r.displayname } : {}),
        ...(r.avatar_url !== null ? { avatar_url: r.avatar_url } : {}),
      })),
      limited: rows.length > capped,
    };
  }
}
