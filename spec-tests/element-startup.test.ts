// What Element Web asks a homeserver at start-up, through matrix-js-sdk's own calls: startClient
// with Rust crypto (versions, push rules, filter, /sync, capabilities, key upload and query),
// then the calls Element makes on top (TURN, 3PIDs, third-party protocols, key backup, media
// config, profile, devices, pushers, whoami, presence, OIDC discovery, an OpenID token for
// widgets). Every request must succeed, except the answers the spec gives for "nothing here":
// no key backup yet (404 M_NOT_FOUND) and no OIDC provider (404 M_UNRECOGNIZED), which the SDK
// and Element read as such instead of showing an error.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { logger as sdkLogger } from 'matrix-js-sdk/lib/logger.js';
import { poll, releaseProcess, sdkClient, started, type RecordedClient } from './support/sdk.js';
import { startTestServer, type TestServer } from './support/server.js';

sdkLogger.setLevel('silent');
console.debug = () => {};
console.info = () => {};

/** Errors that are the spec's way of saying "none", each as method, path suffix, status, errcode. */
const EXPECTED_ERRORS: [string, string, number, string][] = [
  ['GET', '/v3/room_keys/version', 404, 'M_NOT_FOUND'],
  ['GET', '/org.matrix.msc2965/auth_metadata', 404, 'M_UNRECOGNIZED'],
  ['GET', '/org.matrix.msc2965/auth_issuer', 404, 'M_UNRECOGNIZED'],
];

describe("Element's start-up calls through matrix-js-sdk", () => {
  let server: TestServer;
  let rc: RecordedClient | undefined;
  before(async () => {
    server = await startTestServer();
  });
  after(async () => {
    rc?.client.stopClient();
    await server.stop();
    releaseProcess();
  });

  it('answers every start-up request without an error, except the spec\'s "none" answers', async () => {
    const c = await server.register();
    rc = sdkClient(server, c);
    const { client } = rc;
    // Before login Element reads the login flows (unauthenticated).
    const flows = await client.loginFlows();
    assert.ok(flows.flows.some((f) => f.type === 'm.login.password'));

    await client.initRustCrypto({ useIndexedDB: false });
    await started(client);
    const crypto = client.getCrypto()!;

    const [caps, turn, threepids, protocols, media, profile, devices, pushers, whoami, presence, openid, backup, oidc, versions] = await Promise.all([
      client.getCapabilities(),
      client.turnServer(),
      client.getThreePids(),
      client.getThirdpartyProtocols(),
      client.getMediaConfig(),
      client.getProfileInfo(c.userId),
      client.getDevices(),
      client.getPushers(),
      client.whoami(),
      client.getPresence(c.userId),
      client.getOpenIdToken(),
      // Element checks for a key backup after the first sync.
      crypto.checkKeyBackupAndEnable(),
      // Element asks whether the server delegates auth (MSC2965); a rejection means "no".
      client.getAuthMetadata().then(
        () => 'oidc',
        () => 'no oidc',
      ),
      client.getVersions(),
    ]);
    assert.equal(typeof caps, 'object');
    assert.deepEqual(turn, {}, 'no TURN configured: {}');
    assert.deepEqual(threepids.threepids, []);
    assert.deepEqual(protocols, {});
    assert.ok(typeof media['m.upload.size'] === 'number');
    assert.equal(profile.displayname, c.userId.slice(1).split(':')[0]);
    assert.ok(devices.devices.some((d) => d.device_id === c.deviceId));
    assert.deepEqual(pushers.pushers, []);
    assert.equal(whoami.user_id, c.userId);
    assert.equal(whoami.device_id, c.deviceId);
    assert.ok(['online', 'offline', 'unavailable'].includes(presence.presence));
    assert.ok(openid.access_token);
    assert.equal(backup, null, 'no key backup yet');
    assert.equal(oidc, 'no oidc');
    assert.ok(versions.versions.length > 0);
    // The device's identity keys reach the server (the OlmMachine's own upload, in the background).
    await poll('device keys uploaded at start-up', async () => {
      const q = await c.post('/_matrix/client/v3/keys/query', { device_keys: { [c.userId]: [c.deviceId] } });
      return q.body.device_keys[c.userId][c.deviceId] ? true : undefined;
    });

    // Newer Element reads the authenticated media config (spec v1.11) instead of the legacy one.
    const v1Media = await c.get('/_matrix/client/v1/media/config');
    assert.equal(v1Media.status, 200);
    assert.equal(v1Media.body['m.upload.size'], media['m.upload.size']);

    const paths = rc.requests.map((r) => `${r.method} ${r.path}`);
    for (const wanted of [
      'GET /_matrix/client/versions',
      `GET /_matrix/client/v3/pushrules/`,
      `POST /_matrix/client/v3/user/${encodeURIComponent(c.userId)}/filter`,
      'GET /_matrix/client/v3/sync',
      'POST /_matrix/client/v3/keys/upload',
      'GET /_matrix/client/v3/capabilities',
      'GET /_matrix/client/v3/room_keys/version',
    ]) {
      assert.ok(paths.includes(wanted), `the SDK called ${wanted} (called: ${[...new Set(paths)].join(', ')})`);
    }
    const unexpected = rc.requests.filter(
      (r) => r.status >= 400 && !EXPECTED_ERRORS.some(([m, suffix, status, errcode]) => r.method === m && r.path.endsWith(suffix) && r.status === status && r.errcode === errcode),
    );
    assert.deepEqual(unexpected, [], 'no request failed unexpectedly');
  });
});
