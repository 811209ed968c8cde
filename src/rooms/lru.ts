// A small LRU map (Map keeps insertion order; a hit re-inserts). Weighted, so caches of state
// maps can be bounded by entries held rather than by count.
export class Lru<K, V> {
  private readonly map = new Map<K, { value: V; weight: number }>();
  private total = 0;

  constructor(
    private readonly maxWeight: number,
    private readonly weigh: (value: V) => number = () => 1,
  ) {}

  get(key: K): V | undefined {
    const hit = this.map.get(key);
    if (!hit) return undefined;
    this.map.delete(key);
    this.map.set(key, hit);
    return hit.value;
  }

  set(key: K, value: V): void {
    const prior = this.map.get(key);
    if (prior) {
      this.total -= prior.weight;
      this.map.delete(key);
    }
    const weight = this.weigh(value);
    this.map.set(key, { value, weight });
    this.total += weight;
    while (this.total > this.maxWeight && this.map.size > 1) {
      const [oldest, entry] = this.map.entries().next().value as [K, { value: V; weight: number }];
      this.map.delete(oldest);
      this.total -= entry.weight;
    }
  }

  delete(key: K): void {
    const prior = this.map.get(key);
    if (!prior) return;
    this.total -= prior.weight;
    this.map.delete(key);
  }
}
