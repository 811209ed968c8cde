// Mainline ordering (state resolution v2, step 3).
import type { RoomEvent } from '../types.js';
import type { EventCache } from './event-cache.js';
import { compareMainlineKeys, type MainlineSortKey } from './ordering.js';

/**
 * The power levels event among an event's auth events, or undefined. Auth events are cited in
 * the event's order and the first match wins, as in Synapse (a valid event cites at most one).
 */
function powerLevelsAuthEvent(ev: RoomEvent, cache: EventCache): RoomEvent | undefined {
  for (const aid of cache.authEdges(ev)) {
    const aev = cache.get(aid);
    if (aev && aev.type === 'm.room.power_levels' && aev.state_key === '') return aev;
  }
  return undefined;
}

/**
 * Orders `eventIds` by their position against the mainline of `powerLevelsId`, then
 * origin_server_ts, then event id. All of `eventIds` must be in the cache.
 */
export async function mainlineSort(
  cache: EventCache,
  eventIds: readonly string[],
  powerLevelsId: string | undefined,
): Promise<string[]> {
  if (eventIds.length === 0) return [];

  // The mainline: the resolved power levels event and its chain of power levels auth events.
  const mainline: string[] = [];
  const onMainline = new Set<string>();
  let cur = powerLevelsId;
  while (cur !== undefined && !onMainline.has(cur)) {
    mainline.push(cur);
    onMainline.add(cur);
    await cache.load([cur]);
    const ev = cache.get(cur);
    if (!ev) break;
    await cache.load(cache.authEdges(ev));
    cur = powerLevelsAuthEvent(ev, cache)?.event_id;
  }
  // Numbered from the oldest end (1) so that ascending order puts events based on older power
  // levels first; 0 (below every mainline event) for events whose chain never meets it.
  const position = new Map<string, number>();
  mainline.forEach((id, i) => position.set(id, mainline.length - i));

  // Walk every event's power levels chain down to the mainline, one batched fetch per step for
  // all of them, remembering the answer for every power levels event passed on the way so
  // shared history is walked once.
  const memo = new Map<string, number>();
  interface Walk {
    id: string;
    at: RoomEvent;
    passed: string[];
  }
  const result = new Map<string, number>();
  let walks: Walk[] = [];
  for (const id of eventIds) {
    const ev = cache.get(id)!;
    walks.push({ id, at: ev, passed: [] });
  }
  while (walks.length > 0) {
    const need: string[] = [];
    for (const w of walks) need.push(...cache.authEdges(w.at));
    await cache.load(need);
    const next: Walk[] = [];
    for (const w of walks) {
      let found: number | undefined = position.get(w.at.event_id) ?? memo.get(w.at.event_id);
      if (found === undefined) {
        const pl = powerLevelsAuthEvent(w.at, cache);
        if (!pl) found = 0;
        else if (w.passed.includes(pl.event_id)) found = 0; // a cycle: never meets the mainline
        else {
          w.passed.push(pl.event_id);
          w.at = pl;
          next.push(w);
          continue;
        }
      }
      result.set(w.id, found);
      for (const p of w.passed) memo.set(p, found);
    }
    walks = next;
  }

  const keys: MainlineSortKey[] = eventIds.map((id) => ({
    id,
    position: result.get(id)!,
    ts: cache.get(id)!.origin_server_ts,
  }));
  keys.sort(compareMainlineKeys);
  return keys.map((k) => k.id);
}
