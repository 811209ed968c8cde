// Media repository endpoints: thin handlers over MediaService and UrlPreviewer. Served by a
// listener with the `media` resource (uploads stream: app.ts does not buffer /_matrix/media/).
import type { Request, Response } from 'express';
import { pipeline } from 'node:stream/promises';
import type { AccountService } from '../accounts/service.js';
import { requireAdmin } from '../admin/routes.js';
import { MatrixError, notFound } from '../http/errors.js';
import type { RouteTable } from '../http/routes.js';
import { requester } from '../http/types.js';
import type { Logger } from '../logger.js';
import { contentDisposition, isInlineSafe } from './ids.js';
import { UrlPreviewer } from './preview.js';
import { DEFAULT_TIMEOUT_MS, type MediaService, type UploadOptions } from './service.js';
import type { ThumbnailMethod } from './thumbnailer.js';

/**
 * The spec's recommended policy, so a file opened straight in a browser cannot run script or
 * load anything, whatever its type.
 */
const CONTENT_SECURITY_POLICY =
  "sandbox; default-src 'none'; script-src 'none'; plugin-types application/pdf; style-src 'unsafe-inline'; media-src 'self'; object-src 'self';";
/**
 * Media never changes under an mxc:// URI. Authenticated responses are `private` so a shared
 * cache does not hand them to someone without a token.
 */
const CACHE_AUTHENTICATED = 'private, max-age=31536000, immutable';
const CACHE_PUBLIC = 'public, max-age=31536000, immutable';

function setSecurityHeaders(res: Response): void {
  res.setHeader('Content-Security-Policy', CONTENT_SECURITY_POLICY);
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.setHeader('Cross-Origin-Resource-Policy', 'cross-origin');
}

/** A single query parameter; a repeated one is refused rather than guessed at. */
function queryParam(req: Request, name: string): string | undefined {
  const v = req.query[name];
  if (v === undefined) return undefined;
  if (typeof v !== 'string') throw new MatrixError('M_INVALID_PARAM', `${name} must be given once`);
  return v;
}

function integerParam(req: Request, name: string, opts: { min: number; max: number; fallback?: number }): number {
  const raw = queryParam(req, name);
  if (raw === undefined) {
    if (opts.fallback !== undefined) return opts.fallback;
    throw new MatrixError('M_MISSING_PARAM', `Missing ${name} parameter`);
  }
  if (!/^[0-9]{1,10}$/.test(raw)) throw new MatrixError('M_INVALID_PARAM', `${name} must be a non-negative integer`);
  const n = Number(raw);
  if (n < opts.min || n > opts.max) throw new MatrixError('M_INVALID_PARAM', `${name} must be between ${opts.min} and ${opts.max}`);
  return n;
}

function booleanParam(req: Request, name: string, fallback: boolean): boolean {
  const raw = queryParam(req, name);
  if (raw === undefined) return fallback;
  if (raw === 'true') return true;
  if (raw === 'false') return false;
  throw new MatrixError('M_INVALID_PARAM', `${name} must be true or false`);
}

function uploadOptions(req: Request): UploadOptions {
  return {
    contentType: req.headers['content-type'],
    fileName: queryParam(req, 'filename'),
    contentLength: req.headers['content-length'],
  };
}

/** Aborted when the client goes away, so a long wait for a pending upload ends with it. */
function clientGone(res: Response): AbortSignal {
  const ac = new AbortController();
  res.once('close', () => ac.abort());
  return ac.signal;
}

/**
 * The byte range asked by a Range header (RFC 9110 14.2), for seeking in audio and video: one
 * range only; several, or a malformed header, get the whole file (which the RFC allows).
 * 'unsatisfiable' when it starts past the end.
 */
export function parseRange(header: string | undefined, size: number): { start: number; end: number } | 'unsatisfiable' | undefined {
  if (header === undefined) return undefined;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === '' && m[2] === '')) return undefined;
  if (m[1] === '') {
    // A suffix: the last N bytes.
    const n = Number(m[2]);
    if (n === 0) return 'unsatisfiable';
    return { start: Math.max(0, size - n), end: size - 1 };
  }
  const start = Number(m[1]);
  const end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  if (m[2] !== '' && Number(m[2]) < start) return undefined;
  if (start >= size) return 'unsatisfiable';
  return { start, end };
}

async function sendBlob(
  req: Request,
  res: Response,
  media: MediaService,
  log: Logger,
  blob: { sha256: string; size: number; contentType: string; disposition: string; cache: string },
): Promise<void> {
  const etag = `"${blob.sha256}"`;
  const ifRange = req.headers['if-range'];
  // A Range with an If-Range naming other content is ignored (the whole file is sent).
  const range = ifRange === undefined || ifRange === etag ? parseRange(req.headers.range, blob.size) : undefined;
  if (range === 'unsatisfiable') {
    res.setHeader('Content-Range', `bytes */${blob.size}`);
    throw new MatrixError('M_UNKNOWN', 'Range not satisfiable', { status: 416 });
  }
  let stream;
  try {
    stream = await media.open(blob, range);
  } catch (err) {
    // Metadata without bytes: the store lost the file. Logged for the admin; 404 for the client.
    log.error({ sha256: blob.sha256, err: (err as Error).message }, 'media file missing from the store');
    throw notFound('Media not found');
  }
  res.setHeader('Content-Type', blob.contentType);
  res.setHeader('Content-Disposition', blob.disposition);
  res.setHeader('Cache-Control', blob.cache);
  res.setHeader('ETag', etag);
  res.setHeader('Accept-Ranges', 'bytes');
  const ifNoneMatch = req.headers['if-none-match'];
  if (ifNoneMatch !== undefined && ifNoneMatch.split(',').some((t) => t.trim() === etag || t.trim() === '*')) {
    stream.destroy();
    res.status(304).end();
    return;
  }
  if (range) {
    res.status(206);
    res.setHeader('Content-Range', `bytes ${range.start}-${range.end}/${blob.size}`);
    res.setHeader('Content-Length', String(range.end - range.start + 1));
  } else {
    res.status(200);
    res.setHeader('Content-Length', String(blob.size));
  }
  if (req.method === 'HEAD') {
    stream.destroy();
    res.end();
    return;
  }
  try {
    await pipeline(stream, res);
  } catch (err) {
    // The client hung up mid-download: nothing to answer.
    if ((err as { code?: string }).code === 'ERR_STREAM_PREMATURE_CLOSE') return;
    throw err;
  }
}

const THUMBNAIL_EXTENSIONS: Record<string, string> = { 'image/jpeg': 'jpg', 'image/png': 'png', 'image/webp': 'webp', 'image/gif': 'gif' };

export function registerMediaRoutes(routes: RouteTable, media: MediaService, previewer: UrlPreviewer, log: Logger): void {
  const upload = async (req: Request, res: Response) => {
    try {
      return { content_uri: await media.upload(requester(req).userId, req, uploadOptions(req)) };
    } catch (err) {
      // Refused before the body was read: close rather than read (and discard) the rest.
      if (!req.complete) res.setHeader('Connection', 'close');
      throw err;
    }
  };
  routes.add(['/_matrix/media/v3/upload', '/_matrix/media/r0/upload'], {
    POST: { rateLimit: 'media_upload', handler: upload },
  });
  routes.add('/_matrix/media/v1/create', {
    POST: { rateLimit: 'media_upload', handler: (req) => media.create(requester(req).userId) },
  });
  routes.add('/_matrix/media/v3/upload/:serverName/:mediaId', {
    PUT: {
      rateLimit: 'media_upload',
      handler: async (req, res) => {
        try {
          await media.uploadTo(requester(req).userId, String(req.params['serverName']), String(req.params['mediaId']), req, uploadOptions(req));
          return {};
        } catch (err) {
          if (!req.complete) res.setHeader('Connection', 'close');
          throw err;
        }
      },
    },
  });

  const download = (legacy: boolean) => async (req: Request, res: Response) => {
    setSecurityHeaders(res);
    const timeoutMs = integerParam(req, 'timeout_ms', { min: 0, max: Number.MAX_SAFE_INTEGER, fallback: DEFAULT_TIMEOUT_MS });
    // allow_remote and allow_redirect are checked and accepted: nothing is remote yet and we
    // never redirect.
    booleanParam(req, 'allow_remote', true);
    booleanParam(req, 'allow_redirect', false);
    const m = await media.resolve(String(req.params['serverName']), String(req.params['mediaId']), { timeoutMs, legacy, signal: clientGone(res) });
    const contentType = m.content_type ?? 'application/octet-stream';
    const fileName = req.params['fileName'] !== undefined ? String(req.params['fileName']) : m.upload_name;
    await sendBlob(req, res, media, log, {
      sha256: m.sha256,
      size: m.size,
      contentType,
      disposition: contentDisposition(isInlineSafe(contentType) ? 'inline' : 'attachment', fileName),
      cache: legacy ? CACHE_PUBLIC : CACHE_AUTHENTICATED,
    });
  };

  const thumbnail = (legacy: boolean) => async (req: Request, res: Response) => {
    setSecurityHeaders(res);
    const width = integerParam(req, 'width', { min: 1, max: 10_000 });
    const height = integerParam(req, 'height', { min: 1, max: 10_000 });
    const methodParam = queryParam(req, 'method') ?? 'scale';
    if (methodParam !== 'crop' && methodParam !== 'scale') throw new MatrixError('M_INVALID_PARAM', 'method must be crop or scale');
    const animated = booleanParam(req, 'animated', false);
    const timeoutMs = integerParam(req, 'timeout_ms', { min: 0, max: Number.MAX_SAFE_INTEGER, fallback: DEFAULT_TIMEOUT_MS });
    booleanParam(req, 'allow_remote', true);
    booleanParam(req, 'allow_redirect', false);
    const answer = await media.thumbnail(
      String(req.params['serverName']),
      String(req.params['mediaId']),
      { width, height, method: methodParam as ThumbnailMethod, animated },
      { timeoutMs, legacy, signal: clientGone(res) },
    );
    const blob =
      answer.kind === 'original'
        ? { sha256: answer.media.sha256, size: answer.media.size, contentType: answer.contentType }
        : { sha256: answer.thumbnail.sha256, size: answer.thumbnail.size, contentType: answer.thumbnail.content_type };
    await sendBlob(req, res, media, log, {
      ...blob,
      disposition: contentDisposition('inline', `thumbnail.${THUMBNAIL_EXTENSIONS[blob.contentType] ?? 'png'}`),
      cache: legacy ? CACHE_PUBLIC : CACHE_AUTHENTICATED,
    });
  };

  const preview = async (req: Request) => {
    const url = UrlPreviewer.parseRequestUrl(req.query['url']);
    return previewer.preview(url);
  };

  // Authenticated media (spec v1.11).
  routes.clientV1('/media/config', { GET: { handler: () => media.uploadConfig() } });
  routes.add(['/_matrix/client/v1/media/download/:serverName/:mediaId', '/_matrix/client/v1/media/download/:serverName/:mediaId/:fileName'], {
    // Guests may read media (spec v1.12's guest list), not upload it.
    GET: { guests: true, handler: download(false) },
  });
  routes.clientV1('/media/thumbnail/:serverName/:mediaId', { GET: { guests: true, handler: thumbnail(false) } });
  if (previewer.enabled) routes.clientV1('/media/preview_url', { GET: { rateLimit: 'default', handler: preview } });

  // The deprecated /_matrix/media endpoints. download and thumbnail take no token and serve
  // only media uploaded while enable_authenticated_media was off; config and preview_url
  // always required a token, so they are served as before.
  for (const v of ['v3', 'r0']) {
    routes.add([`/_matrix/media/${v}/download/:serverName/:mediaId`, `/_matrix/media/${v}/download/:serverName/:mediaId/:fileName`], {
      GET: { auth: 'none', handler: download(true) },
    });
    routes.add(`/_matrix/media/${v}/thumbnail/:serverName/:mediaId`, { GET: { auth: 'none', handler: thumbnail(true) } });
    routes.add(`/_matrix/media/${v}/config`, { GET: { handler: () => media.uploadConfig() } });
    if (previewer.enabled) routes.add(`/_matrix/media/${v}/preview_url`, { GET: { rateLimit: 'default', handler: preview } });
  }
}

/** The Synapse admin API's media endpoints (quarantine, delete). */
export function registerMediaAdminRoutes(routes: RouteTable, media: MediaService, accounts: AccountService): void {
  const target = (req: Request) => [String(req.params['serverName']), String(req.params['mediaId'])] as const;
  routes.add('/_synapse/admin/v1/media/quarantine/:serverName/:mediaId', {
    POST: {
      handler: async (req) => {
        await requireAdmin(accounts, requester(req).userId);
        await media.quarantine(...target(req), requester(req).userId);
        return {};
      },
    },
  });
  routes.add('/_synapse/admin/v1/media/unquarantine/:serverName/:mediaId', {
    POST: {
      handler: async (req) => {
        await requireAdmin(accounts, requester(req).userId);
        await media.quarantine(...target(req), null);
        return {};
      },
    },
  });
  routes.add('/_synapse/admin/v1/media/:serverName/:mediaId', {
    DELETE: {
      handler: async (req) => {
        await requireAdmin(accounts, requester(req).userId);
        const [serverName, mediaId] = target(req);
        await media.delete(serverName, mediaId);
        return { deleted_media: [mediaId], total: 1 };
      },
    },
  });
}
