import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { releaseProcess } from './support/sdk.js';
import { startTestServer, type TestServer } from './support/server.js';

const TURN_SECRET = 'coturn-static-auth-secret';
const TURN_URIS = ['turn:turn.example.com:3478?transport=udp', 'turns:turn.example.com:5349?transport=tcp'];

describe('calls, OpenID and the answers Element expects at start-up', () => {
  let plain: TestServer;
  let withTurn: TestServer;
  before(async () => {
    plain = await startTestServer();
    withTurn = await startTestServer({
      turn: { uris: TURN_URIS, shared_secret: TURN_SECRET, user_lifetime_seconds: 600, allow_guests: false },
      well_known: { rtc_foci: [{ type: 'livekit', livekit_service_url: 'https://livekit-jwt.example.com' }] },
      registration: { enabled: true, shared_secret: 'test-shared-secret', require_token: false, allow_guests: true },
    });
  });
  after(async () => {
    await plain.stop();
    await withTurn.stop();
  });

  it('answers {} for TURN when none is configured', async () => {
    const alice = await plain.register();
    // The spec's response schema has no "no TURN" answer; {} is what Synapse sends and what
    // matrix-js-sdk and Element treat as "call without TURN", so the schema check is skipped.
    const r = await alice.get('/_matrix/client/v3/voip/turnServer', { noSchema: true });
    assert.equal(r.status, 200);
    assert.deepEqual(r.body, {});
  });

  it('hands out coturn use-auth-secret credentials that verify against the shared secret', async () => {
    const alice = await withTurn.register();
    const before = Math.floor(Date.now() / 1000);
    const r = await alice.get('/_matrix/client/v3/voip/turnServer');
    assert.equal(r.status, 200);
    assert.deepEqual(r.body.uris, TURN_URIS);
    assert.equal(r.body.ttl, 600);
    const [expiry, ...rest] = r.body.username.split(':');
    assert.equal(rest.join(':'), alice.userId);
    assert.ok(Number(expiry) >= before + 600 && Number(expiry) <= Math.floor(Date.now() / 1000) + 600, 'expiry is now + ttl');
    // What coturn does with static-auth-secret: base64(HMAC-SHA1(secret, username)).
    const expected = createHmac('sha1', TURN_SECRET).update(r.body.username).digest('base64');
    assert.equal(r.body.password, expected);
  });

  it('refuses TURN credentials to guests when allow_guests is off', async () => {
    const guest = await withTurn.anon().post('/_matrix/client/v3/register?kind=guest', {});
    assert.equal(guest.status, 200, JSON.stringify(guest.body));
    const r = await withTurn.anon().get('/_matrix/client/v3/voip/turnServer', { token: guest.body.access_token });
    assert.equal(r.status, 403);
    assert.equal(r.body.errcode, 'M_FORBIDDEN');
  });

  it('advertises configured MatrixRTC foci in /.well-known/matrix/client, and none otherwise', async () => {
    const r = await withTurn.anon().get('/.well-known/matrix/client');
    assert.deepEqual(r.body['org.matrix.msc4143.rtc_foci'], [{ type: 'livekit', livekit_service_url: 'https://livekit-jwt.example.com' }]);
    const none = await plain.anon().get('/.well-known/matrix/client');
    assert.equal(none.body['org.matrix.msc4143.rtc_foci'], undefined);
  });

  it('issues an OpenID token that the federation userinfo endpoint resolves to the user', async () => {
    const alice = await plain.register();
    const r = await alice.post(`/_matrix/client/v3/user/${encodeURIComponent(alice.userId)}/openid/request_token`, {});
    assert.equal(r.status, 200);
    assert.equal(r.body.token_type, 'Bearer');
    assert.equal(r.body.matrix_server_name, plain.serverName);
    assert.equal(r.body.expires_in, 3600);
    const info = await plain.anon().get(`/_matrix/federation/v1/openid/userinfo?access_token=${encodeURIComponent(r.body.access_token)}`);
    assert.equal(info.status, 200);
    assert.deepEqual(info.body, { sub: alice.userId });
    // It is not an access token.
    const asAccess = await plain.anon().get('/_matrix/client/v3/account/whoami', { token: r.body.access_token });
    assert.equal(asAccess.status, 401);
  });

  it('refuses OpenID tokens for someone else, and unknown or missing tokens at userinfo', async () => {
    const alice = await plain.register();
    const bob = await plain.register();
    const other = await alice.post(`/_matrix/client/v3/user/${encodeURIComponent(bob.userId)}/openid/request_token`, {});
    assert.equal(other.status, 403);
    assert.equal(other.body.errcode, 'M_FORBIDDEN');
    const unknown = await plain.anon().get('/_matrix/federation/v1/openid/userinfo?access_token=nope');
    assert.equal(unknown.status, 401);
    assert.equal(unknown.body.errcode, 'M_UNKNOWN_TOKEN');
    const missing = await plain.anon().get('/_matrix/federation/v1/openid/userinfo');
    assert.equal(missing.status, 401);
    assert.equal(missing.body.errcode, 'M_MISSING_TOKEN');
    const noAuth = await plain.anon().post(`/_matrix/client/v3/user/${encodeURIComponent(bob.userId)}/openid/request_token`, {});
    assert.equal(noAuth.status, 401);
  });

  it("forgets a deactivated user's OpenID tokens", async () => {
    const alice = await plain.register();
    const r = await alice.post(`/_matrix/client/v3/user/${encodeURIComponent(alice.userId)}/openid/request_token`, {});
    await plain.hs.services.accounts.deactivateUser(alice.userId);
    const info = await plain.anon().get(`/_matrix/federation/v1/openid/userinfo?access_token=${encodeURIComponent(r.body.access_token)}`);
    assert.equal(info.status, 401);
  });

  it('answers the start-up calls with the empty answers the spec allows', async () => {
    const alice = await plain.register();
    assert.deepEqual((await alice.get('/_matrix/client/v3/thirdparty/protocols')).body, {});
    assert.deepEqual((await alice.get('/_matrix/client/v3/account/3pid')).body, { threepids: [] });
    for (const path of ['/_matrix/client/v3/login/sso/redirect?redirectUrl=https://app.element.io', '/_matrix/client/v3/login/sso/redirect/oidc-github']) {
      const r = await plain.anon().get(path);
      assert.equal(r.status, 404);
      assert.equal(r.body.errcode, 'M_UNRECOGNIZED');
    }
    assert.equal((await plain.anon().get('/_matrix/client/v3/account/3pid')).status, 401);
  });

  it('refuses a TURN config with a URI that is not turn: or turns:', async () => {
    await assert.rejects(startTestServer({ turn: { uris: ['http://turn.example.com'], user_lifetime_seconds: 600, allow_guests: true } }), /turn\.uris/);
  });
});

// matrix-js-sdk leaves request timers behind that would hold this file's process for ~110 s.
after(() => releaseProcess());
