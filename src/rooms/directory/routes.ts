// Client API endpoints of aliases and the public room directory. Thin: validate, call once.
import type { Request } from 'express';
import { MatrixError } from '../../http/errors.js';
import type { RouteTable } from '../../http/routes.js';
import { requester } from '../../http/types.js';
import { compileBody } from '../../http/validate.js';
import type { RoomService } from '../service.js';
import * as directory from './service.js';
import { pathParam as param, queryParam as query, roomIdParam } from '../../http/params.js';

const aliasBody = compileBody<{ room_id: string }>(
  { type: 'object', required: ['room_id'], properties: { room_id: { type: 'string', pattern: '^!' } } },
  { missingErrcode: 'M_MISSING_PARAM' },
);
const visibilityBody = compileBody<{ visibility?: 'public' | 'private' }>({
  type: 'object',
  properties: { visibility: { enum: ['public', 'private'] } },
});
const publicRoomsBody = compileBody<directory.PublicRoomsRequest & { include_all_networks?: boolean; third_party_instance_id?: string }>({
  type: 'object',
  properties: {
    limit: { type: 'integer', minimum: 0 },
    since: { type: 'string' },
    server: { type: 'string' },
    include_all_networks: { type: 'boolean' },
    third_party_instance_id: { type: 'string' },
    filter: {
      type: 'object',
      properties: {
        generic_search_term: { type: 'string' },
        room_types: { type: 'array', items: { type: ['string', 'null'] } },
      },
    },
  },
});

export function registerDirectoryRoutes(routes: RouteTable, rooms: RoomService): void {
  const d = rooms.deps;
  routes.client('/directory/room/:roomAlias', {
    GET: { auth: 'optional', guests: true, handler: (req) => directory.resolveAlias(d, param(req, 'roomAlias')) },
    PUT: {
      body: aliasBody,
      handler: async (req) => {
        await directory.createAlias(d, requester(req), param(req, 'roomAlias'), (req.body as { room_id: string }).room_id);
        return {};
      },
    },
    DELETE: {
      handler: async (req) => {
        await directory.deleteAlias(d, requester(req), param(req, 'roomAlias'));
        return {};
      },
    },
  });
  routes.client('/rooms/:roomId/aliases', {
    GET: { handler: (req) => directory.roomAliases(d, requester(req), roomIdParam(req)) },
  });
  routes.client('/directory/list/room/:roomId', {
    GET: { auth: 'none', handler: (req) => directory.getDirectoryVisibility(d, roomIdParam(req)) },
    PUT: {
      body: visibilityBody,
      handler: async (req) => {
        const v = (req.body as { visibility?: 'public' | 'private' }).visibility ?? 'public';
        await directory.setDirectoryVisibility(d, requester(req), roomIdParam(req), v);
        return {};
      },
    },
  });
  routes.client('/publicRooms', {
    GET: {
      auth: 'optional',
      guests: true,
      handler: (req) => {
        const limit = query(req, 'limit');
        if (limit !== undefined && !/^\d{1,9}$/.test(limit)) throw new MatrixError('M_INVALID_PARAM', "'limit' must be a non-negative integer");
        const since = query(req, 'since');
        const server = query(req, 'server');
        return directory.publicRooms(d, {
          ...(limit !== undefined ? { limit: Number(limit) } : {}),
          ...(since !== undefined ? { since } : {}),
          ...(server !== undefined ? { server } : {}),
        });
      },
    },
    POST: {
      body: publicRoomsBody,
      handler: (req) => {
        const server = query(req, 'server');
        return directory.publicRooms(d, { ...(req.body as directory.PublicRoomsRequest), ...(server !== undefined ? { server } : {}) });
      },
    },
  });
}
