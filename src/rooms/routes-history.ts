// Client API endpoints of room history: /messages, /context, /relations, /threads,
// /timestamp_to_event. Thin: read the parameters, call the history module once.
import type { Request } from 'express';
import { MatrixError } from '../http/errors.js';
import type { RouteTable } from '../http/routes.js';
import { requester } from '../http/types.js';
import { getContext, getMessages } from './history.js';
import { getRelations, getThreads, timestampToEvent } from './relations.js';
import type { RoomService } from './service.js';
import { pathParam as param, roomIdParam, queryParams as queryOf } from '../http/params.js';

export function registerHistoryRoutes(routes: RouteTable, rooms: RoomService): void {
  const d = rooms.deps;
  routes.client('/rooms/:roomId/messages', {
    GET: {
      guests: true,
      handler: (req) => getMessages(d, requester(req), roomIdParam(req), queryOf(req, ['from', 'to', 'dir', 'limit', 'filter'] as const)),
    },
  });
  routes.client('/rooms/:roomId/context/:eventId', {
    GET: {
      guests: true,
      handler: (req) => getContext(d, requester(req), roomIdParam(req), param(req, 'eventId'), queryOf(req, ['limit', 'filter'] as const)),
    },
  });
  routes.clientV1('/rooms/:roomId/relations/:eventId{/:relType}{/:eventType}', {
    GET: {
      guests: true,
      handler: (req) => {
        const relType = req.params['relType'];
        const eventType = req.params['eventType'];
        return getRelations(d, requester(req), roomIdParam(req), param(req, 'eventId'), {
          ...queryOf(req, ['from', 'to', 'limit', 'dir', 'recurse'] as const),
          ...(typeof relType === 'string' ? { relType } : {}),
          ...(typeof eventType === 'string' ? { eventType } : {}),
        });
      },
    },
  });
  routes.clientV1('/rooms/:roomId/threads', {
    GET: { handler: (req) => getThreads(d, requester(req), roomIdParam(req), queryOf(req, ['include', 'from', 'limit'] as const)) },
  });
  routes.clientV1('/rooms/:roomId/timestamp_to_event', {
    GET: { handler: (req) => timestampToEvent(d, requester(req), roomIdParam(req), queryOf(req, ['ts', 'dir'] as const)) },
  });
}
