// State resolution v2 (room versions 2-11) and v2.1 (room version 12, MSC4297).
import type { RoomVersion } from '../room-versions.js';
import { stateKey, type StateKey, type StateMap } from '../types.js';
import { authDifference, conflictedSubgraph } from './auth-chain.js';
import type { EventCache } from './event-cache.js';
import { iterativeAuthChecks } from './iterative-auth.js';
import { mainlineSort } from './mainline.js';
import { lexicographicalTopologicalSort, powerKeyLess, type PowerSortKey } from './ordering.js';
import { isPowerEvent, senderPowerLevel } from './power.js';

const POWER_LEVELS_KEY = stateKey('m.room.power_levels', '');

export interface SeparatedState {
  unconflicted: StateMap;
  /** Conflicted keys and the distinct event ids they have across the state sets. */
  conflicted: Map<StateKey, Set<string>>;
}

/**
 * v2 definition: a key is unconflicted only if every state set has it with the same event; a
 * key missing from some set is conflicted (unlike v1).
 */
export function separateV2(stateSets: readonly StateMap[]): SeparatedState {
  const unconflicted: StateMap = new Map();
  const conflicted = new Map<StateKey, Set<string>>();
  const [first, ...rest] = stateSets;
  const consider = (key: StateKey): void => {
    if (unconflicted.has(key) || conflicted.has(key)) return;
    const v0 = first.get(key);
    let same = v0 !== undefined;
    for (const s of rest) {
      if (s.get(key) !== v0) {
        same = false;
        break;
      }
    }
    if (same) {
      unconflicted.set(key, v0!);
      return;
    }
    const ids = new Set<string>();
    for (const s of stateSets) {
      const v = s.get(key);
      if (v !== undefined) ids.add(v);
    }
    conflicted.set(key, ids);
  };
  for (const s of stateSets) for (const key of s.keys()) consider(key);
  return { unconflicted, conflicted };
}

/** Builds the auth DAG restricted to the full conflicted set, from the power events down. */
function powerGraph(cache: EventCache, fullConflicted: ReadonlySet<string>, powerIds: string[]): Map<string, Set<string>> {
  const graph = new Map<string, Set<string>>();
  const stack = [...powerIds];
  while (stack.length > 0) {
    const id = stack.pop()!;
    if (graph.has(id)) continue;
    const edges = new Set<string>();
    graph.set(id, edges);
    for (const aid of cache.authEdges(cache.get(id)!)) {
      // Only auth events inside the full conflicted set join the graph, and the walk does not
      // go on through the others (as in Synapse and Ruma): those are in every state set's auth
      // chain and not in contention.
      if (!fullConflicted.has(aid)) continue;
      edges.add(aid);
      if (!graph.has(aid)) stack.push(aid);
    }
  }
  return graph;
}

export async function resolveV2(version: RoomVersion, stateSets: readonly StateMap[], cache: EventCache): Promise<StateMap> {
  const { unconflicted, conflicted } = separateV2(stateSets);
  if (conflicted.size === 0) return unconflicted;

  const conflictedIds = new Set<string>();
  for (const ids of conflicted.values()) for (const id of ids) conflictedIds.add(id);

  const unconflictedIds = [...new Set(unconflicted.values())];
  const conflictedPerSet = stateSets.map((s) => {
    const ids: string[] = [];
    for (const key of conflicted.keys()) {
      const id = s.get(key);
      if (id !== undefined) ids.push(id);
    }
    return ids;
  });
  const authDiff = await authDifference(cache, unconflictedIds, conflictedPerSet);

  const candidates = new Set<string>(conflictedIds);
  for (const id of authDiff) candidates.add(id);
  if (version.stateResolution === 'v2.1') {
    for (const id of await conflictedSubgraph(cache, conflictedIds)) candidates.add(id);
  }
  await cache.load(candidates);
  // Events the source cannot produce take no part, as in Synapse.
  const fullConflicted = new Set<string>();
  for (const id of candidates) if (cache.has(id)) fullConflicted.add(id);

  // Step 1: power events and their auth ancestors inside the full conflicted set, in reverse
  // topological power order.
  const powerIds: string[] = [];
  for (const id of fullConflicted) if (isPowerEvent(cache.get(id)!)) powerIds.push(id);
  const graph = powerGraph(cache, fullConflicted, powerIds);
  const authOfGraph: string[] = [];
  for (const id of graph.keys()) authOfGraph.push(...cache.authEdges(cache.get(id)!));
  await cache.load(authOfGraph);
  const keys = new Map<string, PowerSortKey>();
  for (const id of graph.keys()) {
    const ev = cache.get(id)!;
    keys.set(id, { id, power: senderPowerLevel(ev, cache, version), ts: ev.origin_server_ts });
  }
  const sortedPower = lexicographicalTopologicalSort(graph, keys, powerKeyLess, (k) => k.id);

  // Step 2: v2 replays onto the unconflicted state; v2.1 onto the empty state, so a conflicted
  // event is checked against what was replayed before it, or else its own auth events, and
  // never against unconflicted state from another point of the room's history, which is what
  // let v2 reset state (MSC4297).
  const base: ReadonlyMap<StateKey, string> = version.stateResolution === 'v2.1' ? new Map() : unconflicted;
  const changes = await iterativeAuthChecks(cache, version, sortedPower, base);

  // Step 3 and 4: everything else, in mainline order against the power levels just resolved.
  const leftover: string[] = [];
  for (const id of fullConflicted) if (!graph.has(id)) leftover.push(id);
  const resolvedPl = changes.get(POWER_LEVELS_KEY) ?? base.get(POWER_LEVELS_KEY);
  const sortedLeftover = await mainlineSort(cache, leftover, resolvedPl);
  await iterativeAuthChecks(cache, version, sortedLeftover, base, changes);

  // Step 5: the unconflicted state has the last word.
  const result: StateMap = new Map(unconflicted);
  for (const [k, v] of changes) if (!result.has(k)) result.set(k, v);
  return result;
}
