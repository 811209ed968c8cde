// The route table. Each path lists its methods; any other method on a known path answers
// 405 M_UNRECOGNIZED. A route declares its auth, body validator and rate-limit class as data,
// and its handler returns the JSON to send (or writes the response itself).
import type { NextFunction, Request, Response, Router } from 'express';
import { MatrixError, unrecognized } from './errors.js';
import type { RateLimitClass, RateLimiter } from './rate-limit.js';
import type { Requester } from './types.js';
import type { BodyValidator } from './validate.js';

export type AuthMode =
  /** An access token is required (401 without one). */
  | 'required'
  /** A token is used when given, and must then be valid. */
  | 'optional'
  /** Tokens are ignored. */
  | 'none';

export interface RouteSpec {
  auth?: AuthMode;
  /** Guests may call it (the spec's list of guest-accessible endpoints). */
  guests?: boolean;
  body?: BodyValidator<unknown>;
  rateLimit?: RateLimitClass;
  handler: (req: Request, res: Response) => unknown;
}

export type Method = 'GET' | 'PUT' | 'POST' | 'DELETE';

export interface RouteDeps {
  authenticate(token: string, req: Request): Promise<Requester>;
  rateLimiter: RateLimiter;
}

export function accessTokenOf(req: Request): string | undefined {
  const header = req.headers.authorization;
  if (header !== undefined) {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (!m) throw new MatrixError('M_MISSING_TOKEN', 'Invalid Authorization header');
    return m[1];
  }
  const q = req.query['access_token'];
  return typeof q === 'string' && q.length > 0 ? q : undefined;
}

/** Parses the raw body bytes as a JSON object; empty means `{}` as Synapse treats it. */
function parseJsonObject(raw: Buffer | undefined): unknown {
  if (!raw || raw.length === 0) return {};
  let value: unknown;
  try {
    value = JSON.parse(raw.toString('utf8'));
  } catch {
    throw new MatrixError('M_NOT_JSON', 'Content not JSON.');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new MatrixError('M_BAD_JSON', 'Content must be a JSON object.');
  }
  // A NUL can only arrive escaped (JSON forbids raw control characters), so the walk runs only
  // when the escape appears. PostgreSQL stores no NUL in text or jsonb: refused here, as bad
  // input, instead of failing as a 500 wherever the string reaches the database.
  if (raw.includes('\\u0000') && hasNul(value)) throw new MatrixError('M_BAD_JSON', 'Strings may not contain NUL (\\u0000)');
  return value;
}

function hasNul(value: unknown): boolean {
  if (typeof value === 'string') return value.includes('\0');
  if (Array.isArray(value)) return value.some(hasNul);
  if (typeof value === 'object' && value !== null) return Object.entries(value).some(([k, v]) => k.includes('\0') || hasNul(v));
  return false;
}

/** Path parameters and query values with a NUL: 400, for the same reason as bodies. */
function checkNoNulInUrl(req: Request): void {
  for (const v of Object.values(req.params ?? {})) {
    if (typeof v === 'string' && v.includes('\0')) throw new MatrixError('M_INVALID_PARAM', 'Path parameters may not contain NUL');
  }
  for (const v of Object.values(req.query ?? {})) {
    const values = Array.isArray(v) ? v : [v];
    if (values.some((x) => typeof x === 'string' && x.includes('\0'))) throw new MatrixError('M_INVALID_PARAM', 'Query parameters may not contain NUL');
  }
}

/** How many leading path segments key a bucket of routes. */
const BUCKET_SEGMENTS = 4;

const isParam = (segment: string) => segment.startsWith(':') || segment.includes('*');

/**
 * The bucket of a path: its first BUCKET_SEGMENTS segments, lower-cased (express matches
 * case-insensitively), or undefined when a parameter comes before them. A path whose next
 * segment is a parameter followed by a fixed one (`/_matrix/client/v3/rooms/:roomId/send/...`)
 * goes in a finer bucket keyed by both (`.../rooms/{param}/send`): most of the API lives under
 * a few such prefixes.
 */
function bucketKey(path: string): string | undefined {
  const segments = path.toLowerCase().split('/').filter((s) => s !== '');
  const head = segments.slice(0, BUCKET_SEGMENTS);
  if (head.some(isParam)) return undefined;
  const param = segments[BUCKET_SEGMENTS];
  const next = segments[BUCKET_SEGMENTS + 1];
  if (param !== undefined && isParam(param) && next !== undefined && !isParam(next)) return `${head.join('/')}/*/${next}`;
  return head.join('/');
}

/**
 * Routes are kept in buckets by their leading static segments, and each request is handed to
 * its bucket's router by a map lookup: one express router holding every route tries each of
 * them in turn (several hundred path matches for a request near the end of the table).
 */
export class RouteTable {
  private readonly buckets = new Map<string, Router>();
  /** Routes with a parameter among their leading segments: tried after the buckets. */
  private readonly unbucketed: Router;

  constructor(
    router: Router,
    private readonly deps: RouteDeps,
    private readonly newRouter: () => Router,
  ) {
    this.unbucketed = newRouter();
    router.use((req: Request, res: Response, next: NextFunction) => {
      const segments = req.path.toLowerCase().split('/').filter((s) => s !== '');
      // The finer bucket first, then the prefix's, then the routes in no bucket.
      const keys: string[] = [];
      if (segments.length > BUCKET_SEGMENTS + 1) keys.push(`${segments.slice(0, BUCKET_SEGMENTS).join('/')}/*/${segments[BUCKET_SEGMENTS + 1]}`);
      for (let n = Math.min(BUCKET_SEGMENTS, segments.length); n > 0; n--) keys.push(segments.slice(0, n).join('/'));
      const buckets = keys.map((k) => this.buckets.get(k)).filter((b): b is Router => b !== undefined);
      const tryFrom = (i: number, err?: unknown): void => {
        if (err) return next(err);
        const bucket = buckets[i];
        if (bucket) bucket(req, res, (e?: unknown) => tryFrom(i + 1, e));
        else this.unbucketed(req, res, next);
      };
      tryFrom(0);
    });
  }

  private routerFor(path: string): Router {
    const key = bucketKey(path);
    if (key === undefined) return this.unbucketed;
    let bucket = this.buckets.get(key);
    if (!bucket) {
      bucket = this.newRouter();
      this.buckets.set(key, bucket);
    }
    return bucket;
  }

  add(paths: string | string[], methods: Partial<Record<Method, RouteSpec>>): void {
    for (const path of Array.isArray(paths) ? paths : [paths]) {
      const router = this.routerFor(path);
      for (const [method, spec] of Object.entries(methods) as [Method, RouteSpec][]) {
        const handler = this.wrap(spec);
        switch (method) {
          case 'GET':
            router.get(path, handler);
            break;
          case 'PUT':
            router.put(path, handler);
            break;
          case 'POST':
            router.post(path, handler);
            break;
          case 'DELETE':
            router.delete(path, handler);
            break;
        }
      }
      router.all(path, (_req: Request, _res: Response, next: NextFunction) =>
        next(new MatrixError('M_UNRECOGNIZED', 'Method not allowed', { status: 405 })),
      );
    }
  }

  /** Client API paths: served under v3 and the legacy r0 prefix alike. */
  client(path: string, methods: Partial<Record<Method, RouteSpec>>): void {
    this.add([`/_matrix/client/v3${path}`, `/_matrix/client/r0${path}`], methods);
  }

  clientV1(path: string, methods: Partial<Record<Method, RouteSpec>>): void {
    this.add(`/_matrix/client/v1${path}`, methods);
  }

  private wrap(spec: RouteSpec) {
    const auth = spec.auth ?? 'required';
    return async (req: Request, res: Response): Promise<void> => {
      checkNoNulInUrl(req);
      if (auth !== 'none') {
        const token = accessTokenOf(req);
        if (token !== undefined) req.requester = await this.deps.authenticate(token, req);
        else if (auth === 'required') throw new MatrixError('M_MISSING_TOKEN', 'Missing access token');
        if (req.requester?.isGuest && !spec.guests) {
          throw new MatrixError('M_GUEST_ACCESS_FORBIDDEN', 'Guest access is not allowed for this endpoint');
        }
      }
      if (spec.rateLimit) {
        this.deps.rateLimiter.take(spec.rateLimit, req.requester?.userId ?? req.ip ?? 'unknown');
      }
      if (spec.body) req.body = spec.body(parseJsonObject(req.rawBody));
      const result = await spec.handler(req, res);
      if (!res.headersSent) sendJson(res, result ?? {});
    };
  }
}

/**
 * What express's res.json sends, written directly: express's way (type lookups, send's checks
 * for strings, ETags and freshness, which JSON answers here do not use) cost a few percent of a
 * message send's CPU. HEAD answers get the headers only (node leaves the body out).
 */
function sendJson(res: Response, value: unknown): void {
  const body = JSON.stringify(value);
  res.setHeader('Content-Type', 'application/json; charset=utf-8');
  res.setHeader('Content-Length', Buffer.byteLength(body));
  res.end(body);
}

export { unrecognized };
