// Auth chains, the auth difference and (v2.1) the conflicted state subgraph.
import type { EventCache } from './event-cache.js';

/**
 * Every event reachable from `start` through auth events, `start` included. Walks breadth first
 * so each level of the auth DAG is one batched fetch. Auth events the source does not have are
 * left out (they cannot take part in resolution anyway).
 */
export async function authClosure(cache: EventCache, start: Iterable<string>): Promise<Set<string>> {
  const seen = new Set<string>(start);
  let frontier = [...seen];
  while (frontier.length > 0) {
    await cache.load(frontier);
    const next: string[] = [];
    for (const id of frontier) {
      const ev = cache.get(id);
      if (!ev) continue;
      for (const aid of cache.authEdges(ev)) {
        if (seen.has(aid)) continue;
        seen.add(aid);
        next.push(aid);
      }
    }
    frontier = next;
  }
  // Events the source does not have (start ids included) have no chain to contribute; callers
  // that must count a missing start id add it back themselves.
  for (const id of seen) if (!cache.has(id)) seen.delete(id);
  return seen;
}

/** Auth chain of a set of events, the events themselves included (as Synapse counts it). */
async function fullChain(cache: EventCache, ids: string[]): Promise<Set<string>> {
  if (ids.length === 0) return new Set();
  if (cache.source.getAuthChainIds) {
    const chain = await cache.source.getAuthChainIds(ids);
    const out = new Set(chain);
    for (const id of ids) out.add(id);
    return out;
  }
  const out = await authClosure(cache, ids);
  // A state event the source has lost still counts as being in its own state set's chain.
  for (const id of ids) out.add(id);
  return out;
}

/**
 * The auth difference ∪Cᵢ − ∩Cᵢ, where Cᵢ is the auth chain of state set i including the state
 * events themselves.
 *
 * Cᵢ = A ∪ Bᵢ with A the chain of the unconflicted events (common to every set) and Bᵢ the chain
 * of set i's events at the conflicted keys, so ∪Cᵢ − ∩Cᵢ = (∪Bᵢ − ∩Bᵢ) − A. That keeps the
 * expensive part (A, the whole room's state) to one membership test per candidate, and lets a
 * store with an auth chain index answer it without loading the room.
 */
export async function authDifference(
  cache: EventCache,
  unconflictedIds: string[],
  conflictedPerSet: string[][],
): Promise<Set<string>> {
  const chains: Set<string>[] = [];
  for (const ids of conflictedPerSet) chains.push(await fullChain(cache, ids));

  const candidates = new Set<string>();
  for (const chain of chains) {
    for (const id of chain) {
      if (candidates.has(id)) continue;
      if (!chains.every((c) => c.has(id))) candidates.add(id);
    }
  }
  if (candidates.size === 0) return candidates;

  // Only membership of the few candidates is asked of A, so A is not copied or extended with
  // the (room-sized) unconflicted ids themselves; those are tested separately.
  const unconflicted = new Set(unconflictedIds);
  for (const id of candidates) if (unconflicted.has(id)) candidates.delete(id);
  if (candidates.size === 0 || unconflictedIds.length === 0) return candidates;
  const common = cache.source.getAuthChainIds
    ? await cache.source.getAuthChainIds(unconflictedIds)
    : await authClosure(cache, unconflictedIds);
  for (const id of candidates) if (common.has(id)) candidates.delete(id);
  return candidates;
}

/**
 * The conflicted state subgraph (room version 12, MSC4297): every event on an auth path from one
 * conflicted event to another, endpoints included. An event of the conflicted events' auth
 * closure is on such a path exactly when a conflicted event is in its own auth chain (or is it).
 */
export async function conflictedSubgraph(cache: EventCache, conflicted: ReadonlySet<string>): Promise<Set<string>> {
  const closure = await authClosure(cache, conflicted);
  // Post-order over the closure so every auth event is decided before the events citing it;
  // iterative because auth chains can be thousands of events deep.
  const reaches = new Map<string, boolean>();
  const stack: Array<[string, number]> = [];
  for (const root of closure) {
    if (reaches.has(root)) continue;
    reaches.set(root, false);
    stack.push([root, 0]);
    while (stack.length > 0) {
      const top = stack[stack.length - 1];
      const [id, i] = top;
      const ev = cache.get(id);
      const edges = ev ? cache.authEdges(ev) : [];
      if (i < edges.length) {
        top[1] = i + 1;
        const aid = edges[i];
        if (closure.has(aid) && !reaches.has(aid)) {
          // Mark on entry so a (v1/v2-only) auth cycle cannot spin forever.
          reaches.set(aid, false);
          stack.push([aid, 0]);
        }
        continue;
      }
      stack.pop();
      let r = conflicted.has(id);
      if (!r) for (const aid of edges) if (reaches.get(aid)) { r = true; break; }
      reaches.set(id, r);
    }
  }
  const out = new Set<string>();
  for (const [id, r] of reaches) if (r) out.add(id);
  for (const id of conflicted) out.add(id);
  return out;
}
