// The express app of one listener: common middleware (request ids and logs, CORS, raw body
// with a size limit), the routers of the resources this listener serves, then 404 and errors.
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import express, { type NextFunction, type Request, type Response } from 'express';
import type { Logger } from '../logger.js';
import { MatrixError } from './errors.js';
import { RouteTable, type RouteDeps } from './routes.js';
import './types.js';

export interface AppOptions {
  log: Logger;
  maxBodySize: number;
  deps: RouteDeps;
  /** Registers the routes of each resource this listener serves. */
  mount(routes: RouteTable, router: express.Router): void;
}

function cors(req: Request, res: Response, next: NextFunction): void {
  res.setHeader('Access-Control-Allow-Origin', '*');
  res.setHeader('Access-Control-Allow-Methods', 'GET, HEAD, POST, PUT, DELETE, OPTIONS');
  res.setHeader('Access-Control-Allow-Headers', 'X-Requested-With, Content-Type, Authorization, Date');
  res.setHeader('Access-Control-Expose-Headers', 'Synapse-Trace-Id, Server, ETag');
  if (req.method === 'OPTIONS') {
    res.status(204).end();
    return;
  }
  next();
}

/** A 4xx error raised by express or its middleware (http-errors carry `expose` and `status`). */
function isClientHttpError(err: unknown): err is { status: number } {
  const e = err as { status?: unknown; expose?: unknown } | null;
  return typeof e?.status === 'number' && e.status >= 400 && e.status < 500 && e.expose === true;
}

// Request ids: unique per process start (a random prefix) without a syscall per request.
const REQUEST_ID_PREFIX = randomBytes(3).toString('hex');
let requestCount = 0;

/**
 * The request and response classes of Node's servers for `app`. Express gives every request and
 * response its prototypes (app.request, app.response) with Object.setPrototypeOf, and in V8 an
 * object whose prototype was changed gets a hidden class of its own at every property added
 * after: each request and response had its own, about 3 KB of them per request (a heap snapshot
 * of 1,000 idle long-polls held 3,000 descriptor arrays), and every property access on them went
 * megamorphic. Here app.request and app.response become the prototypes of subclasses of Node's
 * classes (with the same prototype chain and own properties), so they are born with them,
 * express's change is a no-op and they share their hidden classes. (A function constructor
 * with express's prototype would leave them in dictionary mode: V8 sizes its objects for the
 * properties its own body assigns, none.) Once per app: every server of it uses the same.
 */
export function serverClassesFor(app: express.Express): ServerClasses {
  const known = serverClasses.get(app);
  if (known) return known;
  class AppRequest extends http.IncomingMessage {}
  class AppResponse extends http.ServerResponse {}
  rootUnder(AppRequest.prototype, app.request);
  rootUnder(AppResponse.prototype, app.response);
  app.request = AppRequest.prototype as unknown as typeof app.request;
  app.response = AppResponse.prototype as unknown as typeof app.response;
  const classes: ServerClasses = { IncomingMessage: AppRequest, ServerResponse: AppResponse as typeof http.ServerResponse };
  serverClasses.set(app, classes);
  return classes;
}
type ServerClasses = Pick<http.ServerOptions, 'IncomingMessage' | 'ServerResponse'>;
const serverClasses = new WeakMap<express.Express, ServerClasses>();

/** `target` takes `proto`'s place: its prototype, and its own properties. */
function rootUnder(target: object, proto: object): void {
  Object.setPrototypeOf(target, Object.getPrototypeOf(proto));
  Object.defineProperties(target, Object.getOwnPropertyDescriptors(proto));
}

export function createApp(opts: AppOptions): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.set('query parser', 'simple');

  app.use((req, res, next) => {
    req.id = `${REQUEST_ID_PREFIX}${(++requestCount).toString(36)}`;
    // The request log is at info level: below it, no listener (one per request) is needed.
    if (!opts.log.isLevelEnabled('info')) return next();
    const started = performance.now();
    res.on('finish', () => {
      // The route pattern, not the URL: the URL may hold an access token or personal data.
      const pattern = req.route ? (Array.isArray(req.route.path) ? req.route.path[0] : req.route.path) : undefined;
      const route = pattern !== undefined ? `${req.baseUrl}${String(pattern)}` : undefined;
      opts.log.info(
        {
          reqId: req.id,
          method: req.method,
          route: route ?? req.path,
          status: res.statusCode,
          ms: +(performance.now() - started).toFixed(2),
        },
        'request',
      );
    });
    next();
  });
  app.use(cors);

  const router = express.Router({ strict: false });
  const raw = express.raw({ type: () => true, limit: opts.maxBodySize });
  // Media uploads stream their bodies themselves; everything else is buffered (bounded) here.
  router.use((req, res, next) => {
    if (req.path.startsWith('/_matrix/media/')) return next();
    raw(req, res, (err?: unknown) => {
      if (err) return next(err);
      if (Buffer.isBuffer(req.body)) req.rawBody = req.body;
      req.body = undefined;
      next();
    });
  });
  opts.mount(new RouteTable(router, opts.deps, () => express.Router({ strict: false })), router);
  app.use(router);

  app.use((_req: Request, _res: Response, next: NextFunction) => next(new MatrixError('M_UNRECOGNIZED', 'Unrecognized request')));

  app.use((err: unknown, req: Request, res: Response, _next: NextFunction) => {
    let error: MatrixError;
    if (err instanceof MatrixError) {
      error = err;
    } else if ((err as { type?: string }).type === 'entity.too.large') {
      error = new MatrixError('M_TOO_LARGE', 'Request body too large');
    } else if ((err as { type?: string }).type?.startsWith('entity.') || (err as { type?: string }).type === 'request.aborted') {
      error = new MatrixError('M_BAD_JSON', 'Could not read the request body');
    } else if (err instanceof URIError) {
      // The router could not percent-decode a path parameter: the client's fault, not ours.
      error = new MatrixError('M_INVALID_PARAM', 'Malformed percent-encoding in the request path');
    } else if (isClientHttpError(err)) {
      error = new MatrixError('M_UNKNOWN', 'Bad request', { status: err.status });
    } else {
      opts.log.error({ reqId: req.id, err }, 'unhandled error');
      error = new MatrixError('M_UNKNOWN', 'Internal server error', { status: 500 });
    }
    if (res.headersSent) {
      res.end();
      return;
    }
    if (error.errcode === 'M_LIMIT_EXCEEDED' && typeof error.extra?.['retry_after_ms'] === 'number') {
      res.setHeader('Retry-After', String(Math.ceil((error.extra['retry_after_ms'] as number) / 1000)));
    }
    res.status(error.status).json(error.toJSON());
  });
  return app;
}
