// Answers Element asks for at start-up that Prat has nothing behind: the spec's empty answers,
// so the client carries on instead of showing errors.
import { MatrixError } from '../http/errors.js';
import type { RouteTable } from '../http/routes.js';

export function registerStartupRoutes(routes: RouteTable): void {
  // No third-party network bridges (appservices) are registered: no protocols.
  routes.client('/thirdparty/protocols', { GET: { handler: () => ({}) } });
  // No third-party identifiers (3PID changes are off in /capabilities).
  routes.client('/account/3pid', { GET: { handler: () => ({ threepids: [] }) } });
  // No SSO: /login lists only m.login.password; a redirect is answered as an unknown endpoint.
  const noSso = {
    GET: {
      auth: 'none' as const,
      handler: () => {
        throw new MatrixError('M_UNRECOGNIZED', 'Single sign-on is not supported');
      },
    },
  };
  routes.client('/login/sso/redirect', noSso);
  routes.client('/login/sso/redirect/:idpId', noSso);
}
