// Discovery: /.well-known, /versions, /capabilities, and the auth_metadata probe.
import type { PratConfig } from '../config/schema.js';
import { MatrixError } from '../http/errors.js';
import type { RouteTable } from '../http/routes.js';
import { ROOM_VERSIONS } from '../core/room-versions.js';

/**
 * Spec versions whose features Prat really serves. Add a version only when everything it
 * brings works: clients switch behaviour on this list (v1.11 turns on authenticated media).
 */
export const SUPPORTED_SPEC_VERSIONS = ['r0.0.1', 'r0.1.0', 'r0.2.0', 'r0.3.0', 'r0.4.0', 'r0.5.0', 'r0.6.0', 'r0.6.1', 'v1.1', 'v1.11'];

export const UNSTABLE_FEATURES: Record<string, boolean> = {};

export function registerDiscoveryRoutes(routes: RouteTable, config: PratConfig, versions: { spec: string[] }): void {
  routes.add('/.well-known/matrix/client', {
    GET: {
      auth: 'none',
      handler: () => ({
        ...config.well_known.client_extra,
        // MatrixRTC (MSC4143): where Element Call finds its SFU; unstable prefix until stable.
        ...(config.well_known.rtc_foci ? { 'org.matrix.msc4143.rtc_foci': config.well_known.rtc_foci } : {}),
        'm.homeserver': { base_url: config.public_baseurl.replace(/\/$/, '') },
      }),
    },
  });
  routes.add('/.well-known/matrix/server', {
    GET: {
      auth: 'none',
      handler: () => {
        if (!config.well_known.server) throw new MatrixError('M_NOT_FOUND', 'No server delegation is configured');
        return { 'm.server': config.well_known.server };
      },
    },
  });
  routes.add('/_matrix/client/versions', {
    GET: { auth: 'optional', guests: true, handler: () => ({ versions: versions.spec, unstable_features: UNSTABLE_FEATURES }) },
  });
  routes.client('/capabilities', {
    GET: {
      guests: true,
      handler: () => ({
        capabilities: {
          'm.change_password': { enabled: true },
          'm.room_versions': {
            default: config.rooms.default_room_version,
            available: Object.fromEntries([...ROOM_VERSIONS.values()].map((v) => [v.id, v.stable ? 'stable' : 'unstable'])),
          },
          'm.set_displayname': { enabled: true },
          'm.set_avatar_url': { enabled: true },
          'm.3pid_changes': { enabled: false },
          'm.get_login_token': { enabled: false },
        },
      }),
    },
  });
  // No OAuth 2.0 server here: a 404 M_UNRECOGNIZED makes clients fall back to password login.
  routes.clientV1('/auth_metadata', {
    GET: { auth: 'none', handler: () => { throw new MatrixError('M_UNRECOGNIZED', 'OAuth 2.0 is not supported'); } },
  });
}
