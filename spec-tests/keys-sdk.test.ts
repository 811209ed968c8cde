// The key server through matrix-js-sdk's Rust crypto (the wasm build of matrix-sdk-crypto, as
// Element Web runs it): device keys, cross-signing bootstrap (device_signing and signatures
// upload) and key backup, with the SDK checking every signature the server hands back.
// Encrypted messaging between two clients needs rooms and /sync and is tested with them.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { releaseProcess } from './support/sdk.js';
import { createClient, type MatrixClient } from 'matrix-js-sdk';
import { logger as sdkLogger } from 'matrix-js-sdk/lib/logger.js';
import type { TestClient } from './support/client.js';
import { startTestServer, type TestServer } from './support/server.js';

sdkLogger.setLevel('silent');
// initRustCrypto turns the wasm crate's tracing on at debug level, written to console.debug and
// console.info; keep the test output readable (warnings still show).
console.debug = () => {};
console.info = () => {};

describe('keys through matrix-js-sdk Rust crypto', () => {
  let server: TestServer;
  const clients: MatrixClient[] = [];
  before(async () => {
    server = await startTestServer();
  });
  after(async () => {
    for (const c of clients) c.stopClient();
    await server.stop();
  });

  async function cryptoClient(c: TestClient): Promise<MatrixClient> {
    const client = createClient({ baseUrl: server.baseUrl, accessToken: c.token!, userId: c.userId, deviceId: c.deviceId });
    clients.push(client);
    await client.initRustCrypto({ useIndexedDB: false });
    return client;
  }

  const passwordAuth = (c: TestClient) => ({ type: 'm.login.password', identifier: { type: 'm.id.user', user: c.userId }, password: c.password });

  it("bootstraps cross-signing; the owner's second device sees the first as cross-signed, other users see the keys", async () => {
    const a = await server.register();
    const b = await server.register();
    const alice = await cryptoClient(a);
    const aliceCrypto = alice.getCrypto()!;
    await aliceCrypto.bootstrapCrossSigning({
      setupNewCrossSigning: true,
      authUploadDeviceSigningKeys: async (makeRequest) => {
        await makeRequest(passwordAuth(a));
      },
    });
    assert.equal(await aliceCrypto.isCrossSigningReady(), true);
    const status = await aliceCrypto.getCrossSigningStatus();
    assert.equal(status.publicKeysOnDevice, true);

    // What the server stored, as another user sees it: the device is signed by the self-signing
    // key (the SDK's own signatures upload), and no user-signing key is exposed.
    const q = await b.post('/_matrix/client/v3/keys/query', { device_keys: { [a.userId]: [] } });
    const ssk = Object.keys(q.body.self_signing_keys[a.userId].keys)[0];
    assert.ok(q.body.device_keys[a.userId][a.deviceId].signatures[a.userId][ssk], 'device signed by the self-signing key');
    assert.equal(q.body.user_signing_keys?.[a.userId], undefined);

    // Alice's second device (own devices are always tracked) downloads her keys through its
    // OlmMachine, which checks the chain master -> self-signing key -> first device.
    const login = await server.anon().post('/_matrix/client/v3/login', {
      type: 'm.login.password',
      identifier: { type: 'm.id.user', user: a.userId },
      password: a.password,
    });
    const a2 = Object.assign(server.anon(), { token: login.body.access_token, userId: a.userId, deviceId: login.body.device_id, password: a.password });
    const alice2 = await cryptoClient(a2);
    const alice2Crypto = alice2.getCrypto()!;
    assert.equal(await alice2Crypto.userHasCrossSigningKeys(a.userId), true);
    const status2 = await alice2Crypto.getDeviceVerificationStatus(a.userId, a.deviceId);
    assert.equal(status2?.signedByOwner, true, 'the first device is cross-signed by its owner');

    // Bob, who shares no room with Alice yet, can still download her cross-signing keys.
    const bob = await cryptoClient(b);
    assert.equal(await bob.getCrypto()!.userHasCrossSigningKeys(a.userId, true), true);
  });

  it('creates a key backup whose auth_data the SDK trusts, and reads it back', async () => {
    const a = await server.register();
    const alice = await cryptoClient(a);
    const crypto = alice.getCrypto()!;
    await crypto.bootstrapCrossSigning({
      setupNewCrossSigning: true,
      authUploadDeviceSigningKeys: async (makeRequest) => {
        await makeRequest(passwordAuth(a));
      },
    });
    await crypto.resetKeyBackup();
    // resetKeyBackup starts its own re-check without waiting for it: force one, as Element does.
    await crypto.checkKeyBackupAndEnable();
    const info = await crypto.getKeyBackupInfo();
    assert.ok(info?.version, 'a backup version exists');
    const trust = await crypto.isKeyBackupTrusted(info!);
    assert.equal(trust.trusted, true, 'auth_data is signed by a key the SDK trusts');
    const version = await crypto.getActiveSessionBackupVersion();
    assert.equal(version, info!.version);
    const raw = await a.get('/_matrix/client/v3/room_keys/version');
    assert.equal(raw.body.version, info!.version);
    assert.equal(raw.body.algorithm, 'm.megolm_backup.v1.curve25519-aes-sha2');
  });
});

// matrix-js-sdk leaves request timers behind that would hold this file's process for ~110 s.
after(() => releaseProcess());
