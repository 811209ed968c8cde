// OpenID endpoints: the client side issues tokens, the federation side answers whose they are.
import type { RouteTable } from '../http/routes.js';
import { requester } from '../http/types.js';
import { compileBody } from '../http/validate.js';
import type { OpenIdService } from './service.js';

const emptyBody = compileBody<Record<string, unknown>>({ type: 'object' });

export function registerOpenIdClientRoutes(routes: RouteTable, openid: OpenIdService): void {
  routes.client('/user/:userId/openid/request_token', {
    POST: { body: emptyBody, handler: (req) => openid.requestToken(requester(req), String(req.params['userId'])) },
  });
}

export function registerOpenIdFederationRoutes(routes: RouteTable, openid: OpenIdService): void {
  routes.add('/_matrix/federation/v1/openid/userinfo', {
    // No X-Matrix auth: the caller is any third party holding the token.
    GET: {
      auth: 'none',
      handler: (req) => {
        const token = req.query['access_token'];
        return openid.userInfo(typeof token === 'string' ? token : undefined);
      },
    },
  });
}
