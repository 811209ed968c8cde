// Orderings used by state resolution v2: a binary heap for Kahn's algorithm, the reverse
// topological power ordering and the mainline ordering. Every tie ends on the event id, so the
// orders are total and the result never depends on how the inputs were iterated.

/**
 * Compares strings by Unicode code point, which is how Python (Synapse) compares str. JS `<`
 * compares UTF-16 code units, which disagrees when an astral character (surrogate pair) meets a
 * BMP character above U+D7FF. Room v1/v2 event ids are free-form, so this can matter.
 */
export function compareCodePoints(a: string, b: string): number {
  if (a === b) return 0;
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    const xs = x >= 0xd800 && x <= 0xdfff;
    const ys = y >= 0xd800 && y <= 0xdfff;
    // A lone surrogate position against a BMP unit: the surrogate pair encodes a code point
    // above U+FFFF, so it sorts after every BMP character.
    if (xs !== ys) return xs ? 1 : -1;
    return x < y ? -1 : 1;
  }
  return a.length - b.length;
}

export class BinaryHeap<T> {
  private readonly items: T[] = [];

  constructor(private readonly less: (a: T, b: T) => boolean) {}

  get size(): number {
    return this.items.length;
  }

  push(item: T): void {
    const items = this.items;
    items.push(item);
    let i = items.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.less(items[i], items[parent])) break;
      [items[i], items[parent]] = [items[parent], items[i]];
      i = parent;
    }
  }

  pop(): T | undefined {
    const items = this.items;
    if (items.length === 0) return undefined;
    const top = items[0];
    const last = items.pop()!;
    if (items.length > 0) {
      items[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < items.length && this.less(items[l], items[m])) m = l;
        if (r < items.length && this.less(items[r], items[m])) m = r;
        if (m === i) break;
        [items[i], items[m]] = [items[m], items[i]];
        i = m;
      }
    }
    return top;
  }
}

/** Sort key of the reverse topological power ordering, computed once per event. */
export interface PowerSortKey {
  id: string;
  /** The sender's power level according to the event's own auth events (may be Infinity). */
  power: number;
  ts: number;
}

/** x < y: higher power first, then earlier origin_server_ts, then smaller event id. */
export function powerKeyLess(x: PowerSortKey, y: PowerSortKey): boolean {
  if (x.power !== y.power) return x.power > y.power;
  if (x.ts !== y.ts) return x.ts < y.ts;
  return compareCodePoints(x.id, y.id) < 0;
}

/**
 * Kahn's algorithm over the auth DAG, emitting an event only once all of its auth events (inside
 * the graph) have been emitted, and always the smallest candidate under `less`. `graph` maps
 * each node to its auth events within the graph; every edge target must be a node.
 */
export function lexicographicalTopologicalSort<K>(
  graph: ReadonlyMap<string, ReadonlySet<string>>,
  keys: ReadonlyMap<string, K>,
  less: (a: K, b: K) => boolean,
  keyId: (k: K) => string,
): string[] {
  const remaining = new Map<string, number>();
  const dependents = new Map<string, string[]>();
  const heap = new BinaryHeap<K>(less);
  for (const [node, edges] of graph) {
    remaining.set(node, edges.size);
    if (edges.size === 0) heap.push(keys.get(node)!);
    for (const target of edges) {
      let list = dependents.get(target);
      if (!list) dependents.set(target, (list = []));
      list.push(node);
    }
  }
  const out: string[] = [];
  while (heap.size > 0) {
    const node = keyId(heap.pop()!);
    out.push(node);
    for (const parent of dependents.get(node) ?? []) {
      const left = remaining.get(parent)! - 1;
      remaining.set(parent, left);
      if (left === 0) heap.push(keys.get(parent)!);
    }
  }
  // Nodes on an auth cycle (only claimable with v1/v2 free-form ids) never become candidates and
  // are left out, as in Synapse, rather than ordered arbitrarily.
  return out;
}

/** Sort key of the mainline ordering. */
export interface MainlineSortKey {
  id: string;
  /** 0 when the event's power level chain never meets the mainline; the oldest mainline event is 1. */
  position: number;
  ts: number;
}

/**
 * Ascending position (events based on an earlier power levels event first), then
 * origin_server_ts, then event id. Synapse numbers the mainline from its oldest end, which gives
 * the spec's "greater mainline index first" in ascending order.
 */
export function compareMainlineKeys(x: MainlineSortKey, y: MainlineSortKey): number {
  if (x.position !== y.position) return x.position - y.position;
  if (x.ts !== y.ts) return x.ts < y.ts ? -1 : 1;
  return compareCodePoints(x.id, y.id);
}
