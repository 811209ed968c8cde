// Test fixture: builds small room DAGs from named nodes and prev-event chains, computing the state
// at every node with the resolver under test and citing auth events by the auth events selection
// rules, the way a homeserver would. No signatures or hashes: state resolution never reads them.
import { authEventTypesFor } from '../auth-events.js';
import type { RoomVersion } from '../room-versions.js';
import { stateKey, type EventReference, type JsonObject, type RoomEvent, type StateMap } from '../types.js';
import { compareCodePoints } from './ordering.js';
import { resolveState, type StateResEventSource } from './resolve.js';

export const ALICE = '@alice:example.com';
export const BOB = '@bob:example.com';
export const CHARLIE = '@charlie:example.com';
export const DAVE = '@dave:example.com';
export const EVELYN = '@evelyn:example.com';
export const ZARA = '@zara:example.com';

export interface EventSpec {
  /** Node name; the event id is derived from it. */
  id: string;
  sender: string;
  type: string;
  stateKey?: string;
  content?: JsonObject;
  /** origin_server_ts; by default the build order (0, 1, 2, ...). */
  ts?: number;
  /** Explicit auth events (node names) instead of selecting them from the state before. */
  authEvents?: string[];
}

export const member = (id: string, sender: string, target: string, membership: string, extra: JsonObject = {}): EventSpec => ({
  id,
  sender,
  type: 'm.room.member',
  stateKey: target,
  content: { membership, ...extra },
});

export const powerLevels = (id: string, sender: string, content: JsonObject): EventSpec => ({
  id,
  sender,
  type: 'm.room.power_levels',
  stateKey: '',
  content,
});

export const topic = (id: string, sender: string, text = id): EventSpec => ({
  id,
  sender,
  type: 'm.room.topic',
  stateKey: '',
  content: { topic: text },
});

export const joinRules = (id: string, sender: string, rule: string): EventSpec => ({
  id,
  sender,
  type: 'm.room.join_rules',
  stateKey: '',
  content: { join_rule: rule },
});

export const message = (id: string, sender: string): EventSpec => ({ id, sender, type: 'm.room.message', content: {} });

/** A small deterministic PRNG (mulberry32) so property tests are reproducible from a seed. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function shuffled<T>(items: Iterable<T>, random: () => number): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

export interface SourceOptions {
  /** Offer the getAuthChainIds fast path (computed by walking, as a store without an index would). */
  fastPath?: boolean;
  /** Return maps in a random order (to prove the resolver does not depend on it). */
  random?: () => number;
}

/** A source over the DAG's events that records what it was asked for. */
export interface RecordingSource extends StateResEventSource {
  requested: Set<string>;
  calls: number;
}

export class TestDag {
  readonly events = new Map<string, RoomEvent>();
  readonly stateAfter = new Map<string, StateMap>();
  readonly rejected = new Set<string>();
  readonly roomId: string;
  private ts = 0;

  constructor(readonly version: RoomVersion) {
    this.roomId = version.roomIdFromCreateEvent ? `!${this.eventId('CREATE').slice(1)}` : '!room:example.com';
  }

  eventId(node: string): string {
    return this.version.eventIdFormat === 'v1' ? `$${node}:example.com` : `$${node}`;
  }

  event(node: string): RoomEvent {
    const ev = this.events.get(this.eventId(node));
    if (!ev) throw new Error(`no event ${node}`);
    return ev;
  }

  source(options: SourceOptions = {}): RecordingSource {
    const events = this.events;
    const rejected = this.rejected;
    const version = this.version;
    const order = <T>(xs: Iterable<T>): T[] => (options.random ? shuffled(xs, options.random) : [...xs]);
    const src: RecordingSource = {
      requested: new Set(),
      calls: 0,
      async getEvents(ids) {
        src.calls++;
        const out = new Map<string, RoomEvent>();
        for (const id of order(ids)) {
          src.requested.add(id);
          const ev = events.get(id);
          if (ev) out.set(id, ev);
        }
        return out;
      },
      async getRejectedIds(ids) {
        return new Set(order(ids.filter((id) => rejected.has(id))));
      },
    };
    if (options.fastPath) {
      src.getAuthChainIds = async (ids) => {
        const seen = new Set<string>();
        const stack = [...ids];
        while (stack.length > 0) {
          const ev = events.get(stack.pop()!);
          if (!ev) continue;
          const auth = ev.auth_events.map((r) => (typeof r === 'string' ? r : r[0]));
          if (version.roomIdFromCreateEvent && ev.type !== 'm.room.create') auth.push(`$${ev.room_id.slice(1)}`);
          for (const a of auth) {
            if (!seen.has(a)) {
              seen.add(a);
              stack.push(a);
            }
          }
        }
        return new Set(order(seen));
      };
    }
    return src;
  }

  /**
   * Adds events. `edges` are prev-event chains, newest first: ['END', 'B', 'A'] means END's
   * prev event is B and B's is A. Events are built parents first, ties by node name, so the
   * default timestamps follow that order.
   */
  async build(specs: EventSpec[], edges: string[][]): Promise<void> {
    const byNode = new Map(specs.map((s) => [s.id, s]));
    const prevs = new Map<string, Set<string>>(specs.map((s) => [s.id, new Set()]));
    for (const chain of edges) {
      for (let i = 0; i + 1 < chain.length; i++) {
        const from = prevs.get(chain[i]);
        if (!from) throw new Error(`edge from unknown node ${chain[i]}`);
        from.add(chain[i + 1]);
      }
    }
    // Kahn's algorithm, parents first, smallest name first among the ready ones.
    const waiting = new Map<string, number>();
    const children = new Map<string, string[]>();
    for (const [node, ps] of prevs) {
      let n = 0;
      for (const p of ps) {
        if (prevs.has(p)) {
          n++;
          const list = children.get(p) ?? [];
          list.push(node);
          children.set(p, list);
        } else if (!this.stateAfter.has(p)) throw new Error(`unknown prev event ${p}`);
      }
      waiting.set(node, n);
    }
    const ready = [...waiting].filter(([, n]) => n === 0).map(([k]) => k);
    while (ready.length > 0) {
      ready.sort(compareCodePoints);
      const node = ready.shift()!;
      await this.addEvent(byNode.get(node)!, [...prevs.get(node)!].sort(compareCodePoints));
      for (const c of children.get(node) ?? []) {
        const left = waiting.get(c)! - 1;
        waiting.set(c, left);
        if (left === 0) ready.push(c);
      }
    }
    for (const [node, n] of waiting) if (n > 0) throw new Error(`cycle at ${node}`);
  }

  private async addEvent(spec: EventSpec, prevNodes: string[]): Promise<void> {
    let before: StateMap;
    if (prevNodes.length === 0) before = new Map();
    else if (prevNodes.length === 1) before = new Map(this.stateAfter.get(prevNodes[0])!);
    else before = await resolveState(this.version, prevNodes.map((p) => this.stateAfter.get(p)!), this.source());

    if (this.version.roomIdFromCreateEvent && spec.type === 'm.room.create' && spec.id !== 'CREATE') {
      // The room id is derived from the create event's id; only the node named CREATE has it.
      throw new Error('v12 fixtures must name their create event CREATE');
    }
    const content = spec.content ?? {};
    let authIds: string[];
    if (spec.authEvents) authIds = spec.authEvents.map((n) => this.eventId(n));
    else {
      authIds = [];
      const probe = { type: spec.type, sender: spec.sender, state_key: spec.stateKey, content };
      for (const [t, sk] of authEventTypesFor(probe, this.version)) {
        const id = before.get(stateKey(t, sk));
        if (id !== undefined && !authIds.includes(id)) authIds.push(id);
      }
    }
    const ref = (id: string): EventReference => (this.version.eventIdFormat === 'v1' ? [id, { sha256: '' }] : id);
    const prevIds = prevNodes.map((p) => this.eventId(p));
    const depth = prevIds.length === 0 ? 1 : Math.max(...prevIds.map((p) => this.events.get(p)!.depth)) + 1;
    const event: RoomEvent = {
      event_id: this.eventId(spec.id),
      room_id: this.roomId,
      sender: spec.sender,
      type: spec.type,
      content,
      origin_server_ts: spec.ts ?? this.ts,
      depth,
      prev_events: prevIds.map(ref),
      auth_events: authIds.map(ref),
      hashes: { sha256: '' },
      signatures: {},
    };
    this.ts++;
    if (spec.stateKey !== undefined) event.state_key = spec.stateKey;
    this.events.set(event.event_id, event);
    const after = new Map(before);
    if (spec.stateKey !== undefined) after.set(stateKey(spec.type, spec.stateKey), event.event_id);
    this.stateAfter.set(spec.id, after);
  }

  /** The state at `node` as node names per key. */
  namedState(state: StateMap): Map<string, string> {
    const out = new Map<string, string>();
    for (const [k, id] of state) out.set(k, this.nodeOf(id));
    return out;
  }

  nodeOf(eventId: string): string {
    const bare = eventId.slice(1);
    return this.version.eventIdFormat === 'v1' ? bare.slice(0, bare.indexOf(':')) : bare;
  }

  /**
   * The state after `end` restricted to the keys that differ from the state after `start`, plus
   * the keys of `expected` nodes, as node names: the comparison Synapse's state tests make.
   */
  changedState(start: string, end: string, expected: string[]): Record<string, string> {
    const expectedKeys = new Set(expected.map((n) => {
      const ev = this.event(n);
      return stateKey(ev.type, ev.state_key!);
    }));
    const s0 = this.stateAfter.get(start)!;
    const s1 = this.stateAfter.get(end)!;
    const out: Record<string, string> = {};
    for (const [k, id] of s1) {
      if (expectedKeys.has(k) || s0.get(k) !== id) out[k] = this.nodeOf(id);
    }
    return out;
  }

  expectedState(expected: string[]): Record<string, string> {
    const out: Record<string, string> = {};
    for (const n of expected) {
      const ev = this.event(n);
      out[stateKey(ev.type, ev.state_key!)] = n;
    }
    return out;
  }
}

/** The opening events every classic scenario starts from, and their chain. */
export function initialEvents(version: RoomVersion, powerContent: JsonObject = { users: { [ALICE]: 100 } }): EventSpec[] {
  return [
    {
      id: 'CREATE',
      sender: ALICE,
      type: 'm.room.create',
      stateKey: '',
      content: version.implicitRoomCreator ? { room_version: version.id } : { creator: ALICE, room_version: version.id },
    },
    member('IMA', ALICE, ALICE, 'join'),
    powerLevels('IPOWER', ALICE, powerContent),
    joinRules('IJR', ALICE, 'public'),
    member('IMB', BOB, BOB, 'join'),
    member('IMC', CHARLIE, CHARLIE, 'join'),
    member('IMZ', ZARA, ZARA, 'join'),
    message('START', ZARA),
    message('END', ZARA),
  ];
}

export const INITIAL_EDGES = ['START', 'IMZ', 'IMC', 'IMB', 'IJR', 'IPOWER', 'IMA', 'CREATE'];
