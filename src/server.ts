// The composition root: builds the database, stores, services and HTTP listeners from a
// config, explicitly (no globals, no service locator), and tears them down in order.
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type express from 'express';
import { collectDefaultMetrics, Registry } from 'prom-client';
import type { PratConfig, ListenerResource } from './config/schema.js';
import { Database } from './db/pool.js';
import { migrate } from './db/migrate.js';
import type { Logger } from './logger.js';
import { createApp, serverClassesFor } from './http/app.js';
import { RateLimiter } from './http/rate-limit.js';
import type { RouteTable } from './http/routes.js';
import { AccountService } from './accounts/service.js';
import { UserInteractiveAuth } from './accounts/uia.js';
import { registerAccountRoutes } from './accounts/routes.js';
import { registerDiscoveryRoutes, SUPPORTED_SPEC_VERSIONS } from './discovery/routes.js';
import { registerAdminRoutes } from './admin/routes.js';
import { registerKeyRoutes } from './federation/key-routes.js';
import { loadOrCreateSigningKey } from './federation/signing-key.js';
import type { SigningKey } from './core/signing.js';
import { KeysService } from './keys/service.js';
import { CrossSigningService } from './keys/cross-signing.js';
import { BackupService } from './keys/backup.js';
import { ToDeviceService } from './keys/to-device.js';
import { registerE2eeRoutes } from './keys/routes.js';
import { OpenIdService } from './openid/service.js';
import { registerOpenIdClientRoutes, registerOpenIdFederationRoutes } from './openid/routes.js';
import { registerVoipRoutes } from './voip/routes.js';
import { registerStartupRoutes } from './discovery/startup-routes.js';
import { RoomService } from './rooms/service.js';
import { registerRoomRoutes } from './rooms/routes.js';
import { registerHistoryRoutes } from './rooms/routes-history.js';
import { registerDirectoryRoutes } from './rooms/directory/routes.js';
import { registerReportAdminRoutes, registerRoomFeatureRoutes } from './rooms/routes-features.js';
import { buildSync, type SyncModule } from './sync/module.js';
import { MediaService } from './media/service.js';
import { FilesystemMediaStorage } from './media/storage.js';
import { UrlPreviewer } from './media/preview.js';
import { registerMediaAdminRoutes, registerMediaRoutes } from './media/routes.js';
import { UserDirectoryService } from './user-directory/service.js';
import { registerUserDirectoryRoutes } from './user-directory/routes.js';

export interface Services {
  config: PratConfig;
  log: Logger;
  db: Database;
  signingKey: SigningKey;
  rateLimiter: RateLimiter;
  accounts: AccountService;
  keys: KeysService;
  crossSigning: CrossSigningService;
  backup: BackupService;
  toDevice: ToDeviceService;
  openid: OpenIdService;
  rooms: RoomService;
  media: MediaService;
  urlPreviewer: UrlPreviewer;
  userDirectory: UserDirectoryService;
  /** Sync, notifier, typing, receipts, presence, account data, push rules. */
  sync: SyncModule;
  metrics: Registry;
  /** Aborted at shutdown: long-polls end early instead of holding the stop up. */
  shutdown: AbortSignal;
}

export interface Homeserver {
  services: Services;
  /** Each listener's bound address, in config order. */
  addresses: { host: string; port: number; tls: boolean; resources: ListenerResource[] }[];
  stop(): Promise<void>;
}

function buildServices(config: PratConfig, log: Logger, databaseUrl: string, shutdown: AbortSignal): Services {
  const db = new Database(databaseUrl, config.database.max_connections, log.child({ component: 'db' }));
  const uia = new UserInteractiveAuth(db);
  const metrics = new Registry();
  collectDefaultMetrics({ register: metrics });
  const signingKey = loadOrCreateSigningKey(config.signing_key_path);
  const accounts = new AccountService(db, config, uia, log.child({ component: 'accounts' }));
  const media = new MediaService(db, new FilesystemMediaStorage(config.media.store_path), config, log.child({ component: 'media' }), shutdown);
  const keys = new KeysService(db, config.server_name, log.child({ component: 'keys' }));
  const toDevice = new ToDeviceService(db, config.server_name, log.child({ component: 'to_device' }));
  const rooms = new RoomService({ db, log: log.child({ component: 'rooms' }), config, signingKey, accounts });
  const backup = new BackupService(db);
  const openid = new OpenIdService(db, config.server_name, log.child({ component: 'openid' }));
  // A deleted device's keys and queued messages go with it; a deactivated user's identity too.
  accounts.devicesDeletedListeners.push(keys.onDevicesDeleted);
  accounts.deviceRenamedListeners.push(keys.onDeviceRenamed);
  accounts.deactivationListeners.push(keys.onDeactivated, backup.onDeactivated, openid.onDeactivated);
  return {
    config,
    log,
    db,
    signingKey,
    rateLimiter: new RateLimiter(config.rate_limits),
    accounts,
    keys,
    crossSigning: new CrossSigningService(db, accounts, uia, keys),
    backup,
    toDevice,
    openid,
    rooms,
    sync: buildSync({ config, db, databaseUrl, log, rooms, keys, toDevice, shutdown }),
    media,
    urlPreviewer: new UrlPreviewer(db, media, config, log.child({ component: 'url_preview' })),
    userDirectory: new UserDirectoryService(db, config, rooms.deps, log.child({ component: 'user_directory' })),
    metrics,
    shutdown,
  };
}

/** Registers every route a listener serves, by resource. */
function mountResources(resources: ListenerResource[], s: Services) {
  return (routes: RouteTable, router: express.Router) => {
    if (resources.includes('client')) {
      registerDiscoveryRoutes(routes, s.config, { spec: SUPPORTED_SPEC_VERSIONS });
      registerAccountRoutes(routes, s.accounts);
      registerE2eeRoutes(routes, s);
      registerOpenIdClientRoutes(routes, s.openid);
      registerVoipRoutes(routes, s.config);
      registerStartupRoutes(routes);
      registerRoomRoutes(routes, s.rooms);
      registerHistoryRoutes(routes, s.rooms);
      registerDirectoryRoutes(routes, s.rooms);
      registerRoomFeatureRoutes(routes, s.rooms);
      registerUserDirectoryRoutes(routes, s.userDirectory);
      s.sync.registerRoutes(routes);
    }
    if (resources.includes('media')) {
      registerMediaRoutes(routes, s.media, s.urlPreviewer, s.log.child({ component: 'media' }));
    }
    if (resources.includes('federation')) {
      registerKeyRoutes(routes, s.config.server_name, s.signingKey);
      registerOpenIdFederationRoutes(routes, s.openid);
    }
    if (resources.includes('admin')) {
      registerAdminRoutes(routes, s.accounts);
      registerReportAdminRoutes(routes, s.rooms, s.accounts);
      registerMediaAdminRoutes(routes, s.media, s.accounts);
    }
    if (resources.includes('metrics')) {
      router.get('/metrics', async (_req, res) => {
        res.setHeader('Content-Type', s.metrics.contentType);
        res.end(await s.metrics.metrics());
      });
    }
  };
}

export async function startHomeserver(config: PratConfig, log: Logger, databaseUrl: string): Promise<Homeserver> {
  const shutdown = new AbortController();
  const services = buildServices(config, log, databaseUrl, shutdown.signal);
  try {
    await migrate(services.db, log);
    await services.sync.start();
  } catch (err) {
    await services.db.close();
    throw err;
  }

  const servers: http.Server[] = [];
  const addresses: Homeserver['addresses'] = [];
  const inFlight = new Set<http.ServerResponse>();
  let closing = false;
  const deps = {
    rateLimiter: services.rateLimiter,
    authenticate: (token: string, req: express.Request) =>
      services.accounts.authenticate(token, {
        ...(req.ip !== undefined ? { ip: req.ip } : {}),
        ...(req.headers['user-agent'] !== undefined ? { userAgent: req.headers['user-agent'] } : {}),
      }),
  };
  try {
    for (const listener of config.listeners) {
      const app = createApp({
        log: log.child({ component: 'http' }),
        maxBodySize: config.limits.max_request_body_size,
        deps,
        mount: mountResources(listener.resources, services),
      });
      for (const host of listener.bind_addresses) {
        const server = listener.tls
          ? https.createServer({ cert: readFileSync(listener.tls.certificate_path), key: readFileSync(listener.tls.private_key_path), ...serverClassesFor(app) }, app)
          : http.createServer(serverClassesFor(app), app);
        // During a stop, every answer closes its connection, so keep-alive clients let go as
        // soon as their requests are done (instead of being cut while sending the next one).
        server.on('request', (_req: http.IncomingMessage, res: http.ServerResponse) => {
          if (closing) {
            if (!res.headersSent) res.setHeader('Connection', 'close');
            return;
          }
          inFlight.add(res);
          res.on('close', () => inFlight.delete(res));
        });
        // Long-polls last up to a few minutes; Node's default request timeout would cut them.
        server.requestTimeout = 0;
        server.keepAliveTimeout = 65_000;
        await new Promise<void>((resolveListen, reject) => {
          server.once('error', reject);
          server.listen(listener.port, host, () => {
            server.off('error', reject);
            resolveListen();
          });
        });
        servers.push(server);
        const addr = server.address() as AddressInfo;
        addresses.push({ host, port: addr.port, tls: !!listener.tls, resources: listener.resources });
      }
    }
  } catch (err) {
    for (const s of servers) s.close();
    await services.db.close();
    throw err;
  }

  services.media.startSweeper();
  services.rooms.startHousekeeping();

  let stopping: Promise<void> | undefined;
  const stop = () => {
    stopping ??= (async () => {
      closing = true;
      for (const res of inFlight) if (!res.headersSent) res.setHeader('Connection', 'close');
      shutdown.abort();
      await Promise.all(
        servers.map(
          (s) =>
            new Promise<void>((resolveClose) => {
              s.close(() => resolveClose());
              s.closeIdleConnections();
              // In-flight requests get a grace period, then their connections are cut.
              setTimeout(() => s.closeAllConnections(), 10_000).unref();
            }),
        ),
      );
      services.rateLimiter.close();
      services.rooms.close();
      await services.media.close();
      await services.sync.close();
      await services.db.close();
    })();
    return stopping;
  };
  return { services, addresses, stop };
}
