// Client API endpoints for calls: TURN credentials.
import type { PratConfig } from '../config/schema.js';
import type { RouteTable } from '../http/routes.js';
import { requester } from '../http/types.js';
import { turnServerResponse } from './turn.js';

export function registerVoipRoutes(routes: RouteTable, config: PratConfig): void {
  routes.client('/voip/turnServer', {
    GET: { guests: true, handler: (req) => turnServerResponse(config.turn, requester(req)) },
  });
}
