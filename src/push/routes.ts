// Client API endpoints of push rules, notifications and pushers.
import { MatrixError } from '../http/errors.js';
import type { RouteTable } from '../http/routes.js';
import { requester } from '../http/types.js';
import { compileBody } from '../http/validate.js';
import { parseKind, forClients, type PushService, type NewRule } from './service.js';
import type { NotificationsService } from './notifications.js';
import type { PusherService, SetPusherBody } from './pushers.js';

const ruleBody = compileBody<NewRule>(
  {
    type: 'object',
    required: ['actions'],
    properties: { actions: { type: 'array', maxItems: 100 }, conditions: { type: 'array', maxItems: 100 }, pattern: { type: 'string' } },
  },
  { missingErrcode: 'M_MISSING_PARAM' },
);
const enabledBody = compileBody<{ enabled: boolean }>(
  { type: 'object', required: ['enabled'], properties: { enabled: { type: 'boolean' } } },
  { missingErrcode: 'M_MISSING_PARAM' },
);
const actionsBody = compileBody<{ actions: unknown[] }>(
  { type: 'object', required: ['actions'], properties: { actions: { type: 'array', maxItems: 100 } } },
  { missingErrcode: 'M_MISSING_PARAM' },
);

// kind null deletes; the other fields are required only to create or update (checked in the
// service, M_MISSING_PARAM as Synapse).
const pusherBody = compileBody<SetPusherBody>(
  {
    type: 'object',
    required: ['kind', 'app_id', 'pushkey'],
    properties: {
      kind: { type: ['string', 'null'] },
      app_id: { type: 'string', minLength: 1 },
      pushkey: { type: 'string', minLength: 1 },
      app_display_name: { type: 'string' },
      device_display_name: { type: 'string' },
      profile_tag: { type: 'string' },
      lang: { type: 'string' },
      data: { type: 'object' },
      append: { type: 'boolean' },
    },
  },
  { missingErrcode: 'M_MISSING_PARAM' },
);

function scope(s: string): void {
  if (s !== 'global') throw new MatrixError('M_INVALID_PARAM', "The only push rule scope is 'global'");
}

const param = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

export function registerPushRoutes(routes: RouteTable, push: PushService, notifications: NotificationsService, pushers: PusherService): void {
  routes.client('/pushers', {
    GET: { handler: async (req) => ({ pushers: await pushers.list(requester(req).userId) }) },
  });
  routes.client('/pushers/set', {
    POST: {
      body: pusherBody,
      handler: async (req) => {
        const r = requester(req);
        await pushers.set(r.userId, r.deviceId, req.body as SetPusherBody);
        return {};
      },
    },
  });
  routes.client('/pushrules/', {
    GET: { handler: async (req) => push.pushRulesContent(push.dbForReads, requester(req).userId) },
  });
  routes.client('/pushrules/:scope/', {
    GET: {
      handler: async (req) => {
        scope(String(req.params['scope']));
        return forClients(await push.ruleset(push.dbForReads, requester(req).userId));
      },
    },
  });
  routes.client('/pushrules/:scope/:kind/', {
    GET: {
      handler: async (req) => {
        scope(String(req.params['scope']));
        const kind = parseKind(String(req.params['kind']));
        return forClients(await push.ruleset(push.dbForReads, requester(req).userId))[kind];
      },
    },
  });
  routes.client('/pushrules/:scope/:kind/:ruleId', {
    GET: {
      handler: async (req) => {
        scope(String(req.params['scope']));
        return push.getRule(requester(req).userId, parseKind(String(req.params['kind'])), String(req.params['ruleId']));
      },
    },
    PUT: {
      body: ruleBody,
      handler: async (req) => {
        scope(String(req.params['scope']));
        await push.putRule(
          requester(req).userId,
          parseKind(String(req.params['kind'])),
          String(req.params['ruleId']),
          req.body as NewRule,
          param(req.query['before']),
          param(req.query['after']),
        );
        return {};
      },
    },
    DELETE: {
      handler: async (req) => {
        scope(String(req.params['scope']));
        await push.deleteRule(requester(req).userId, parseKind(String(req.params['kind'])), String(req.params['ruleId']));
        return {};
      },
    },
  });
  routes.client('/pushrules/:scope/:kind/:ruleId/enabled', {
    GET: {
      handler: async (req) => {
        scope(String(req.params['scope']));
        const r = await push.getRule(requester(req).userId, parseKind(String(req.params['kind'])), String(req.params['ruleId']));
        return { enabled: r.enabled };
      },
    },
    PUT: {
      body: enabledBody,
      handler: async (req) => {
        scope(String(req.params['scope']));
        await push.setEnabled(requester(req).userId, parseKind(String(req.params['kind'])), String(req.params['ruleId']), (req.body as { enabled: boolean }).enabled);
        return {};
      },
    },
  });
  routes.client('/pushrules/:scope/:kind/:ruleId/actions', {
    GET: {
      handler: async (req) => {
        scope(String(req.params['scope']));
        const r = await push.getRule(requester(req).userId, parseKind(String(req.params['kind'])), String(req.params['ruleId']));
        return { actions: r.actions };
      },
    },
    PUT: {
      body: actionsBody,
      handler: async (req) => {
        scope(String(req.params['scope']));
        await push.setActions(requester(req).userId, parseKind(String(req.params['kind'])), String(req.params['ruleId']), (req.body as { actions: unknown[] }).actions);
        return {};
      },
    },
  });
  routes.client('/notifications', {
    GET: {
      handler: async (req) => {
        const from = param(req.query['from']);
        const limitText = param(req.query['limit']);
        const only = param(req.query['only']);
        let limit = 20;
        if (limitText !== undefined) {
          if (!/^\d{1,6}$/.test(limitText)) throw new MatrixError('M_INVALID_PARAM', "'limit' must be a non-negative integer");
          limit = Math.min(Number(limitText), 100);
        }
        let before: number | null = null;
        if (from !== undefined) {
          if (!/^\d{1,16}$/.test(from)) throw new MatrixError('M_INVALID_PARAM', "Invalid 'from' token");
          before = Number(from);
        }
        return notifications.list(requester(req).userId, before, only === 'highlight', limit);
      },
    },
  });
}
