// Public entry point of state resolution: picks the algorithm the room version names.
import type { RoomVersion } from '../room-versions.js';
import type { StateMap } from '../types.js';
import { EventCache, type StateResEventSource } from './event-cache.js';
import { resolveV1 } from './v1.js';
import { resolveV2 } from './v2.js';

export type { StateResEventSource } from './event-cache.js';

/**
 * Resolves the given room states into one (the state before an event whose prev_events ended in
 * these states). Pure: events are only read through `source`, in batches, and only those the
 * algorithm needs (the conflicted events, their auth chains, and the auth events the checks
 * read). The result does not depend on the order of `stateSets` or of the maps' entries.
 *
 * Events that fail the auth checks during resolution are left out of the result; events the
 * source reports as rejected never enter it.
 */
export async function resolveState(
  version: RoomVersion,
  stateSets: StateMap[],
  source: StateResEventSource,
): Promise<StateMap> {
  // Identical maps add nothing to any of the algorithms; dropping them keeps the common
  // "every prev event has the same state" case on the fast path.
  const distinct: StateMap[] = [];
  for (const s of stateSets) if (!distinct.some((d) => d === s || sameState(d, s))) distinct.push(s);
  if (distinct.length === 0) return new Map();
  if (distinct.length === 1) return new Map(distinct[0]);

  const cache = new EventCache(source, version);
  switch (version.stateResolution) {
    case 'v1':
      return resolveV1(version, distinct, cache);
    case 'v2':
    case 'v2.1':
      return resolveV2(version, distinct, cache);
  }
}

function sameState(a: StateMap, b: StateMap): boolean {
  if (a.size !== b.size) return false;
  for (const [k, v] of a) if (b.get(k) !== v) return false;
  return true;
}
