// The iterative auth checks of state resolution v2/v2.1.
import { authEventTypesFor } from '../auth-events.js';
import { checkEventAuth } from '../auth-rules.js';
import type { RoomVersion } from '../room-versions.js';
import { stateKey, type RoomEvent, type StateKey, type StateMap } from '../types.js';
import type { EventCache } from './event-cache.js';

const CREATE_KEY = stateKey('m.room.create', '');

/**
 * The state keys the auth rules may read for `ev`. The create event is added for every version:
 * v12 no longer cites it, but the rules still read it (creators, m.federate), and it comes from
 * the event's implied auth event.
 */
export function authStateKeys(ev: RoomEvent, version: RoomVersion): StateKey[] {
  const keys = authEventTypesFor(ev, version).map(([t, sk]) => stateKey(t, sk));
  if (!keys.includes(CREATE_KEY)) keys.push(CREATE_KEY);
  return keys;
}

/**
 * Applies `eventIds` in order on top of `base`, keeping each state event the auth rules allow
 * against the state built so far. A key the state does not have yet is read from the event's
 * own auth events, unless that auth event was rejected. Returns only the keys that changed
 * (callers layer it over `base`), so a large base state is never copied.
 *
 * Every event in `eventIds` must already be in the cache; this preloads what it reads.
 */
export async function iterativeAuthChecks(
  cache: EventCache,
  version: RoomVersion,
  eventIds: readonly string[],
  base: ReadonlyMap<StateKey, string>,
  changes: StateMap = new Map(),
): Promise<StateMap> {
  const events: RoomEvent[] = [];
  const keysOf = new Map<string, StateKey[]>();
  const toLoad = new Set<string>();
  for (const id of eventIds) {
    const ev = cache.get(id);
    if (!ev || typeof ev.state_key !== 'string') continue;
    events.push(ev);
    const keys = authStateKeys(ev, version);
    keysOf.set(id, keys);
    for (const aid of cache.authEdges(ev)) toLoad.add(aid);
    for (const k of keys) {
      const sid = changes.get(k) ?? base.get(k);
      if (sid !== undefined) toLoad.add(sid);
    }
  }
  await cache.load(toLoad);
  for (const ev of events) toLoad.add(ev.event_id);
  await cache.loadRejections(toLoad);
  // Events this pass admits become state later in the pass, so they are read too; they are in
  // `events` and already loaded, and their rejection status was just fetched with the rest.

  const authState = new Map<StateKey, RoomEvent>();
  const lookup = (type: string, sk: string): RoomEvent | undefined => authState.get(stateKey(type, sk));

  for (const ev of events) {
    // Synapse keeps previously rejected events out of state even when they would now pass; the
    // spec would re-admit events rejected only for the state at them, but a server cannot tell
    // those apart here, and converging with the deployed majority matters more.
    if (cache.isRejected(ev.event_id)) continue;

    authState.clear();
    for (const aid of cache.authEdges(ev)) {
      const aev = cache.get(aid);
      if (!aev || typeof aev.state_key !== 'string' || cache.isRejected(aid)) continue;
      authState.set(stateKey(aev.type, aev.state_key), aev);
    }
    for (const k of keysOf.get(ev.event_id)!) {
      const sid = changes.get(k) ?? base.get(k);
      if (sid === undefined) continue;
      const sev = cache.get(sid);
      if (sev && !cache.isRejected(sid)) authState.set(k, sev);
    }

    if (checkEventAuth(ev, lookup, version).allowed) {
      changes.set(stateKey(ev.type, ev.state_key!), ev.event_id);
    }
  }
  return changes;
}
