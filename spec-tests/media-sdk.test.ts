// A real client library against the media repository: matrix-js-sdk uploads a picture the way
// Element does, fetches it and its thumbnail through the authenticated URLs it builds, and
// sends it in a room as an m.image event that another user follows back to the bytes.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { releaseProcess } from './support/sdk.js';
import { createClient, type MatrixClient } from 'matrix-js-sdk';
import { startTestServer, type TestServer } from './support/server.js';
import type { TestClient } from './support/client.js';
import { dimensions, rawFetch, testImage } from './support/media.js';

describe('matrix-js-sdk media', () => {
  let server: TestServer;
  let alice: TestClient;
  let sdk: MatrixClient;
  before(async () => {
    server = await startTestServer();
    alice = await server.register();
    sdk = createClient({ baseUrl: server.baseUrl, accessToken: alice.token!, userId: alice.userId, deviceId: alice.deviceId });
  });
  after(async () => {
    sdk.stopClient();
    await server.stop();
  });

  it('sees authenticated media support in /versions', async () => {
    // The SDK switches mxcUrlToHttp to /_matrix/client/v1/media when the server lists v1.11.
    assert.equal(await sdk.isVersionSupported('v1.11'), true);
  });

  it('uploads an image, reads it back with a thumbnail, and sends it as m.image', async () => {
    const png = await testImage(640, 480, 'png');
    const progress: number[] = [];
    const { content_uri } = await sdk.uploadContent(new Blob([png], { type: 'image/png' }), {
      name: 'cat picture.png',
      progressHandler: (p) => progress.push(p.loaded),
    });
    assert.match(content_uri, new RegExp(`^mxc://${server.serverName}/[A-Za-z0-9_-]+$`));

    const cfg = await sdk.getMediaConfig();
    assert.ok(cfg['m.upload.size']! >= png.length);

    const url = sdk.mxcUrlToHttp(content_uri, undefined, undefined, undefined, false, true, true)!;
    assert.ok(url.startsWith(`${server.baseUrl}/_matrix/client/v1/media/download/`), url);
    const unauthenticated = await rawFetch(url);
    assert.equal(unauthenticated.status, 401);
    const d = await rawFetch(url, { token: alice.token });
    assert.equal(d.status, 200);
    assert.ok(d.bytes.equals(png));
    assert.equal(d.headers.get('content-type'), 'image/png');
    assert.equal(d.headers.get('content-disposition'), 'inline; filename="cat picture.png"');

    const thumbUrl = sdk.mxcUrlToHttp(content_uri, 96, 96, 'crop', false, true, true)!;
    assert.match(thumbUrl, /\/_matrix\/client\/v1\/media\/thumbnail\//);
    const t = await rawFetch(thumbUrl, { token: alice.token });
    assert.equal(t.status, 200);
    const dims = await dimensions(t.bytes);
    assert.deepEqual([dims.width, dims.height], [96, 96]);

    // Then it sends the m.image event, as Element does, and another user finds the picture
    // through the event and downloads it.
    const bob = await server.register();
    const { room_id: roomId } = await sdk.createRoom({ preset: 'public_chat' as never, name: 'pictures' });
    const thumb = await testImage(96, 72, 'jpeg');
    const { content_uri: thumbUri } = await sdk.uploadContent(new Blob([thumb], { type: 'image/jpeg' }), { name: 'thumbnail.jpg' });
    const content = {
      msgtype: 'm.image',
      body: 'cat picture.png',
      url: content_uri,
      info: { mimetype: 'image/png', size: png.length, w: 640, h: 480, thumbnail_url: thumbUri, thumbnail_info: { mimetype: 'image/jpeg', size: thumb.length, w: 96, h: 72 } },
    };
    const { event_id } = await sdk.sendEvent(roomId, 'm.room.message' as never, content as never);
    assert.equal((await bob.post(`/_matrix/client/v3/join/${encodeURIComponent(roomId)}`, {})).status, 200);
    const history = await bob.get(`/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/messages?dir=b&limit=20`);
    assert.equal(history.status, 200);
    const event = history.body.chunk.find((e: { event_id: string }) => e.event_id === event_id);
    assert.ok(event, 'the m.image event is in the room history');
    assert.equal(event.content.msgtype, 'm.image');
    const viaEvent = await rawFetch(sdk.mxcUrlToHttp(event.content.url, undefined, undefined, undefined, false, true, true)!, { token: bob.token });
    assert.ok(viaEvent.bytes.equals(png));
    assert.equal(viaEvent.bytes.length, event.content.info.size);
    const thumbViaEvent = await rawFetch(sdk.mxcUrlToHttp(event.content.info.thumbnail_url, undefined, undefined, undefined, false, true, true)!, {
      token: bob.token,
    });
    assert.ok(thumbViaEvent.bytes.equals(thumb));
  });

  it('surfaces the server limit as an SDK error', async () => {
    const small = await startTestServer({ media: { max_upload_size: 1024 } });
    try {
      const bob = await small.register();
      const client = createClient({ baseUrl: small.baseUrl, accessToken: bob.token!, userId: bob.userId });
      await assert.rejects(client.uploadContent(new Blob([new Uint8Array(4096)]), { name: 'big.bin' }), (err: { errcode?: string; httpStatus?: number }) => {
        assert.equal(err.httpStatus, 413);
        assert.equal(err.errcode, 'M_TOO_LARGE');
        return true;
      });
      client.stopClient();
    } finally {
      await small.stop();
    }
  });
});

// matrix-js-sdk leaves request timers behind that would hold this file's process for ~110 s.
after(() => releaseProcess());
