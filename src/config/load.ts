// Loads, defaults and validates the YAML config, and generates a fresh one on first start.
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { Ajv, type ErrorObject } from 'ajv';
import addFormatsModule from 'ajv-formats';
import { parse as parseYaml, parseDocument } from 'yaml';
import { configSchema, type PratConfig } from './schema.js';
import { DEFAULT_ROOM_VERSION, getRoomVersion } from '../core/room-versions.js';

export class ConfigError extends Error {
  override name = 'ConfigError';
}

const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv;
const ajv = new Ajv({ allErrors: true, strict: true, allowUnionTypes: true });
addFormats(ajv);
const validateConfig = ajv.compile(configSchema);

/** Everything but server_name has a default, so a config file may be as short as one line. */
export function defaultConfig(serverName: string): Omit<PratConfig, 'server_name'> & { server_name?: string } {
  return {
    public_baseurl: `http://${serverName.includes(':') ? serverName : `${serverName}:8008`}/`,
    signing_key_path: './signing.key',
    listeners: [
      {
        port: 8008,
        bind_addresses: ['127.0.0.1'],
        resources: ['client', 'federation', 'media', 'admin', 'metrics'],
      },
    ],
    database: { max_connections: 10 },
    media: {
      store_path: './media',
      max_upload_size: 50 * 1024 * 1024,
      enable_authenticated_media: true,
      max_pending_uploads: 5,
      unused_expires_after_ms: 24 * 60 * 60 * 1000,
      max_image_pixels: 32_000_000,
      thumbnail_sizes: [
        { width: 32, height: 32, method: 'crop' },
        { width: 96, height: 96, method: 'crop' },
        { width: 320, height: 240, method: 'scale' },
        { width: 640, height: 480, method: 'scale' },
        { width: 800, height: 600, method: 'scale' },
      ],
      url_preview: { enabled: true, max_page_size: 10 * 1024 * 1024, timeout_ms: 10_000, ip_range_allowlist: [], ip_range_blocklist: [] },
    },
    registration: { enabled: true, require_token: false, allow_guests: false },
    rate_limits: {
      enabled: true,
      login: { per_second: 0.17, burst_count: 3 },
      registration: { per_second: 0.17, burst_count: 3 },
      message: { per_second: 10, burst_count: 50 },
      media_upload: { per_second: 1, burst_count: 10 },
      default: { per_second: 20, burst_count: 100 },
    },
    limits: { max_request_body_size: 1024 * 1024 },
    rooms: { default_room_version: DEFAULT_ROOM_VERSION },
    log: { level: 'info', format: 'json' },
    well_known: {},
    turn: { uris: [], user_lifetime_seconds: 3600, allow_guests: true },
    presence: { enabled: true },
    user_directory: { search_all_users: false },
    push: { ip_range_allowlist: [], ip_range_blocklist: [] },
    tls: { extra_ca_files: [] },
  };
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Objects merge key by key; arrays and scalars from the file replace the default. */
function mergeDefaults(defaults: unknown, given: unknown): unknown {
  // A YAML section left with only comments parses as null: it means "the defaults".
  if (given === undefined || (given === null && isPlainObject(defaults))) return defaults;
  if (!isPlainObject(defaults) || !isPlainObject(given)) return given;
  const out: Record<string, unknown> = { ...defaults };
  for (const [k, v] of Object.entries(given)) out[k] = k in defaults ? mergeDefaults(defaults[k], v) : v;
  return out;
}

function describeError(e: ErrorObject): string {
  const path = e.instancePath
    .split('/')
    .slice(1)
    .map((p) => (/^\d+$/.test(p) ? `[${p}]` : `.${p}`))
    .join('')
    .replace(/^\./, '');
  const where = path || '(top level)';
  if (e.keyword === 'additionalProperties') {
    const key = (e.params as { additionalProperty: string }).additionalProperty;
    return `unknown key '${path ? `${path}.` : ''}${key}'`;
  }
  if (e.keyword === 'required') {
    const key = (e.params as { missingProperty: string }).missingProperty;
    return `missing required key '${path ? `${path}.` : ''}${key}'`;
  }
  return `'${where}' ${e.message ?? 'is invalid'}`;
}

export interface LoadOptions {
  configPath: string;
  port?: number;
  serverName?: string;
}

export function loadConfig(opts: LoadOptions): PratConfig {
  const text = readFileSync(opts.configPath, 'utf8');
  const doc = parseDocument(text);
  if (doc.errors.length > 0) throw new ConfigError(`${opts.configPath}: invalid YAML: ${doc.errors[0]!.message}`);
  const given: unknown = doc.toJS() ?? {};
  try {
    return resolveConfig(given, dirname(resolve(opts.configPath)), opts);
  } catch (err) {
    if (err instanceof ConfigError) throw new ConfigError(`${opts.configPath}: ${err.message}`);
    throw err;
  }
}

/**
 * Defaults, validates and freezes a config given as data. Relative paths are resolved against
 * `baseDir` (the config file's directory), so a data directory can be moved whole.
 */
export function resolveConfig(given: unknown, baseDir: string, opts: { port?: number; serverName?: string } = {}): PratConfig {
  if (!isPlainObject(given)) throw new ConfigError('the config must be a YAML mapping');
  given = { ...given };
  const g = given as Record<string, unknown>;
  if (opts.serverName !== undefined) g['server_name'] = opts.serverName;
  const serverName = typeof g['server_name'] === 'string' ? g['server_name'] : 'localhost';
  const merged = structuredClone(mergeDefaults(defaultConfig(serverName), g)) as PratConfig;
  if (!validateConfig(merged)) {
    const messages = (validateConfig.errors ?? []).map(describeError);
    throw new ConfigError([...new Set(messages)].join('; '));
  }
  if (!getRoomVersion(merged.rooms.default_room_version)) {
    throw new ConfigError("'rooms.default_room_version' is not a known room version");
  }
  if (!merged.database.url && !merged.database.embedded) {
    throw new ConfigError("'database' needs either 'url' or 'embedded'");
  }
  if (opts.port !== undefined) {
    const client = merged.listeners.find((l) => l.resources.includes('client'));
    if (!client) throw new ConfigError('--port given but no listener serves the client API');
    client.port = opts.port;
  }
  const abs = (p: string) => (isAbsolute(p) ? p : resolve(baseDir, p));
  merged.signing_key_path = abs(merged.signing_key_path);
  merged.media.store_path = abs(merged.media.store_path);
  if (merged.database.embedded) merged.database.embedded.data_dir = abs(merged.database.embedded.data_dir);
  for (const l of merged.listeners) {
    if (l.tls) l.tls = { certificate_path: abs(l.tls.certificate_path), private_key_path: abs(l.tls.private_key_path) };
  }
  merged.tls.extra_ca_files = merged.tls.extra_ca_files.map(abs);
  return deepFreeze(merged);
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

function randomSecret(): string {
  return randomBytes(32).toString('base64url');
}

/**
 * Writes a documented config for a new data directory: the example file's comments with this
 * server's name and fresh secrets. Refuses to overwrite an existing file.
 */
export function generateConfig(configPath: string, serverName: string, port = 8008): void {
  if (existsSync(configPath)) throw new ConfigError(`${configPath} already exists; refusing to overwrite it`);
  mkdirSync(dirname(resolve(configPath)), { recursive: true });
  const examplePath = new URL('../../config.example.yaml', import.meta.url);
  const doc = parseDocument(readFileSync(examplePath, 'utf8'));
  doc.set('server_name', serverName);
  const host = serverName.includes(':') || serverName.startsWith('[') ? serverName : `${serverName}:${port}`;
  doc.set('public_baseurl', `http://${serverName === 'localhost' ? `127.0.0.1:${port}` : host}/`);
  doc.setIn(['listeners', 0, 'port'], port);
  doc.setIn(['database', 'embedded', 'password'], randomSecret());
  doc.setIn(['registration', 'shared_secret'], randomSecret());
  writeFileSync(configPath, doc.toString(), { mode: 0o600 });
  // Sanity: what we wrote must load.
  parseYaml(readFileSync(configPath, 'utf8'));
}
