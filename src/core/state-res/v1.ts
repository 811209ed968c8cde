// State resolution v1 (room version 1). The spec's prose leaves details open; every server
// converged on Synapse's reading, so this follows it: a key missing from some state sets is not
// a conflict, auth events come from the unconflicted state only, and a conflicted auth-relevant
// key stops at the last event in the chain that still passed.
import { createHash } from 'node:crypto';
import { authEventTypesFor } from '../auth-events.js';
import { checkEventAuth, type StateLookup } from '../auth-rules.js';
import type { RoomVersion } from '../room-versions.js';
import { splitStateKey, stateKey, type RoomEvent, type StateKey, type StateMap } from '../types.js';
import type { EventCache } from './event-cache.js';
import type { SeparatedState } from './v2.js';

const POWER_LEVELS_KEY = stateKey('m.room.power_levels', '');

/** v1 definition: only two different event ids for one key make a conflict. */
export function separateV1(stateSets: readonly StateMap[]): SeparatedState {
  const unconflicted: StateMap = new Map();
  const conflicted = new Map<StateKey, Set<string>>();
  for (const s of stateSets) {
    for (const [key, id] of s) {
      const seen = conflicted.get(key);
      if (seen) {
        seen.add(id);
        continue;
      }
      const prev = unconflicted.get(key);
      if (prev === undefined) unconflicted.set(key, id);
      else if (prev !== id) {
        unconflicted.delete(key);
        conflicted.set(key, new Set([prev, id]));
      }
    }
  }
  return { unconflicted, conflicted };
}

interface Ranked {
  ev: RoomEvent;
  depth: number;
  sha1: string;
}

/** Highest depth first, then lowest sha1(event_id) hex digest. */
function ordered(events: RoomEvent[]): RoomEvent[] {
  const ranked: Ranked[] = events.map((ev) => ({
    ev,
    depth: Math.trunc(Number(ev.depth)),
    sha1: createHash('sha1').update(ev.event_id, 'utf8').digest('hex'),
  }));
  ranked.sort((a, b) => (a.depth !== b.depth ? b.depth - a.depth : a.sha1 < b.sha1 ? -1 : a.sha1 > b.sha1 ? 1 : 0));
  return ranked.map((r) => r.ev);
}

function lookupOf(map: ReadonlyMap<StateKey, RoomEvent>): StateLookup {
  return (type, sk) => map.get(stateKey(type, sk));
}

function authKeys(ev: RoomEvent, version: RoomVersion): StateKey[] {
  return authEventTypesFor(ev, version).map(([t, sk]) => stateKey(t, sk));
}

/**
 * Auth-relevant conflicts: starting from the oldest event, each next one must pass auth against
 * the state with its predecessor applied; the first failure ends the chain at the predecessor.
 */
function resolveAuthEvents(version: RoomVersion, events: RoomEvent[], authEvents: ReadonlyMap<StateKey, RoomEvent>): RoomEvent {
  const chain = ordered(events).reverse();
  const local = new Map<StateKey, RoomEvent>();
  for (const ev of events) {
    for (const k of authKeys(ev, version)) {
      const a = authEvents.get(k);
      if (a) local.set(k, a);
    }
  }
  const lookup = lookupOf(local);
  let prev = chain[0];
  for (const ev of chain.slice(1)) {
    local.set(stateKey(prev.type, prev.state_key!), prev);
    if (!checkEventAuth(ev, lookup, version).allowed) return prev;
    prev = ev;
  }
  return prev;
}

/** Other conflicts: the newest event that passes auth, or failing all, the oldest. */
function resolveNormalEvents(version: RoomVersion, events: RoomEvent[], authEvents: ReadonlyMap<StateKey, RoomEvent>): RoomEvent {
  const lookup = lookupOf(authEvents);
  const list = ordered(events);
  for (const ev of list) if (checkEventAuth(ev, lookup, version).allowed) return ev;
  return list[list.length - 1];
}

export async function resolveV1(version: RoomVersion, stateSets: readonly StateMap[], cache: EventCache): Promise<StateMap> {
  const { unconflicted, conflicted } = separateV1(stateSets);
  if (conflicted.size === 0) return unconflicted;

  const conflictedIds = new Set<string>();
  for (const ids of conflicted.values()) for (const id of ids) conflictedIds.add(id);
  await cache.load(conflictedIds);

  // Auth events for the conflicted events come from the unconflicted state only.
  const authIds = new Map<StateKey, string>();
  for (const id of conflictedIds) {
    const ev = cache.get(id);
    if (!ev) continue;
    for (const k of authKeys(ev, version)) {
      if (authIds.has(k)) continue;
      const uid = unconflicted.get(k);
      if (uid !== undefined) authIds.set(k, uid);
    }
  }
  await cache.load(authIds.values());

  const result: StateMap = new Map(unconflicted);
  const conflictedEvents = new Map<StateKey, RoomEvent[]>();
  for (const [key, ids] of conflicted) {
    const evs: RoomEvent[] = [];
    for (const id of ids) {
      const ev = cache.get(id);
      if (ev) evs.push(ev);
    }
    // With only one candidate left there is nothing to resolve (and none: the key is dropped).
    if (evs.length === 1) result.set(key, evs[0].event_id);
    else if (evs.length > 1) conflictedEvents.set(key, evs);
  }

  const authEvents = new Map<StateKey, RoomEvent>();
  for (const [k, id] of authIds) {
    const ev = cache.get(id);
    if (ev) authEvents.set(k, ev);
  }

  // Power levels first, then join rules, then memberships, each pass seeing the earlier
  // passes' winners; within a pass keys are resolved independently of each other.
  const resolved = new Map<StateKey, RoomEvent>();
  const pl = conflictedEvents.get(POWER_LEVELS_KEY);
  if (pl) resolved.set(POWER_LEVELS_KEY, resolveAuthEvents(version, pl, authEvents));
  for (const [k, ev] of resolved) authEvents.set(k, ev);

  for (const type of ['m.room.join_rules', 'm.room.member']) {
    const pass = new Map<StateKey, RoomEvent>();
    for (const [key, evs] of conflictedEvents) {
      if (splitStateKey(key)[0] === type) pass.set(key, resolveAuthEvents(version, evs, authEvents));
    }
    for (const [k, ev] of pass) {
      resolved.set(k, ev);
      authEvents.set(k, ev);
    }
  }

  for (const [key, evs] of conflictedEvents) {
    if (!resolved.has(key)) resolved.set(key, resolveNormalEvents(version, evs, authEvents));
  }

  for (const [k, ev] of resolved) result.set(k, ev.event_id);
  return result;
}
