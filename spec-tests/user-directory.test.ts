// POST /user_directory/search: whom a user can find (room sharers, members of public rooms, or
// everyone when configured), how names match (word prefixes of the localpart and display name,
// case-insensitive), limits, and the requests it refuses.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { TestClient } from './support/client.js';
import { startTestServer, type TestServer } from './support/server.js';
import { createRoom, join, sharedRoom } from './support/sync.js';

const enc = encodeURIComponent;

async function search(c: TestClient, body: unknown): Promise<{ results: { user_id: string; display_name?: string; avatar_url?: string }[]; limited: boolean }> {
  const r = await c.post('/_matrix/client/v3/user_directory/search', body);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body;
}

async function found(c: TestClient, term: string): Promise<string[]> {
  return (await search(c, { search_term: term, limit: 50 })).results.map((u) => u.user_id);
}

async function setProfile(c: TestClient, displayname: string, avatarUrl?: string): Promise<void> {
  const r = await c.put(`/_matrix/client/v3/profile/${enc(c.userId)}/displayname`, { displayname });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  if (avatarUrl !== undefined) {
    const a = await c.put(`/_matrix/client/v3/profile/${enc(c.userId)}/avatar_url`, { avatar_url: avatarUrl });
    assert.equal(a.status, 200, JSON.stringify(a.body));
  }
}

describe('user directory', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer();
  });
  after(() => server.stop());

  it('finds a user who shares a private room, by localpart or display name word prefix, any case, with the profile', async () => {
    const searcher = await server.register('searcher_one');
    const john = await server.register('john.smith');
    await setProfile(john, 'Johnny Appleseed (Work)', 'mxc://localhost/johnavatar');
    await sharedRoom(searcher, john);
    for (const term of ['john', 'JOHN', 'smi', 'Apple', 'appleseed', 'work', '@john.smith:localhost', 'john smith', 'Johnny apple']) {
      assert.deepEqual(await found(searcher, term), [john.userId], `search ${JSON.stringify(term)}`);
    }
    const r = await search(searcher, { search_term: 'john' });
    assert.deepEqual(r, { results: [{ user_id: john.userId, display_name: 'Johnny Appleseed (Work)', avatar_url: 'mxc://localhost/johnavatar' }], limited: false });
    // Not a prefix of any word: inside a word, or words that do not all match.
    for (const term of ['ohn', 'mith', 'seed', 'john jones', 'localhost x']) {
      assert.deepEqual(await found(searcher, term), [], `search ${JSON.stringify(term)}`);
    }
  });

  it('does not find users who share no room, but finds members of public and world-readable rooms', async () => {
    const searcher = await server.register('searcher_two');
    const hidden = await server.register('hidden_hannah');
    const hiddenRoomMate = await server.register('hidden_harry');
    await sharedRoom(hidden, hiddenRoomMate);
    const pub = await server.register('public_paula');
    await createRoom(pub, { preset: 'public_chat' });
    const reader = await server.register('readable_rita');
    await createRoom(reader, { preset: 'private_chat', initial_state: [{ type: 'm.room.history_visibility', content: { history_visibility: 'world_readable' } }] });
    assert.deepEqual(await found(searcher, 'hidden'), []);
    assert.deepEqual(await found(searcher, 'public'), [pub.userId]);
    assert.deepEqual(await found(searcher, 'readable'), [reader.userId]);
    // A room that turns public makes its members findable, and turning private again hides them.
    const roomId = await createRoom(hidden);
    const setRule = (rule: string) => hidden.put(`/_matrix/client/v3/rooms/${enc(roomId)}/state/m.room.join_rules/`, { join_rule: rule });
    assert.equal((await setRule('public')).status, 200);
    assert.deepEqual(await found(searcher, 'hidden'), [hidden.userId]);
    assert.equal((await setRule('invite')).status, 200);
    assert.deepEqual(await found(searcher, 'hidden'), []);
  });

  it('forgets a room mate who left, and lists room mates before strangers in public rooms', async () => {
    const searcher = await server.register('searcher_three');
    const mate = await server.register('lena_mate');
    const stranger = await server.register('lena_stranger');
    const roomId = await sharedRoom(searcher, mate);
    await createRoom(stranger, { preset: 'public_chat' });
    assert.deepEqual(await found(searcher, 'lena'), [mate.userId, stranger.userId]);
    assert.equal((await mate.post(`/_matrix/client/v3/rooms/${enc(roomId)}/leave`, {})).status, 200);
    assert.deepEqual(await found(searcher, 'lena'), [stranger.userId]);
  });

  it('leaves out the searcher and deactivated users', async () => {
    const searcher = await server.register('gone_searcher');
    const gone = await server.register('gone_gary');
    const roomId = await createRoom(searcher, { preset: 'public_chat' });
    await join(gone, roomId);
    assert.deepEqual(await found(searcher, 'gone'), [gone.userId]);
    const d = await gone.post('/_matrix/client/v3/account/deactivate', {
      auth: { type: 'm.login.password', identifier: { type: 'm.id.user', user: gone.userId }, password: gone.password },
    });
    assert.equal(d.status, 200, JSON.stringify(d.body));
    assert.deepEqual(await found(searcher, 'gone'), []);
  });

  it('answers at most `limit` results (10 by default) and says when it cut the list', async () => {
    const searcher = await server.register('many_searcher');
    const roomId = await createRoom(searcher, { preset: 'public_chat' });
    const many: string[] = [];
    for (let i = 0; i < 11; i++) {
      const u = await server.register(`many_m${String(i).padStart(2, '0')}`);
      await join(u, roomId);
      many.push(u.userId);
    }
    const byDefault = await search(searcher, { search_term: 'many_m' });
    assert.equal(byDefault.results.length, 10);
    assert.equal(byDefault.limited, true);
    const three = await search(searcher, { search_term: 'many m', limit: 3 });
    assert.deepEqual(three.results.map((u) => u.user_id), many.slice(0, 3));
    assert.equal(three.limited, true);
    const all = await search(searcher, { search_term: 'many', limit: 11 });
    assert.equal(all.results.length, 11);
    assert.equal(all.limited, false);
    const none = await search(searcher, { search_term: 'many', limit: 0 });
    assert.deepEqual(none, { results: [], limited: true });
  });

  it('matches a new display name after a profile change', async () => {
    const searcher = await server.register('profile_searcher');
    const u = await server.register('renamed_user');
    await sharedRoom(searcher, u);
    assert.deepEqual(await found(searcher, 'Zebedee'), []);
    await setProfile(u, 'Zebedee Quux');
    assert.deepEqual(await found(searcher, 'zebedee'), [u.userId]);
  });

  it('keeps non-ASCII letters inside words', async () => {
    const searcher = await server.register('unicode_searcher');
    const u = await server.register('unicode_user');
    await setProfile(u, 'Élodie 李小龙-Ωmega');
    await sharedRoom(searcher, u);
    for (const term of ['Élo', '李', '李小', 'Ωmeg']) assert.deepEqual(await found(searcher, term), [u.userId], `search ${term}`);
    assert.deepEqual(await found(searcher, '小龙'), [], 'not a word prefix');
  });

  it('treats LIKE wildcards and punctuation as separators, not patterns', async () => {
    const searcher = await server.register('wild_searcher');
    const u = await server.register('wild_card');
    await sharedRoom(searcher, u);
    for (const term of ['%', '_', '%%', '\\', '.*', '', '   ', '@', '_%']) {
      assert.deepEqual(await search(searcher, { search_term: term }), { results: [], limited: false }, `search ${JSON.stringify(term)}`);
    }
    assert.deepEqual(await search(searcher, { search_term: '' }), { results: [], limited: false });
    assert.deepEqual(await found(searcher, 'wild%'), [u.userId], 'the % is a separator: "wild" matches');
  });

  it('refuses bad requests, guests and missing tokens', async () => {
    const c = await server.register('bad_requests');
    const path = '/_matrix/client/v3/user_directory/search';
    const cases: [unknown, number, string][] = [
      [{}, 400, 'M_MISSING_PARAM'],
      [{ search_term: 5 }, 400, 'M_BAD_JSON'],
      [{ search_term: null }, 400, 'M_BAD_JSON'],
      [{ search_term: 'a', limit: -1 }, 400, 'M_BAD_JSON'],
      [{ search_term: 'a', limit: '5' }, 400, 'M_BAD_JSON'],
      [{ search_term: 'a', limit: 1.5 }, 400, 'M_BAD_JSON'],
      [{ search_term: 'x'.repeat(513) }, 400, 'M_BAD_JSON'],
    ];
    for (const [body, status, errcode] of cases) {
      const r = await c.post(path, body);
      assert.equal(r.status, status, JSON.stringify(body));
      assert.equal(r.body.errcode, errcode, JSON.stringify(body));
    }
    // Odd but valid input is answered, not failed: a huge limit is capped, a lone surrogate is
    // just a character.
    assert.equal((await c.post(path, { search_term: 'a', limit: 1e300 })).status, 200);
    assert.equal((await c.request('POST', path, undefined, { raw: '{"search_term":"\\ud800bad"}', headers: { 'Content-Type': 'application/json' } })).status, 200);
    const notJson = await c.request('POST', path, undefined, { raw: '{nope', headers: { 'Content-Type': 'application/json' } });
    assert.equal(notJson.status, 400);
    assert.equal(notJson.body.errcode, 'M_NOT_JSON');
    const array = await c.request('POST', path, undefined, { raw: '[]', headers: { 'Content-Type': 'application/json' } });
    assert.equal(array.status, 400);
    const anon = await server.anon().post(path, { search_term: 'a' });
    assert.equal(anon.status, 401);
    assert.equal(anon.body.errcode, 'M_MISSING_TOKEN');
    const g = await server.anon().post('/_matrix/client/v3/register?kind=guest', {});
    assert.equal(g.status, 200, JSON.stringify(g.body));
    const guest = await server.anon().post(path, { search_term: 'a' }, { token: g.body.access_token });
    assert.equal(guest.status, 403);
    assert.equal(guest.body.errcode, 'M_GUEST_ACCESS_FORBIDDEN');
    const get = await c.get(path);
    assert.equal(get.status, 405);
  });
});

describe('user directory with search_all_users', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ user_directory: { search_all_users: true } });
  });
  after(() => server.stop());

  it('finds every local user, in a room or not, but not deactivated ones', async () => {
    const searcher = await server.register('all_searcher');
    const loner = await server.register('lonely_larry');
    const gone = await server.register('lonely_gone');
    assert.deepEqual(await found(searcher, 'lonely'), [gone.userId, loner.userId].sort());
    await server.hs.services.accounts.deactivateUser(gone.userId);
    assert.deepEqual(await found(searcher, 'lonely'), [loner.userId]);
  });
});
