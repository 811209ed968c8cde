// The typing stream: in-memory state (src/sync/typing.ts), into each joined room's ephemeral.
import type { Queryable } from '../../db/pool.js';
import { roomEventAllowed, sectionDisabled } from '../filter.js';
import type { TypingService } from '../typing.js';
import { joinedRoom, type StreamProvider, type SyncContext } from './types.js';

export class TypingStream implements StreamProvider {
  readonly name = 'typing' as const;
  readonly inMemory = true;

  constructor(private readonly typing: TypingService) {}

  latest(_tx: Queryable): Promise<number> {
    return Promise.resolve(this.typing.latest());
  }

  async full(ctx: SyncContext): Promise<void> {
    this.emit(ctx, this.typing.typingEvents(ctx.joinedRooms, undefined, ctx.to.typing));
  }

  async between(ctx: SyncContext, from: number, to: number): Promise<void> {
    const old = ctx.joinedRooms.filter((r) => !ctx.newlyJoined.has(r));
    this.emit(ctx, this.typing.typingEvents(old, from, to));
    this.emit(ctx, this.typing.typingEvents([...ctx.newlyJoined], undefined, to));
  }

  private emit(ctx: SyncContext, events: Map<string, unknown>): void {
    const f = ctx.filter.room?.ephemeral;
    if (sectionDisabled(f)) return;
    for (const [roomId, ev] of events) {
      if (!roomEventAllowed(f, { type: 'm.typing', room_id: roomId }) || !roomAllowedByRoomFilter(ctx, roomId)) continue;
      joinedRoom(ctx, roomId).ephemeral.events.push(ev);
    }
  }
}

export function roomAllowedByRoomFilter(ctx: SyncContext, roomId: string): boolean {
  const f = ctx.filter.room;
  if (f?.not_rooms?.includes(roomId)) return false;
  if (f?.rooms && !f.rooms.includes(roomId)) return false;
  return true;
}
