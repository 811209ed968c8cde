// What sync needs to know about rooms, read-only. Implemented over the rooms schema in
// store/rooms.ts; kept as an interface so the ephemeral services do not depend on its tables.
import type { Queryable } from '../db/pool.js';

export interface RoomsView {
  /** The user's current membership of the room ('join', 'invite', ...), or null. */
  membership(db: Queryable, roomId: string, userId: string): Promise<string | null>;
  /** The event's position in the room stream, or null when the room has no such event. */
  eventPosition(db: Queryable, roomId: string, eventId: string): Promise<{ stream: number; threadId: string } | null>;
  /** Every user who shares a joined room with this user (the user included). */
  usersSharingRooms(db: Queryable, userId: string): Promise<string[]>;
  /** Rooms the user is joined to. */
  joinedRooms(db: Queryable, userId: string): Promise<string[]>;
}
