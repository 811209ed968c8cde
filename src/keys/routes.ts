// Client API endpoints of E2EE: keys, cross-signing, key backup and send-to-device. Thin:
// validate the body's shape, call one service method.
import type { Request } from 'express';
import { uiaRequest } from '../accounts/routes.js';
import { MatrixError } from '../http/errors.js';
import type { RouteTable } from '../http/routes.js';
import { requester } from '../http/types.js';
import { compileBody } from '../http/validate.js';
import type { BackupService, KeyBackupData, RoomsBackup } from './backup.js';
import type { CrossSigningService, DeviceSigningBody } from './cross-signing.js';
import type { KeysService, UploadBody } from './service.js';
import type { ToDeviceService } from './to-device.js';
import type { Json } from './key-json.js';

const obj = { type: 'object' } as const;
const str = { type: 'string' } as const;
const missing = { missingErrcode: 'M_MISSING_PARAM' };

// Key objects are checked field by field in the service (key-json.ts), with messages naming the
// offending key id; here only the top-level shape.
const uploadBody = compileBody<UploadBody>({
  type: 'object',
  properties: { device_keys: obj, one_time_keys: obj, fallback_keys: obj },
});
const queryBody = compileBody<{ device_keys: Record<string, string[]>; timeout?: number }>(
  {
    type: 'object',
    required: ['device_keys'],
    properties: {
      device_keys: { type: 'object', additionalProperties: { type: 'array', items: str } },
      timeout: { type: 'integer' },
    },
  },
  missing,
);
const claimBody = compileBody<{ one_time_keys: Record<string, Record<string, string>>; timeout?: number }>(
  {
    type: 'object',
    required: ['one_time_keys'],
    properties: {
      one_time_keys: { type: 'object', additionalProperties: { type: 'object', additionalProperties: str } },
      timeout: { type: 'integer' },
    },
  },
  missing,
);
const deviceSigningBody = compileBody<DeviceSigningBody & { auth?: Json }>({
  type: 'object',
  properties: { master_key: obj, self_signing_key: obj, user_signing_key: obj, auth: obj },
});
const signaturesBody = compileBody<Record<string, Record<string, Json>>>({
  type: 'object',
  additionalProperties: { type: 'object', additionalProperties: obj },
});
const backupVersionBody = compileBody<{ algorithm: string; auth_data: Json; version?: string }>(
  { type: 'object', required: ['algorithm', 'auth_data'], properties: { algorithm: { type: 'string', minLength: 1 }, auth_data: obj, version: str } },
  missing,
);
const keyBackupData = {
  type: 'object',
  required: ['first_message_index', 'forwarded_count', 'is_verified', 'session_data'],
  properties: {
    first_message_index: { type: 'integer', minimum: 0 },
    forwarded_count: { type: 'integer', minimum: 0 },
    is_verified: { type: 'boolean' },
    session_data: obj,
  },
} as const;
const roomBackup = { type: 'object', required: ['sessions'], properties: { sessions: { type: 'object', additionalProperties: keyBackupData } } } as const;
const sessionBody = compileBody<KeyBackupData>(keyBackupData, missing);
const roomBody = compileBody<{ sessions: Record<string, KeyBackupData> }>(roomBackup, missing);
const roomsBody = compileBody<{ rooms: RoomsBackup }>(
  { type: 'object', required: ['rooms'], properties: { rooms: { type: 'object', additionalProperties: roomBackup } } },
  missing,
);
const sendToDeviceBody = compileBody<{ messages: Record<string, unknown> }>(
  { type: 'object', required: ['messages'], properties: { messages: { type: 'object', additionalProperties: obj } } },
  missing,
);

function queryParam(req: Request, name: string): string {
  const v = req.query[name];
  if (typeof v !== 'string' || v.length === 0) throw new MatrixError('M_MISSING_PARAM', `Missing '${name}' query parameter`);
  return v;
}

const param = (req: Request, name: string) => String(req.params[name]);

export function registerE2eeRoutes(
  routes: RouteTable,
  s: { keys: KeysService; crossSigning: CrossSigningService; backup: BackupService; toDevice: ToDeviceService },
): void {
  // Guests may use E2EE like anyone (the spec's guest list; Synapse allows it too).
  routes.client('/keys/upload', {
    POST: { guests: true, body: uploadBody, handler: (req) => s.keys.upload(requester(req), req.body as UploadBody) },
  });
  routes.client('/keys/query', {
    POST: {
      guests: true,
      body: queryBody,
      handler: (req) => s.keys.query(requester(req), (req.body as ReturnType<typeof queryBody>).device_keys),
    },
  });
  routes.client('/keys/claim', {
    POST: { guests: true, body: claimBody, handler: (req) => s.keys.claim((req.body as ReturnType<typeof claimBody>).one_time_keys) },
  });
  routes.client('/keys/changes', {
    GET: {
      guests: true,
      handler: async (req) => {
        const from = queryParam(req, 'from');
        // `to` is required by the spec but only a bound: without one, up to now (as Synapse).
        const to = typeof req.query['to'] === 'string' && req.query['to'] !== '' ? req.query['to'] : undefined;
        return s.keys.changes(requester(req), from, to);
      },
    },
  });
  routes.client('/keys/device_signing/upload', {
    POST: {
      body: deviceSigningBody,
      handler: async (req) => {
        await s.crossSigning.uploadSigningKeys(requester(req), uiaRequest(req), req.body as DeviceSigningBody);
        return {};
      },
    },
  });
  routes.client('/keys/signatures/upload', {
    POST: { body: signaturesBody, handler: (req) => s.crossSigning.uploadSignatures(requester(req), req.body as Record<string, unknown>) },
  });

  routes.client('/room_keys/version', {
    POST: {
      body: backupVersionBody,
      handler: (req) => {
        const body = req.body as ReturnType<typeof backupVersionBody>;
        return s.backup.createVersion(requester(req).userId, body.algorithm, body.auth_data);
      },
    },
    GET: { handler: (req) => s.backup.getVersion(requester(req).userId) },
  });
  routes.client('/room_keys/version/:version', {
    GET: { handler: (req) => s.backup.getVersion(requester(req).userId, param(req, 'version')) },
    PUT: {
      body: backupVersionBody,
      handler: async (req) => {
        await s.backup.updateVersion(requester(req).userId, param(req, 'version'), req.body as ReturnType<typeof backupVersionBody>);
        return {};
      },
    },
    DELETE: {
      handler: async (req) => {
        await s.backup.deleteVersion(requester(req).userId, param(req, 'version'));
        return {};
      },
    },
  });
  routes.client('/room_keys/keys', {
    GET: { handler: (req) => s.backup.getKeys(requester(req).userId, queryParam(req, 'version')) },
    PUT: {
      body: roomsBody,
      handler: (req) => s.backup.putKeys(requester(req).userId, queryParam(req, 'version'), (req.body as ReturnType<typeof roomsBody>).rooms),
    },
    DELETE: { handler: (req) => s.backup.deleteKeys(requester(req).userId, queryParam(req, 'version')) },
  });
  routes.client('/room_keys/keys/:roomId', {
    GET: { handler: (req) => s.backup.getKeys(requester(req).userId, queryParam(req, 'version'), param(req, 'roomId')) },
    PUT: {
      body: roomBody,
      handler: (req) =>
        s.backup.putKeys(requester(req).userId, queryParam(req, 'version'), { [param(req, 'roomId')]: req.body as ReturnType<typeof roomBody> }),
    },
    DELETE: { handler: (req) => s.backup.deleteKeys(requester(req).userId, queryParam(req, 'version'), param(req, 'roomId')) },
  });
  routes.client('/room_keys/keys/:roomId/:sessionId', {
    GET: {
      handler: (req) => s.backup.getKeys(requester(req).userId, queryParam(req, 'version'), param(req, 'roomId'), param(req, 'sessionId')),
    },
    PUT: {
      body: sessionBody,
      handler: (req) =>
        s.backup.putKeys(requester(req).userId, queryParam(req, 'version'), {
          [param(req, 'roomId')]: { sessions: { [param(req, 'sessionId')]: req.body as KeyBackupData } },
        }),
    },
    DELETE: {
      handler: (req) =>
        s.backup.deleteKeys(requester(req).userId, queryParam(req, 'version'), param(req, 'roomId'), param(req, 'sessionId')),
    },
  });

  routes.client('/sendToDevice/:eventType/:txnId', {
    PUT: {
      guests: true,
      body: sendToDeviceBody,
      handler: async (req) => {
        const body = req.body as ReturnType<typeof sendToDeviceBody>;
        await s.toDevice.send(requester(req), param(req, 'eventType'), param(req, 'txnId'), body.messages);
        return {};
      },
    },
  });
}
