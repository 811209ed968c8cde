// Client API endpoints of rooms. Thin: validate, call the rooms service once, shape the answer.
import type { Request } from 'express';
import { CanonicalJsonError, parseJsonStrict } from '../core/canonical-json.js';
import type { JsonObject } from '../core/types.js';
import { MatrixError } from '../http/errors.js';
import type { RouteTable } from '../http/routes.js';
import { requester } from '../http/types.js';
import { compileBody } from '../http/validate.js';
import type { CreateRoomRequest } from './create.js';
import type { RoomService } from './service.js';
import { pathParam as param, roomIdParam } from '../http/params.js';

const str = { type: 'string' } as const;
const obj = { type: 'object' } as const;

const createRoomBody = compileBody<CreateRoomRequest>({
  type: 'object',
  properties: {
    visibility: { enum: ['public', 'private'] },
    room_alias_name: str,
    name: str,
    topic: str,
    invite: { type: 'array', items: str, maxItems: 1000 },
    invite_3pid: { type: 'array', maxItems: 0 },
    room_version: str,
    creation_content: obj,
    initial_state: {
      type: 'array',
      maxItems: 1000,
      items: { type: 'object', required: ['type', 'content'], properties: { type: { type: 'string', minLength: 1 }, state_key: str, content: obj } },
    },
    preset: { enum: ['private_chat', 'public_chat', 'trusted_private_chat'] },
    is_direct: { type: 'boolean' },
    power_level_content_override: obj,
  },
});
const reasonBody = compileBody<{ reason?: string }>({ type: 'object', properties: { reason: str } });
const targetBody = compileBody<{ user_id: string; reason?: string }>(
  { type: 'object', required: ['user_id'], properties: { user_id: str, reason: str } },
  { missingErrcode: 'M_MISSING_PARAM' },
);

/**
 * Event content straight from the request bytes, strictly: duplicate keys and non-integer
 * numbers are refused (canonical JSON, which events are hashed and signed in, has neither).
 */
function strictContent(req: Request): JsonObject {
  const raw = req.rawBody?.toString('utf8') ?? '';
  if (raw.trim() === '') return {};
  let value: unknown;
  try {
    value = parseJsonStrict(raw, { strictNumbers: true });
  } catch (err) {
    if (err instanceof CanonicalJsonError) throw new MatrixError('M_BAD_JSON', `Bad JSON: ${err.message}`);
    throw new MatrixError('M_NOT_JSON', 'Content not JSON.');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new MatrixError('M_BAD_JSON', 'Content must be a JSON object.');
  return value as JsonObject;
}

function eventTypeParam(req: Request): string {
  const type = param(req, 'eventType');
  if (type.length === 0 || Buffer.byteLength(type) > 255) throw new MatrixError('M_INVALID_PARAM', 'Invalid event type');
  return type;
}

function query(req: Request, name: string): string | undefined {
  const v = req.query[name];
  return typeof v === 'string' ? v : undefined;
}

export function registerRoomRoutes(routes: RouteTable, rooms: RoomService): void {
  routes.client('/createRoom', {
    POST: {
      rateLimit: 'message',
      handler: async (req) => {
        // Validated for shape by ajv, then re-read strictly: floats anywhere in the room's
        // initial content would make events that cannot be hashed.
        const body = createRoomBody(strictContent(req));
        return rooms.createRoom(requester(req).userId, body);
      },
    },
  });

  // Guests (spec "Guest access") may join rooms whose guest_access is can_join, leave, read, and
  // send m.room.message; the rooms service checks the room's setting.
  routes.client('/join/:roomIdOrAlias', {
    POST: {
      guests: true,
      body: reasonBody,
      handler: async (req) => ({
        room_id: await rooms.join(requester(req).userId, param(req, 'roomIdOrAlias'), req.body.reason, { guest: requester(req).isGuest }),
      }),
    },
  });
  routes.client('/knock/:roomIdOrAlias', {
    POST: {
      body: reasonBody,
      handler: async (req) => ({ room_id: await rooms.knock(requester(req).userId, param(req, 'roomIdOrAlias'), req.body.reason) }),
    },
  });
  routes.client('/rooms/:roomId/join', {
    POST: {
      guests: true,
      body: reasonBody,
      handler: async (req) => ({ room_id: await rooms.join(requester(req).userId, roomIdParam(req), req.body.reason, { guest: requester(req).isGuest }) }),
    },
  });
  routes.client('/rooms/:roomId/leave', {
    POST: {
      guests: true,
      body: reasonBody,
      handler: async (req) => {
        const userId = requester(req).userId;
        await rooms.changeMembership(userId, roomIdParam(req), userId, 'leave', req.body.reason);
        return {};
      },
    },
  });
  routes.client('/rooms/:roomId/forget', {
    POST: {
      handler: async (req) => {
        await rooms.forget(requester(req).userId, roomIdParam(req));
        return {};
      },
    },
  });
  for (const action of ['invite', 'kick', 'ban', 'unban'] as const) {
    routes.client(`/rooms/:roomId/${action}`, {
      POST: {
        body: targetBody,
        handler: async (req) => {
          const body = req.body as { user_id: string; reason?: string };
          await rooms.changeMembership(requester(req).userId, roomIdParam(req), body.user_id, action, body.reason);
          return {};
        },
      },
    });
  }

  routes.client('/rooms/:roomId/send/:eventType/:txnId', {
    PUT: {
      guests: true,
      rateLimit: 'message',
      handler: async (req) => {
        const r = requester(req);
        if (r.isGuest && eventTypeParam(req) !== 'm.room.message') {
          throw new MatrixError('M_GUEST_ACCESS_FORBIDDEN', 'Guests may only send m.room.message events');
        }
        const eventId = await rooms.sendMessage(r, roomIdParam(req), eventTypeParam(req), strictContent(req), param(req, 'txnId'));
        return { event_id: eventId };
      },
    },
  });

  routes.client('/rooms/:roomId/state/:eventType{/:stateKey}', {
    GET: {
      guests: true,
      handler: (req) => {
        const format = query(req, 'format') === 'event' ? 'event' : 'content';
        return rooms.getStateEvent(requester(req), roomIdParam(req), eventTypeParam(req), param(req, 'stateKey'), format);
      },
    },
    PUT: {
      rateLimit: 'message',
      handler: async (req) => {
        const eventId = await rooms.sendState(requester(req), roomIdParam(req), eventTypeParam(req), param(req, 'stateKey'), strictContent(req));
        return { event_id: eventId };
      },
    },
  });

  routes.client('/rooms/:roomId/redact/:eventId/:txnId', {
    PUT: {
      rateLimit: 'message',
      handler: async (req) => {
        const body = reasonBody(strictContent(req));
        const eventId = await rooms.redact(requester(req), roomIdParam(req), param(req, 'eventId'), param(req, 'txnId'), body.reason);
        return { event_id: eventId };
      },
    },
  });

  routes.client('/rooms/:roomId/event/:eventId', {
    GET: { guests: true, handler: (req) => rooms.getEvent(requester(req), roomIdParam(req), param(req, 'eventId')) },
  });
  routes.client('/rooms/:roomId/state', {
    GET: { guests: true, handler: (req) => rooms.getState(requester(req), roomIdParam(req)) },
  });
  routes.client('/rooms/:roomId/members', {
    GET: {
      guests: true,
      handler: async (req) => {
        const q: { at?: string; membership?: string; not_membership?: string } = {};
        for (const k of ['at', 'membership', 'not_membership'] as const) {
          const v = query(req, k);
          if (v !== undefined) q[k] = v;
        }
        return { chunk: await rooms.getMembers(requester(req), roomIdParam(req), q) };
      },
    },
  });
  routes.client('/rooms/:roomId/joined_members', {
    GET: { handler: async (req) => ({ joined: await rooms.getJoinedMembers(requester(req), roomIdParam(req)) }) },
  });
  routes.client('/joined_rooms', {
    GET: { handler: async (req) => ({ joined_rooms: await rooms.joinedRooms(requester(req).userId) }) },
  });
}
