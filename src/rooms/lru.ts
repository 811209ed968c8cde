// A bounded cache with approximately least-recently-used eviction, weighted so that caches of
// state maps can be bounded by the entries they hold rather than by count.
//
// Entries live in two generations. A hit in the young one is a plain Map lookup: it does not
// reorder anything. (Re-inserting on every hit, as a strict LRU over one Map does, costs a
// delete and an insert per hit and makes V8 rehash tables of 100,000s of entries over and over:
// it was 3% of a message send's CPU.) A hit in the old generation moves the entry to the young
// one. When the young generation outgrows half the budget it becomes the old one and the
// previous old one is dropped whole: what was not used during a whole generation goes.
export class Lru<K, V> {
  private young = new Map<K, { value: V; weight: number }>();
  private old = new Map<K, { value: V; weight: number }>();
  private youngWeight = 0;
  private oldWeight = 0;

  constructor(
    private readonly maxWeight: number,
    private readonly weigh: (value: V) => number = () => 1,
  ) {}

  get(key: K): V | undefined {
    const hit = this.young.get(key);
    if (hit) return hit.value;
    const aged = this.old.get(key);
    if (!aged) return undefined;
    this.old.delete(key);
    this.oldWeight -= aged.weight;
    this.addYoung(key, aged);
    return aged.value;
  }

  set(key: K, value: V): void {
    this.delete(key);
    this.addYoung(key, { value, weight: this.weigh(value) });
  }

  delete(key: K): void {
    const y = this.young.get(key);
    if (y) {
      this.young.delete(key);
      this.youngWeight -= y.weight;
      return;
    }
    const o = this.old.get(key);
    if (o) {
      this.old.delete(key);
      this.oldWeight -= o.weight;
    }
  }

  clear(): void {
    this.young = new Map();
    this.old = new Map();
    this.youngWeight = 0;
    this.oldWeight = 0;
  }

  /** Entries held (both generations). */
  get size(): number {
    return this.young.size + this.old.size;
  }

  private addYoung(key: K, entry: { value: V; weight: number }): void {
    this.young.set(key, entry);
    this.youngWeight += entry.weight;
    if (this.youngWeight > this.maxWeight / 2) {
      this.old = this.young;
      this.oldWeight = this.youngWeight;
      this.young = new Map();
      this.youngWeight = 0;
    }
  }
}
