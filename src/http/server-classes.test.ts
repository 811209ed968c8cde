import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import net from 'node:net';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import express from 'express';
import { serverClassesFor } from './app.js';

/** Serves `count` requests of an app through `options`; returns what the route was given. */
async function served(options: http.ServerOptions, count: number): Promise<{ app: express.Express; seen: [http.IncomingMessage, http.ServerResponse][] }> {
  const app = express();
  const seen: [http.IncomingMessage, http.ServerResponse][] = [];
  app.get('/x', (req, res) => {
    seen.push([req, res]);
    res.json({ host: req.get('host') !== undefined, query: req.query['a'] });
  });
  const server = http.createServer(options === CLASSES ? serverClassesFor(app) : options, app);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  try {
    const { port } = server.address() as AddressInfo;
    for (let i = 0; i < count; i++) {
      const r = await fetch(`http://127.0.0.1:${port}/x?a=${i}`);
      assert.deepEqual(await r.json(), { host: true, query: String(i) });
    }
  } finally {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  }
  return { app, seen };
}
const CLASSES: http.ServerOptions = {};

// Run by the test below in a process where V8's natives are allowed: prints whether two requests
// (and two responses) served with and without the classes share their hidden class, and keep
// fast properties.
if (process.env['PRAT_HIDDEN_CLASS_PROBE']) {
  const sameMap = new Function('a', 'b', 'return %HaveSameMap(a, b)') as (a: object, b: object) => boolean;
  const fast = new Function('a', 'return %HasFastProperties(a)') as (a: object) => boolean;
  const shared = async (options: http.ServerOptions) => {
    const { seen } = await served(options, 3);
    const [[req1, res1], [req2, res2]] = seen.slice(1);
    return [sameMap(req1!, req2!), sameMap(res1!, res2!), fast(req2!), fast(res2!)];
  };
  console.log(JSON.stringify({ without: await shared({}), with: await shared(CLASSES) }));
}

describe('serverClassesFor', { skip: process.env['PRAT_HIDDEN_CLASS_PROBE'] !== undefined }, () => {
  it("makes requests and responses born with the app's prototypes, still Node's classes", () => {
    const app = express();
    const classes = serverClassesFor(app);
    assert.equal(serverClassesFor(app), classes, 'once per app');
    const req = new classes.IncomingMessage!(new net.Socket());
    assert.equal(Object.getPrototypeOf(req), app.request);
    assert.ok(req instanceof http.IncomingMessage);
    assert.equal((req as express.Request).app, app);
    assert.equal(typeof (req as express.Request).get, 'function');
    const res = new classes.ServerResponse!(req);
    assert.equal(Object.getPrototypeOf(res), app.response);
    assert.ok(res instanceof http.ServerResponse);
    assert.equal(typeof (res as express.Response).json, 'function');
  });

  it('serves express routes with them, keeping the prototypes express sets', async () => {
    const { app, seen } = await served(CLASSES, 2);
    assert.deepEqual(
      seen.map(([req, res]) => [Object.getPrototypeOf(req) === app.request, Object.getPrototypeOf(res) === app.response]),
      [[true, true], [true, true]],
    );
  });

  it('makes requests and responses share their hidden classes (with fast properties), which without them they do not', () => {
    const out = execFileSync(process.execPath, ['--allow-natives-syntax', '--import', 'tsx', fileURLToPath(import.meta.url)], {
      env: { ...process.env, PRAT_HIDDEN_CLASS_PROBE: '1', NODE_OPTIONS: '' },
      encoding: 'utf8',
    });
    const probe = JSON.parse(out.trim().split('\n').find((l) => l.startsWith('{'))!);
    assert.deepEqual(probe, { without: [false, false, true, true], with: [true, true, true, true] });
  });
});
