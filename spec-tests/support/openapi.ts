// Response-schema validation against the Matrix spec's own OpenAPI files, so a response whose
// shape drifts from the spec fails the test that saw it, not a client in the field.
//
// The spec data lives next to the repository (../shared/matrix-spec/data, or MATRIX_SPEC_DIR
// pointing at a `data` folder). Each client-server API file is loaded once with `yaml`; its
// `$ref`s (relative files, JSON pointers, refs into ../../event-schemas and ../../schemas) are
// inlined so ajv sees one self-contained schema per (method, path template, status), compiled
// lazily on first use and cached.
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ajv, type ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';
import { parse as parseYaml } from 'yaml';

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

export function specDataDir(): string {
  return process.env['MATRIX_SPEC_DIR'] ? resolve(process.env['MATRIX_SPEC_DIR']) : resolve(REPO_ROOT, '../shared/matrix-spec/data');
}

type Json = unknown;

/** Parsed YAML files by absolute path: the same file is referenced from many places. */
const files = new Map<string, Json>();

function loadFile(path: string): Json {
  let doc = files.get(path);
  if (doc === undefined) {
    doc = parseYaml(readFileSync(path, 'utf8')) as Json;
    files.set(path, doc);
  }
  return doc;
}

/** RFC 6901 JSON pointer lookup ("#/a/b~1c"). */
function pointer(doc: Json, ptr: string): Json {
  if (ptr === '' || ptr === '/') return doc;
  let node = doc;
  for (const raw of ptr.replace(/^\//, '').split('/')) {
    const key = decodeURIComponent(raw).replace(/~1/g, '/').replace(/~0/g, '~');
    if (typeof node !== 'object' || node === null || !(key in node)) throw new Error(`JSON pointer ${ptr} does not resolve`);
    node = (node as Record<string, Json>)[key];
  }
  return node;
}

// Keys whose values are documentation data, not schemas: a `$ref` there is not ours to follow.
const NON_SCHEMA_KEYS = new Set(['example', 'examples', 'description']);

/**
 * Returns `node` with every `$ref` replaced by the (recursively resolved) target. `file` is the
 * file `node` came from, against which relative refs resolve. A ref already being expanded
 * higher up (a recursive schema) becomes `{}`: it accepts anything rather than looping.
 */
function inline(node: Json, file: string, stack: string[] = [], inProperties = false): Json {
  if (Array.isArray(node)) return node.map((n) => inline(n, file, stack));
  if (typeof node !== 'object' || node === null) return node;
  const obj = node as Record<string, Json>;
  if (typeof obj['$ref'] === 'string') {
    const ref = obj['$ref'];
    const hash = ref.indexOf('#');
    const filePart = hash === -1 ? ref : ref.slice(0, hash);
    const ptr = hash === -1 ? '' : ref.slice(hash + 1);
    const target = filePart === '' ? file : resolve(dirname(file), filePart);
    const key = `${target}#${ptr}`;
    if (stack.includes(key)) return {};
    const resolved = inline(pointer(loadFile(target), ptr), target, [...stack, key]);
    // OpenAPI 3.1 allows siblings next to $ref (description, mostly); schema siblings are merged.
    const { $ref: _ref, ...siblings } = obj;
    const extra = Object.fromEntries(Object.entries(siblings).filter(([k]) => !NON_SCHEMA_KEYS.has(k)));
    if (Object.keys(extra).length === 0) return resolved;
    return { allOf: [resolved, inline(extra, file, stack)] };
  }
  const out: Record<string, Json> = {};
  // Under `properties` every key is a property name (a property may well be called "example").
  for (const [k, v] of Object.entries(obj)) out[k] = !inProperties && NON_SCHEMA_KEYS.has(k) ? v : inline(v, file, stack, k === 'properties' && !inProperties);
  return out;
}

interface Operation {
  method: string;
  template: string;
  regex: RegExp;
  /** Literal characters in the template: the most specific template wins a tie. */
  literalLength: number;
  file: string;
  /** The (unresolved) responses object of the operation. */
  responses: Record<string, Json>;
}

let operations: Operation[] | null | undefined;
let warned = false;

const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv;
const ajv = new Ajv({ strict: false, allErrors: true, logger: false, validateSchema: false });
addFormats(ajv);
// The spec's own formats, checked loosely: enough to catch a missing sigil or a wrong type.
const MATRIX_FORMATS: Record<string, RegExp> = {
  'mx-user-id': /^@[^:]*:.+$/,
  'mx-room-id': /^![^:]*(:.+)?$/,
  'mx-room-alias': /^#[^:]*:.+$/,
  'mx-event-id': /^\$/,
  'mx-server-name': /^\S+$/,
  'mx-mxc-uri': /^mxc:\/\/[^/]+\/.+$/,
  'mx-unpadded-base64': /^[A-Za-z0-9+/]*$/,
  'mx-urlsafe-unpadded-base64': /^[A-Za-z0-9_-]*$/,
};
for (const [name, re] of Object.entries(MATRIX_FORMATS)) ajv.addFormat(name, re);
// Numeric formats the formats plugin does not know; the type keyword already checks them.
ajv.addFormat('int64', { type: 'number', validate: (n: number) => Number.isInteger(n) });
ajv.addFormat('float', { type: 'number', validate: () => true });

const compiled = new Map<string, ValidateFunction | null>();

function basePathOf(doc: Record<string, Json>): string {
  const servers = doc['servers'] as { url?: string; variables?: Record<string, { default?: string }> }[] | undefined;
  const server = servers?.[0];
  if (!server?.url) return '';
  const url = server.url.replace(/\{(\w+)\}/g, (_m, name: string) => server.variables?.[name]?.default ?? '');
  // Only the path matters: "{protocol}://{hostname}{basePath}" becomes "https://localhost:8008/_matrix/...".
  return url.replace(/^[a-z]+:\/\/[^/]*/, '');
}

function escapeRegex(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function loadOperations(): Operation[] | null {
  if (operations !== undefined) return operations;
  const dir = join(specDataDir(), 'api', 'client-server');
  if (!existsSync(dir)) {
    if (!warned) {
      warned = true;
      process.stderr.write(`spec data not found at ${specDataDir()}: skipping response-schema validation\n`);
    }
    operations = null;
    return null;
  }
  const ops: Operation[] = [];
  for (const name of readdirSync(dir).filter((f) => f.endsWith('.yaml')).sort()) {
    const file = join(dir, name);
    const doc = loadFile(file) as Record<string, Json>;
    const paths = doc['paths'] as Record<string, Record<string, Json>> | undefined;
    if (!paths) continue;
    const base = basePathOf(doc);
    for (const [path, item] of Object.entries(paths)) {
      const template = base + path;
      const regex = new RegExp(
        `^${template
          .split(/(\{[^}]+\})/)
          .map((part) => (part.startsWith('{') ? '[^/]+' : escapeRegex(part)))
          .join('')}$`,
      );
      const literalLength = template.replace(/\{[^}]+\}/g, '').length;
      for (const [method, op] of Object.entries(item)) {
        const responses = (op as { responses?: Record<string, Json> } | undefined)?.responses;
        if (!responses || !['get', 'put', 'post', 'delete', 'patch', 'head'].includes(method)) continue;
        ops.push({ method: method.toUpperCase(), template, regex, literalLength, file, responses });
      }
    }
  }
  ops.sort((a, b) => b.literalLength - a.literalLength);
  operations = ops;
  return ops;
}

/** The spec's path for a request path: query stripped, r0 read as v3 (same handlers). */
function normalisePath(path: string): string {
  const noQuery = path.split('?')[0]!.split('#')[0]!;
  return noQuery.replace(/^\/_matrix\/client\/r0\//, '/_matrix/client/v3/');
}

/** The operation documenting this request, if the spec has one. */
export function findOperation(method: string, path: string): { template: string; file: string } | undefined {
  const ops = loadOperations();
  if (!ops) return undefined;
  const p = normalisePath(path);
  const op = ops.find((o) => o.method === method.toUpperCase() && o.regex.test(p));
  return op && { template: op.template, file: op.file };
}

function validatorFor(op: Operation, status: number): ValidateFunction | null {
  const key = `${op.method} ${op.template} ${status}`;
  if (compiled.has(key)) return compiled.get(key)!;
  let validate: ValidateFunction | null = null;
  const response = op.responses[String(status)];
  if (response !== undefined) {
    const resolved = inline(response, op.file) as { content?: Record<string, { schema?: Json }> };
    const schema = resolved.content?.['application/json']?.schema;
    if (schema !== undefined) validate = ajv.compile(schema as object);
  }
  compiled.set(key, validate);
  return validate;
}

/**
 * The spec ("Using access tokens") lets every authenticated endpoint answer 401 M_MISSING_TOKEN
 * or M_UNKNOWN_TOKEN with the standard error body, but endpoints behind UIA document their 401
 * as the UIA body only; such token errors are checked against the standard error schema.
 */
function isTokenError(status: number, body: unknown): boolean {
  const errcode = (body as { errcode?: unknown } | null)?.errcode;
  return status === 401 && (errcode === 'M_MISSING_TOKEN' || errcode === 'M_UNKNOWN_TOKEN');
}

function tokenErrorValidator(file: string): ValidateFunction {
  const key = 'token-error';
  let validate = compiled.get(key);
  if (!validate) {
    validate = ajv.compile(inline({ $ref: 'definitions/errors/error.yaml' }, file) as object);
    compiled.set(key, validate);
  }
  return validate;
}

/**
 * Throws an assertion error when `body` does not match the spec's schema for this
 * (method, path, status). Requests the spec does not document (admin API, a status it lists no
 * schema for) pass unchecked.
 */
export function validateResponse(method: string, path: string, status: number, body: unknown): void {
  const ops = loadOperations();
  if (!ops) return;
  const p = normalisePath(path);
  const op = ops.find((o) => o.method === method.toUpperCase() && o.regex.test(p));
  if (!op) return;
  const validate = isTokenError(status, body) ? tokenErrorValidator(op.file) : validatorFor(op, status);
  if (!validate || validate(body)) return;
  const errors = (validate.errors ?? []).map((e) => `${e.instancePath || '(body)'} ${e.message ?? ''} ${JSON.stringify(e.params)}`).join('; ');
  assert.fail(
    `${method.toUpperCase()} ${p} -> ${status}: response does not match the spec schema of ${op.template}: ${errors}\nbody: ${JSON.stringify(body).slice(0, 2000)}`,
  );
}
