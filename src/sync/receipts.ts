// Read receipts and read markers. A receipt names an event the user has read up to; m.read is
// shared with the room, m.read.private only with its owner. Receipts never move backwards.
// A receipt also clears notification counts up to its event (event_stream_ordering).
import type { Database } from '../db/pool.js';
import { MatrixError, forbidden } from '../http/errors.js';
import type { AccountDataService } from './account-data.js';
import type { Notifier } from './notifier.js';
import type { RoomsView } from './rooms-view.js';
import { nextPosition } from './store/positions.js';
import * as store from './store/receipts.js';

export const RECEIPT_TYPES = ['m.read', 'm.read.private'] as const;
export type ReceiptType = (typeof RECEIPT_TYPES)[number];
const MAIN_THREAD = 'main';

export class ReceiptService {
  constructor(
    private readonly db: Database,
    private readonly notifier: Notifier,
    private readonly rooms: RoomsView,
    private readonly accountData: AccountDataService,
  ) {}

  /** POST /rooms/{roomId}/receipt/{type}/{eventId}. */
  async postReceipt(userId: string, roomId: string, type: string, eventId: string, threadId: string | undefined): Promise<void> {
    if (type === 'm.fully_read') {
      if (threadId !== undefined) throw new MatrixError('M_INVALID_PARAM', 'm.fully_read receipts cannot be threaded');
      await this.setFullyRead(userId, roomId, eventId);
      return;
    }
    if (!(RECEIPT_TYPES as readonly string[]).includes(type)) throw new MatrixError('M_INVALID_PARAM', `Unknown receipt type ${type}`);
    if (threadId !== undefined && (typeof threadId !== 'string' || threadId.length === 0)) throw new MatrixError('M_INVALID_PARAM', 'Invalid thread_id');
    const ev = await this.checkEvent(userId, roomId, eventId);
    // The spec: a receipt for thread "main" must be for an event in the main timeline, and a
    // threaded receipt for an event of that thread (or its root).
    if (threadId === MAIN_THREAD && ev.threadId !== '') throw new MatrixError('M_INVALID_PARAM', 'event is not in the main timeline');
    if (threadId !== undefined && threadId !== MAIN_THREAD && ev.threadId !== threadId && eventId !== threadId) {
      throw new MatrixError('M_INVALID_PARAM', 'event is not in that thread');
    }
    await this.store(userId, roomId, type as ReceiptType, eventId, ev.stream, threadId === undefined ? '' : threadId === MAIN_THREAD ? MAIN_THREAD : threadId);
  }

  /** POST /rooms/{roomId}/read_markers. */
  async readMarkers(userId: string, roomId: string, markers: { fullyRead?: string; read?: string; readPrivate?: string }): Promise<void> {
    if (markers.fullyRead !== undefined) await this.setFullyRead(userId, roomId, markers.fullyRead);
    if (markers.read !== undefined) await this.postReceipt(userId, roomId, 'm.read', markers.read, undefined);
    if (markers.readPrivate !== undefined) await this.postReceipt(userId, roomId, 'm.read.private', markers.readPrivate, undefined);
  }

  private async setFullyRead(userId: string, roomId: string, eventId: string): Promise<void> {
    await this.checkEvent(userId, roomId, eventId);
    await this.accountData.set(userId, roomId, 'm.fully_read', { event_id: eventId });
  }

  private async checkEvent(userId: string, roomId: string, eventId: string): Promise<{ stream: number; threadId: string }> {
    const membership = await this.rooms.membership(this.db, roomId, userId);
    // Unknown room and not-a-member get the same answer.
    if (membership !== 'join') throw forbidden('You are not joined to this room');
    const ev = await this.rooms.eventPosition(this.db, roomId, eventId);
    if (!ev) throw new MatrixError('M_NOT_FOUND', 'Unknown event');
    return ev;
  }

  private async store(userId: string, roomId: string, type: ReceiptType, eventId: string, eventStream: number, threadId: string): Promise<void> {
    const pos = await this.db.withTx('receipt_put', async (tx) => {
      const pos = await nextPosition(tx, 'receipts');
      const stored = await store.upsertReceipt(tx, {
        roomId,
        type,
        userId,
        threadId,
        eventId,
        eventStreamOrdering: eventStream,
        data: { ts: Date.now(), ...(threadId !== '' ? { thread_id: threadId } : {}) },
        pos,
      });
      return stored ? pos : undefined;
    });
    if (pos === undefined) return;
    // A private receipt concerns only its owner; a public one everyone in the room.
    if (type === 'm.read.private') this.notifier.notify('receipts', pos, { userIds: [userId] });
    else this.notifier.notify('receipts', pos, { roomId, userIds: [userId] });
  }
}
