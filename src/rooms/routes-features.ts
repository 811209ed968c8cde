// Client API endpoints of room upgrades, spaces (hierarchy), room summaries and reports, and
// the admin listing of reports. Thin: validate, call the module once.
import type { Request } from 'express';
import type { AccountService } from '../accounts/service.js';
import { requireAdmin } from '../admin/routes.js';
import { MatrixError } from '../http/errors.js';
import type { RouteTable } from '../http/routes.js';
import { requester } from '../http/types.js';
import { compileBody } from '../http/validate.js';
import { getHierarchy, getRoomSummary } from './hierarchy.js';
import { deleteReport, getReport, listReports, reportEvent, reportRoom, type ReportBody } from './reports.js';
import type { RoomService } from './service.js';
import { upgradeRoom } from './upgrade.js';
import { pathParam as param, roomIdParam, queryParams as queryOf } from '../http/params.js';

const upgradeBody = compileBody<{ new_version: string; additional_creators?: string[] }>(
  {
    type: 'object',
    required: ['new_version'],
    properties: { new_version: { type: 'string', minLength: 1 }, additional_creators: { type: 'array', items: { type: 'string' }, maxItems: 100 } },
  },
  { missingErrcode: 'M_MISSING_PARAM' },
);
const reportBody = compileBody<ReportBody>({
  type: 'object',
  properties: { reason: { type: 'string', maxLength: 10000 }, score: { type: 'integer', minimum: -100, maximum: 0 } },
});

export function registerRoomFeatureRoutes(routes: RouteTable, rooms: RoomService): void {
  const d = rooms.deps;
  routes.client('/rooms/:roomId/upgrade', {
    POST: { body: upgradeBody, handler: (req) => upgradeRoom(d, requester(req), roomIdParam(req), req.body as { new_version: string; additional_creators?: string[] }) },
  });
  routes.clientV1('/rooms/:roomId/hierarchy', {
    GET: {
      handler: (req) => getHierarchy(d, requester(req).userId, roomIdParam(req), queryOf(req, ['from', 'limit', 'max_depth', 'suggested_only'] as const)),
    },
  });
  // The stable path (spec v1.15) and the unstable ones clients used before (MSC3266).
  const summary = {
    GET: { auth: 'optional' as const, guests: true, handler: (req: Request) => getRoomSummary(d, req.requester?.userId ?? null, param(req, 'roomIdOrAlias')) },
  };
  routes.clientV1('/room_summary/:roomIdOrAlias', summary);
  // The unstable paths also carry the prefixed names clients of MSC3266 read (nheko, older
  // matrix-js-sdk): im.nheko.summary.room_version (and its older .version) and .encryption.
  const unstable = {
    GET: {
      ...summary.GET,
      handler: async (req: Request) => {
        const s = await summary.GET.handler(req);
        return {
          ...s,
          'im.nheko.summary.room_version': s.room_version,
          'im.nheko.summary.version': s.room_version,
          ...(s.encryption !== undefined ? { 'im.nheko.summary.encryption': s.encryption } : {}),
        };
      },
    },
  };
  routes.add('/_matrix/client/unstable/im.nheko.summary/summary/:roomIdOrAlias', unstable);
  routes.add('/_matrix/client/unstable/im.nheko.summary/rooms/:roomIdOrAlias/summary', unstable);
  routes.client('/rooms/:roomId/report/:eventId', {
    POST: {
      body: reportBody,
      handler: async (req) => {
        await reportEvent(d, requester(req), roomIdParam(req), param(req, 'eventId'), req.body as ReportBody);
        return {};
      },
    },
  });
  routes.client('/rooms/:roomId/report', {
    POST: {
      body: reportBody,
      handler: async (req) => {
        await reportRoom(d, requester(req), roomIdParam(req), req.body as ReportBody);
        return {};
      },
    },
  });
}

export function registerReportAdminRoutes(routes: RouteTable, rooms: RoomService, accounts: AccountService): void {
  routes.add('/_synapse/admin/v1/event_reports', {
    GET: {
      handler: async (req) => {
        await requireAdmin(accounts, requester(req).userId);
        return listReports(rooms.deps, queryOf(req, ['from', 'limit', 'dir', 'user_id', 'room_id'] as const));
      },
    },
  });
  routes.add('/_synapse/admin/v1/event_reports/:reportId', {
    GET: {
      handler: async (req) => {
        await requireAdmin(accounts, requester(req).userId);
        return getReport(rooms.deps, param(req, 'reportId'));
      },
    },
    DELETE: {
      handler: async (req) => {
        await requireAdmin(accounts, requester(req).userId);
        await deleteReport(rooms.deps, param(req, 'reportId'));
        return {};
      },
    },
  });
}
