// Helpers for the sync spec tests: /sync calls, rooms and messages over raw HTTP.
import assert from 'node:assert/strict';
import type { TestClient } from './client.js';

export async function sync(c: TestClient, params: Record<string, string> = {}): Promise<any> {
  const qs = new URLSearchParams(params).toString();
  const r = await c.get(`/_matrix/client/v3/sync${qs ? `?${qs}` : ''}`);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body;
}

export async function createRoom(c: TestClient, body: Record<string, unknown> = {}): Promise<string> {
  const r = await c.post('/_matrix/client/v3/createRoom', body);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body.room_id;
}

export async function join(c: TestClient, roomId: string): Promise<void> {
  const r = await c.post(`/_matrix/client/v3/join/${encodeURIComponent(roomId)}`, {});
  assert.equal(r.status, 200, JSON.stringify(r.body));
}

let txn = 0;
export async function send(c: TestClient, roomId: string, content: Record<string, unknown>, type = 'm.room.message'): Promise<string> {
  const r = await c.put(`/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/send/${type}/t${Date.now()}_${++txn}`, content);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body.event_id;
}

/** PUT of a text message with the transaction id given; the response, whatever its status. */
export function sendText(c: TestClient, roomId: string, txnId: string, body: string) {
  return c.put(`/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/send/m.room.message/${txnId}`, { msgtype: 'm.text', body });
}

/** A room with `owner` and `others` joined. */
export async function sharedRoom(owner: TestClient, ...others: TestClient[]): Promise<string> {
  const roomId = await createRoom(owner, { invite: others.map((o) => o.userId) });
  for (const o of others) await join(o, roomId);
  return roomId;
}

export const enc = encodeURIComponent;

/**
 * Long-polls from `since` until `pred` holds for a response (other changes, e.g. presence, may
 * wake the sync first). Returns that response.
 */
export async function syncUntil(c: TestClient, since: string, pred: (res: any) => boolean, timeoutMs = 10_000, params: Record<string, string> = {}): Promise<any> {
  const deadline = Date.now() + timeoutMs;
  let token = since;
  for (;;) {
    const left = deadline - Date.now();
    assert.ok(left > 0, 'sync never showed what was expected');
    const res = await sync(c, { ...params, since: token, timeout: String(left) });
    if (pred(res)) return res;
    token = res.next_batch;
  }
}
