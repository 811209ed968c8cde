// Client API endpoints of sync and per-user data: /sync, filters, typing, receipts, read
// markers, presence, account data and tags.
import type { Request } from 'express';
import { MatrixError, forbidden } from '../http/errors.js';
import type { RouteTable } from '../http/routes.js';
import { requester } from '../http/types.js';
import { compileBody } from '../http/validate.js';
import type { AccountDataService } from './account-data.js';
import { Cancellation } from './notifier.js';
import { parsePresenceState, type PresenceService } from './presence.js';
import type { ReceiptService } from './receipts.js';
import type { RoomsView } from './rooms-view.js';
import type { SyncService } from './service.js';
import type { TypingService } from './typing.js';
import type { Database } from '../db/pool.js';
import { roomIdParam } from '../http/params.js';

export interface SyncRouteDeps {
  db: Database;
  sync: SyncService;
  accountData: AccountDataService;
  presence: PresenceService;
  typing: TypingService;
  receipts: ReceiptService;
  rooms: RoomsView;
  shutdown: AbortSignal;
}

const anyObject = compileBody<Record<string, unknown>>({ type: 'object' });
const typingBody = compileBody<{ typing: boolean; timeout?: number }>(
  { type: 'object', required: ['typing'], properties: { typing: { type: 'boolean' }, timeout: { type: 'integer', minimum: 0 } } },
  { missingErrcode: 'M_MISSING_PARAM' },
);
const receiptBody = compileBody<{ thread_id?: string }>({ type: 'object', properties: { thread_id: { type: 'string', minLength: 1 } } });
const markersBody = compileBody<{ 'm.fully_read'?: string; 'm.read'?: string; 'm.read.private'?: string }>({
  type: 'object',
  properties: { 'm.fully_read': { type: 'string' }, 'm.read': { type: 'string' }, 'm.read.private': { type: 'string' } },
});
const presenceBody = compileBody<{ presence: string; status_msg?: string | null }>(
  { type: 'object', required: ['presence'], properties: { presence: { type: 'string' }, status_msg: { type: ['string', 'null'], maxLength: 1024 } } },
  { missingErrcode: 'M_MISSING_PARAM' },
);
const tagBody = compileBody<{ order?: number }>({ type: 'object', properties: { order: { type: 'number' } } });

const p = (req: Request, name: string) => String(req.params[name]);
const q = (req: Request, name: string): string | undefined => (typeof req.query[name] === 'string' ? (req.query[name] as string) : undefined);

/** Path user must be the caller (filters, account data, tags, typing). */
function ownUser(req: Request): string {
  const me = requester(req).userId;
  if (p(req, 'userId') !== me) throw forbidden('You cannot act for another user');
  return me;
}

function typeParam(req: Request): string {
  const type = p(req, 'type');
  if (type.length === 0 || type.length > 255) throw new MatrixError('M_INVALID_PARAM', 'Invalid account data type');
  return type;
}

export function registerSyncRoutes(routes: RouteTable, d: SyncRouteDeps): void {
  // Requests in /sync, cancelled together at shutdown (one listener for them all).
  const inSync = new Set<Cancellation>();
  d.shutdown.addEventListener(
    'abort',
    () => {
      for (const c of inSync) c.cancel();
    },
    { once: true },
  );
  routes.client('/sync', {
    GET: {
      guests: true,
      handler: async (req, res) => {
        const r = requester(req);
        const timeoutText = q(req, 'timeout');
        let timeoutMs = 0;
        if (timeoutText !== undefined) {
          if (!/^\d{1,12}$/.test(timeoutText)) throw new MatrixError('M_INVALID_PARAM', "'timeout' must be a non-negative integer");
          timeoutMs = Number(timeoutText);
        }
        const fullStateText = q(req, 'full_state');
        if (fullStateText !== undefined && fullStateText !== 'true' && fullStateText !== 'false') {
          throw new MatrixError('M_INVALID_PARAM', "'full_state' must be true or false");
        }
        const stateAfterText = q(req, 'use_state_after');
        if (stateAfterText !== undefined && stateAfterText !== 'true' && stateAfterText !== 'false') {
          throw new MatrixError('M_INVALID_PARAM', "'use_state_after' must be true or false");
        }
        const setPresenceText = q(req, 'set_presence');
        const since = q(req, 'since');
        const filter = q(req, 'filter');
        // The client going away ends the long-poll, as does shutdown.
        const gone = new Cancellation();
        if (d.shutdown.aborted) gone.cancel();
        else inSync.add(gone);
        res.on('close', () => {
          inSync.delete(gone);
          gone.cancel();
        });
        return d.sync.sync(
          r.userId,
          r.deviceId,
          {
            ...(since !== undefined && since !== '' ? { since } : {}),
            ...(filter !== undefined ? { filter } : {}),
            timeoutMs,
            fullState: fullStateText === 'true',
            useStateAfter: stateAfterText === 'true',
            ...(setPresenceText !== undefined ? { setPresence: parsePresenceState(setPresenceText) } : {}),
          },
          gone,
        );
      },
    },
  });

  // ---- filters ---------------------------------------------------------------------------
  routes.client('/user/:userId/filter', {
    POST: { guests: true, body: anyObject, handler: async (req) => ({ filter_id: await d.sync.createFilter(ownUser(req), req.body) }) },
  });
  routes.client('/user/:userId/filter/:filterId', {
    GET: { guests: true, handler: async (req) => d.sync.getFilter(ownUser(req), p(req, 'filterId')) },
  });

  // ---- account data ------------------------------------------------------------------------
  routes.client('/user/:userId/account_data/:type', {
    GET: { guests: true, handler: async (req) => d.accountData.get(ownUser(req), '', typeParam(req)) },
    PUT: {
      guests: true,
      body: anyObject,
      handler: async (req) => {
        await d.accountData.putFromClient(ownUser(req), '', typeParam(req), req.body as Record<string, unknown>);
        return {};
      },
    },
  });
  routes.client('/user/:userId/rooms/:roomId/account_data/:type', {
    GET: { guests: true, handler: async (req) => d.accountData.get(ownUser(req), roomIdParam(req), typeParam(req)) },
    PUT: {
      guests: true,
      body: anyObject,
      handler: async (req) => {
        await d.accountData.putFromClient(ownUser(req), roomIdParam(req), typeParam(req), req.body as Record<string, unknown>);
        return {};
      },
    },
  });

  // ---- tags --------------------------------------------------------------------------------
  routes.client('/user/:userId/rooms/:roomId/tags', {
    GET: { handler: async (req) => ({ tags: await d.accountData.getTags(ownUser(req), roomIdParam(req)) }) },
  });
  routes.client('/user/:userId/rooms/:roomId/tags/:tag', {
    PUT: {
      body: tagBody,
      handler: async (req) => {
        const tag = p(req, 'tag');
        if (tag.length === 0 || tag.length > 255) throw new MatrixError('M_INVALID_PARAM', 'Invalid tag');
        await d.accountData.editTag(ownUser(req), roomIdParam(req), tag, req.body as Record<string, unknown>);
        return {};
      },
    },
    DELETE: {
      handler: async (req) => {
        await d.accountData.editTag(ownUser(req), roomIdParam(req), p(req, 'tag'), null);
        return {};
      },
    },
  });

  // ---- typing, receipts, read markers ------------------------------------------------------
  routes.client('/rooms/:roomId/typing/:userId', {
    PUT: {
      guests: true,
      body: typingBody,
      handler: async (req) => {
        const me = ownUser(req);
        const roomId = roomIdParam(req);
        const body = req.body as { typing: boolean; timeout?: number };
        if ((await d.rooms.membership(d.db, roomId, me)) !== 'join') throw forbidden('You are not joined to this room');
        await d.typing.setTyping(roomId, me, body.typing, body.timeout ?? 30_000);
        return {};
      },
    },
  });
  routes.client('/rooms/:roomId/receipt/:receiptType/:eventId', {
    POST: {
      guests: true,
      body: receiptBody,
      handler: async (req) => {
        await d.receipts.postReceipt(requester(req).userId, roomIdParam(req), p(req, 'receiptType'), p(req, 'eventId'), (req.body as { thread_id?: string }).thread_id);
        return {};
      },
    },
  });
  routes.client('/rooms/:roomId/read_markers', {
    POST: {
      guests: true,
      body: markersBody,
      handler: async (req) => {
        const b = req.body as { 'm.fully_read'?: string; 'm.read'?: string; 'm.read.private'?: string };
        await d.receipts.readMarkers(requester(req).userId, roomIdParam(req), {
          ...(b['m.fully_read'] !== undefined ? { fullyRead: b['m.fully_read'] } : {}),
          ...(b['m.read'] !== undefined ? { read: b['m.read'] } : {}),
          ...(b['m.read.private'] !== undefined ? { readPrivate: b['m.read.private'] } : {}),
        });
        return {};
      },
    },
  });

  // ---- presence ----------------------------------------------------------------------------
  routes.client('/presence/:userId/status', {
    GET: {
      guests: true,
      handler: async (req) => {
        const me = requester(req).userId;
        const target = p(req, 'userId');
        // Presence is shared with users who share a room (the spec); anyone else is refused.
        if (target !== me && d.presence.enabled && !(await d.rooms.usersSharingRooms(d.db, me)).includes(target)) {
          throw forbidden('You do not share a room with this user');
        }
        return d.presence.get(target);
      },
    },
    PUT: {
      guests: true,
      body: presenceBody,
      handler: async (req) => {
        const me = ownUser(req);
        const b = req.body as { presence: string; status_msg?: string | null };
        await d.presence.set(me, parsePresenceState(b.presence), b.status_msg === undefined ? undefined : b.status_msg);
        return {};
      },
    },
  });
}
