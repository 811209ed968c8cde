// SQL of the user directory. There is no table of its own: it reads users (accounts, 0001) for
// profiles and room_memberships/rooms (rooms, 0003) for who shares a room with whom, read-only,
// the way sync reads the rooms schema. Matching is a scan of the local users (no index: word
// prefixes inside display names need a trigram or full-text index, which would need an
// extension or a maintained column; a scan of 100k short rows stays in the tens of ms).
import type { Queryable } from '../db/pool.js';

/**
 * What separates words, on both sides of a match: ASCII whitespace, punctuation and symbols
 * (so `@john.smith:example.org` and "John Smith (work)" both give the words john, smith).
 * Non-ASCII characters are always part of a word, so the split is the same in JS and in
 * PostgreSQL whatever the database's locale.
 */
export const WORD_SEPARATORS = '[\\x01-\\x2f\\x3a-\\x40\\x5b-\\x60\\x7b-\\x7f]+';

const SQL = {
  rooms: 'SELECT room_nid, current_snapshot FROM rooms WHERE current_snapshot IS NOT NULL',
  // $1 searcher, $2 public room nids, $3 all users visible, $4 LIKE-escaped words of the search
  // term, $5 the whole term (exact matches rank first), $6 row limit.
  search: `
    WITH shared AS (
      SELECT DISTINCT other.user_id
        FROM room_memberships mine
        JOIN room_memberships other ON other.room_nid = mine.room_nid AND other.membership = 'join'
       WHERE mine.user_id = $1 AND mine.membership = 'join'
    ), candidates AS (
      SELECT u.user_id, u.displayname, u.avatar_url,
             lower(split_part(substr(u.user_id, 2), ':', 1)) AS localpart,
             ' ' || regexp_replace(lower(substr(u.user_id, 2) || ' ' || coalesce(u.displayname, '')), $7, ' ', 'g') || ' ' AS words
        FROM users u
       WHERE NOT u.deactivated AND u.user_id <> $1
    )
    SELECT c.user_id, c.displayname, c.avatar_url
      FROM candidates c
      LEFT JOIN shared s ON s.user_id = c.user_id
     WHERE c.words LIKE ALL (ARRAY(SELECT '% ' || lower(w) || '%' FROM unnest($4::text[]) AS w))
       AND ($3::boolean OR s.user_id IS NOT NULL OR EXISTS (
             SELECT 1 FROM room_memberships p
              WHERE p.user_id = c.user_id AND p.membership = 'join' AND p.room_nid = ANY($2::bigint[])))
     ORDER BY (s.user_id IS NOT NULL) DESC,
              (c.localpart = lower($5) OR lower(c.displayname) = lower($5)) DESC,
              (c.displayname IS NOT NULL) DESC,
              (c.avatar_url IS NOT NULL) DESC,
              c.user_id
     LIMIT $6`,
} as const;

export interface RoomSnapshotRow {
  room_nid: number;
  current_snapshot: number;
}

/** Every room with state, and the snapshot of its current state. */
export async function roomSnapshots(db: Queryable): Promise<RoomSnapshotRow[]> {
  return (await db.query<RoomSnapshotRow>(SQL.rooms)).rows.map((r) => ({ room_nid: Number(r.room_nid), current_snapshot: Number(r.current_snapshot) }));
}

export interface DirectoryUserRow {
  user_id: string;
  displayname: string | null;
  avatar_url: string | null;
}

export interface SearchQuery {
  searcher: string;
  /**
   * Each must be a prefix of a word of the user id (localpart and server name, as Synapse
   * indexes them: a pasted full id finds its user) or display name. They never hold LIKE's
   * `%`, `_` or `\`: those are separators.
   */
  words: string[];
  wholeTerm: string;
  publicRoomNids: number[];
  allUsers: boolean;
  limit: number;
}

/** Matching visible users, best first, at most `limit` of them. */
export async function searchUsers(db: Queryable, q: SearchQuery): Promise<DirectoryUserRow[]> {
  const res = await db.query<DirectoryUserRow>(SQL.search, [q.searcher, q.publicRoomNids, q.allUsers, q.words, q.wholeTerm, q.limit, WORD_SEPARATORS]);
  return res.rows;
}
