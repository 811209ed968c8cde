// Properties every state resolution must have whatever the room: the answer does not depend on
// input order or on the source's fast path; only what is needed is fetched; rejected events stay
// out. Plus the auth difference on its own.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { getRoomVersion, type RoomVersion } from '../room-versions.js';
import { stateKey, type JsonObject, type StateMap } from '../types.js';
import { authDifference, conflictedSubgraph } from './auth-chain.js';
import { separateV2 } from './v2.js';
import { EventCache } from './event-cache.js';
import { mainlineSort } from './mainline.js';
import { compareCodePoints } from './ordering.js';
import { resolveState } from './resolve.js';
import {
  ALICE,
  BOB,
  CHARLIE,
  DAVE,
  EVELYN,
  TestDag,
  member,
  message,
  powerLevels,
  rng,
  shuffled,
  topic,
  type EventSpec,
} from './test-dag.js';

function sortedEntries(state: StateMap): Array<[string, string]> {
  return [...state].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

/**
 * A random room history: a creator, four others, and random joins, leaves, kicks, bans, power
 * levels and join rules changes and topics on random branches that now and then merge. Events are
 * not checked when created, so some of them are unauthorised: resolution has to cope.
 */
async function randomRoom(version: RoomVersion, seed: number, size: number): Promise<{ dag: TestDag; heads: string[] }> {
  const random = rng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)];
  const others = [BOB, CHARLIE, DAVE, EVELYN];
  const creatorEntry: Record<string, number> = version.privilegedCreators ? {} : { [ALICE]: 100 };
  const specs: EventSpec[] = [
    { id: 'CREATE', sender: ALICE, type: 'm.room.create', stateKey: '', content: version.implicitRoomCreator ? {} : { creator: ALICE } },
    member('E001', ALICE, ALICE, 'join'),
    powerLevels('E002', ALICE, { users: { ...creatorEntry, [BOB]: 50 } }),
    { id: 'E003', sender: ALICE, type: 'm.room.join_rules', stateKey: '', content: { join_rule: 'public' } },
  ];
  const edges: string[][] = [['E003', 'E002', 'E001', 'CREATE']];
  let heads = ['E003'];
  for (let i = 4; i < size; i++) {
    const id = `E${String(i).padStart(3, '0')}`;
    const r = random();
    let spec: EventSpec;
    const who = pick([ALICE, ...others]);
    if (r < 0.3) spec = member(id, who, who, pick(['join', 'join', 'leave']));
    else if (r < 0.4) spec = member(id, pick([ALICE, BOB]), pick(others), pick(['leave', 'ban', 'invite']));
    else if (r < 0.55) {
      const users: JsonObject = { ...creatorEntry };
      for (const u of others) if (random() < 0.5) users[u] = pick([0, 25, 50, 75]);
      spec = powerLevels(id, pick([ALICE, ALICE, BOB]), { users });
    } else if (r < 0.62) {
      spec = { id, sender: pick([ALICE, BOB]), type: 'm.room.join_rules', stateKey: '', content: { join_rule: pick(['public', 'invite']) } };
    } else if (r < 0.9) spec = { ...topic(id, who), ts: random() < 0.2 ? 5 : i };
    else spec = message(id, who);
    specs.push(spec);
    // Mostly extend one branch; sometimes fork from an older head, sometimes merge two.
    const prev = random() < 0.2 && heads.length > 1 ? shuffled(heads, random).slice(0, 2) : [pick(heads)];
    for (const p of prev) edges.push([id, p]);
    heads = heads.filter((h) => !prev.includes(h));
    heads.push(id);
    if (random() < 0.25) heads.push(prev[0]);
  }
  const dag = new TestDag(version);
  await dag.build(specs, edges);
  return { dag, heads: [...new Set(heads)] };
}

describe('state resolution is deterministic', () => {
  for (const v of ['1', '2', '11', '12']) {
    test(`room v${v}: shuffling state sets, their entries and the source's answers never changes the result`, async () => {
      const version = getRoomVersion(v)!;
      let resolvedWithConflicts = 0;
      for (let seed = 1; seed <= 12; seed++) {
        const { dag, heads } = await randomRoom(version, seed * 7919 + Number(v), 70);
        const random = rng(seed);
        const candidates = [...dag.stateAfter.keys()].filter((n) => n >= 'E010');
        for (let round = 0; round < 4; round++) {
          const nodes = round === 0 && heads.length > 1 ? heads.slice(0, 3) : shuffled(candidates, random).slice(0, 2 + (round % 2));
          const sets = nodes.map((n) => dag.stateAfter.get(n)!);
          const reference = sortedEntries(await resolveState(version, sets, dag.source()));
          if (sets.some((s) => sortedEntries(s).join() !== reference.join())) resolvedWithConflicts++;
          for (let trial = 0; trial < 3; trial++) {
            const shuffledSets = shuffled(sets, random).map((s) => new Map(shuffled(s, random)));
            const source = dag.source({ fastPath: trial !== 1, random });
            const got = sortedEntries(await resolveState(version, shuffledSets, source));
            assert.deepEqual(got, reference, `seed ${seed} round ${round} trial ${trial} nodes ${nodes.join(',')}`);
          }
        }
      }
      // The property is only meaningful if the rooms really forked.
      assert.ok(resolvedWithConflicts > 10, `only ${resolvedWithConflicts} real conflicts`);
    });
  }

  test('resolving a state with itself, or a single state, gives it back', async () => {
    const version = getRoomVersion('11')!;
    const { dag } = await randomRoom(version, 99, 40);
    const s = dag.stateAfter.get('E039')!;
    assert.deepEqual(sortedEntries(await resolveState(version, [s], dag.source())), sortedEntries(s));
    assert.deepEqual(sortedEntries(await resolveState(version, [s, new Map(s)], dag.source())), sortedEntries(s));
    assert.equal((await resolveState(version, [], dag.source())).size, 0);
  });
});

describe('auth difference', () => {
  // c -> b -> a through auth events, none of them in a common state.
  async function chainDag(version: RoomVersion): Promise<TestDag> {
    const dag = new TestDag(version);
    await dag.build(
      [
        { id: 'A', sender: ALICE, type: 'a', stateKey: '', authEvents: [] },
        { id: 'B', sender: ALICE, type: 'b', stateKey: '', authEvents: ['A'] },
        { id: 'C', sender: ALICE, type: 'c', stateKey: '', authEvents: ['B'] },
        { id: 'D', sender: ALICE, type: 'd', stateKey: '', authEvents: ['C'] },
        { id: 'E', sender: ALICE, type: 'e', stateKey: '', authEvents: ['C', 'B'] },
      ],
      [],
    );
    return dag;
  }

  for (const fastPath of [false, true]) {
    test(`counts the state events themselves in their set's chain (fast path ${fastPath})`, async () => {
      const version = getRoomVersion('10')!;
      const dag = await chainDag(version);
      const ids = (...ns: string[]) => ns.map((n) => dag.eventId(n));
      const diff = async (sets: string[][], common: string[] = []) => {
        const cache = new EventCache(dag.source({ fastPath }), version);
        const out = await authDifference(cache, ids(...common), sets.map((s) => ids(...s)));
        return [...out].map((id) => dag.nodeOf(id)).sort();
      };
      assert.deepEqual(await diff([['A', 'B'], ['C']]), ['C']);
      assert.deepEqual(await diff([['A', 'B'], ['C', 'D']]), ['C', 'D']);
      assert.deepEqual(await diff([['A', 'B', 'E'], ['C', 'D']]), ['D', 'E']);
      // Whatever an unconflicted event's chain holds is in every chain.
      assert.deepEqual(await diff([['A'], ['D']], ['B']), ['C', 'D']);
      assert.deepEqual(await diff([['A'], ['D']], ['E']), ['D']);
    });
  }
});

describe('what is fetched', () => {
  test('with an auth chain index, members unrelated to the conflict are never loaded', async () => {
    const version = getRoomVersion('11')!;
    const dag = new TestDag(version);
    const specs: EventSpec[] = [
      { id: 'CREATE', sender: ALICE, type: 'm.room.create', stateKey: '', content: {} },
      member('IMA', ALICE, ALICE, 'join'),
      powerLevels('IPOWER', ALICE, { users: { [ALICE]: 100 } }),
      { id: 'IJR', sender: ALICE, type: 'm.room.join_rules', stateKey: '', content: { join_rule: 'public' } },
    ];
    const chain = ['IJR', 'IPOWER', 'IMA', 'CREATE'];
    for (let i = 0; i < 40; i++) {
      const u = `@user${i}:example.com`;
      specs.push(member(`M${i}`, u, u, 'join'));
      chain.unshift(`M${i}`);
    }
    specs.push(topic('TA', ALICE), topic('TB', ALICE), message('END', ALICE));
    await dag.build(specs, [chain, ['TA', 'M39'], ['TB', 'M39'], ['END', 'TA'], ['END', 'TB']]);
    const source = dag.source({ fastPath: true });
    const out = await resolveState(version, [dag.stateAfter.get('TA')!, dag.stateAfter.get('TB')!], source);
    assert.equal(out.get(stateKey('m.room.topic', '')), dag.eventId('TB'));
    const members = [...source.requested].filter((id) => /^\$M\d+$/.test(id));
    assert.deepEqual(members, []);
    assert.ok(source.calls <= 6, `${source.calls} getEvents calls`);

    // Without the index the unconflicted state's auth chains have to be walked.
    const walking = dag.source();
    assert.deepEqual(await resolveState(version, [dag.stateAfter.get('TA')!, dag.stateAfter.get('TB')!], walking), out);
    assert.equal([...walking.requested].filter((id) => /^\$M\d+$/.test(id)).length, 40);
  });
});

describe('rejected events', () => {
  // The power levels PB (Alice gives Bob 50) exists only in Bob's topic's auth chain; the state
  // sets differ only in the topic.
  async function setup(version: RoomVersion) {
    const creatorEntry: Record<string, number> = version.privilegedCreators ? {} : { [ALICE]: 100 };
    const dag = new TestDag(version);
    await dag.build(
      [
        { id: 'CREATE', sender: ALICE, type: 'm.room.create', stateKey: '', content: version.implicitRoomCreator ? {} : { creator: ALICE } },
        member('IMA', ALICE, ALICE, 'join'),
        powerLevels('IPOWER', ALICE, { users: { ...creatorEntry } }),
        { id: 'IJR', sender: ALICE, type: 'm.room.join_rules', stateKey: '', content: { join_rule: 'public' } },
        member('IMB', BOB, BOB, 'join'),
        topic('T1', ALICE),
        powerLevels('PB', ALICE, { users: { ...creatorEntry, [BOB]: 50 } }),
        topic('T2', BOB),
      ],
      [['T1', 'IMB', 'IJR', 'IPOWER', 'IMA', 'CREATE'], ['T2', 'PB', 'IMB']],
    );
    const base = dag.stateAfter.get('IMB')!;
    const x = new Map(base).set(stateKey('m.room.topic', ''), dag.eventId('T1'));
    const y = new Map(base).set(stateKey('m.room.topic', ''), dag.eventId('T2'));
    return { dag, sets: [x, y] };
  }

  for (const v of ['11', '12']) {
    test(`room v${v}: a rejected auth event neither enters state nor authorises the event citing it`, async () => {
      const version = getRoomVersion(v)!;
      const { dag, sets } = await setup(version);
      const accepted = await resolveState(version, sets, dag.source());
      assert.equal(dag.nodeOf(accepted.get(stateKey('m.room.topic', ''))!), 'T2');
      // The unconflicted power levels have the last word either way.
      assert.equal(dag.nodeOf(accepted.get(stateKey('m.room.power_levels', ''))!), 'IPOWER');

      dag.rejected.add(dag.eventId('PB'));
      const rejected = await resolveState(version, sets, dag.source());
      assert.equal(dag.nodeOf(rejected.get(stateKey('m.room.topic', ''))!), 'T1');
    });
  }

  test('a rejected conflicted event is never admitted, even where it would pass', async () => {
    const version = getRoomVersion('11')!;
    const { dag, sets } = await setup(version);
    dag.rejected.add(dag.eventId('T2'));
    const out = await resolveState(version, sets, dag.source());
    assert.equal(dag.nodeOf(out.get(stateKey('m.room.topic', ''))!), 'T1');
  });
});

describe('auth difference and conflicted subgraph against their definitions', () => {
  // Straight from the spec's words, on random forked rooms: Cᵢ is the full auth chain of state
  // set i (its events included); the subgraph is every event on an auth path between two
  // conflicted events.
  test('random rooms', async () => {
    for (const v of ['2', '12']) {
      const version = getRoomVersion(v)!;
      let nonEmptySubgraphExtras = 0;
      for (let seed = 1; seed <= 8; seed++) {
        const { dag } = await randomRoom(version, seed * 104729 + 3, 60);
        const random = rng(seed);
        const edgesOf = (id: string): string[] => {
          const ev = dag.events.get(id)!;
          const out = ev.auth_events.map((r) => (typeof r === 'string' ? r : r[0]));
          if (version.roomIdFromCreateEvent && ev.type !== 'm.room.create') out.push(`$${ev.room_id.slice(1)}`);
          return out;
        };
        const chainOf = (ids: Iterable<string>): Set<string> => {
          const seen = new Set<string>(ids);
          const stack = [...seen];
          while (stack.length > 0) for (const a of edgesOf(stack.pop()!)) if (!seen.has(a)) (seen.add(a), stack.push(a));
          return seen;
        };
        const nodes = [...dag.stateAfter.keys()].filter((n) => n >= 'E010');
        for (let round = 0; round < 5; round++) {
          const sets = shuffled(nodes, random).slice(0, 2 + (round % 2)).map((n) => dag.stateAfter.get(n)!);
          const { unconflicted, conflicted } = separateV2(sets);
          if (conflicted.size === 0) continue;

          const chains = sets.map((s) => chainOf(s.values()));
          const expected = new Set<string>();
          for (const c of chains) for (const id of c) if (!chains.every((o) => o.has(id))) expected.add(id);
          const cache = new EventCache(dag.source(), version);
          const perSet = sets.map((s) => [...conflicted.keys()].flatMap((k) => (s.has(k) ? [s.get(k)!] : [])));
          const got = await authDifference(cache, [...new Set(unconflicted.values())], perSet);
          assert.deepEqual([...got].sort(), [...expected].sort(), `v${v} seed ${seed} round ${round}`);

          const conflictedIds = new Set([...conflicted.values()].flatMap((ids) => [...ids]));
          const below = new Map<string, Set<string>>();
          const closure = chainOf(conflictedIds);
          for (const id of closure) below.set(id, chainOf([id]));
          const subgraph = new Set<string>();
          for (const x of closure) {
            const reachedFromConflicted = [...conflictedIds].some((c) => below.get(c)!.has(x));
            const reachesConflicted = [...conflictedIds].some((c) => below.get(x)!.has(c));
            if (reachedFromConflicted && reachesConflicted) subgraph.add(x);
          }
          const gotSub = await conflictedSubgraph(new EventCache(dag.source(), version), conflictedIds);
          assert.deepEqual([...gotSub].sort(), [...subgraph].sort(), `v${v} seed ${seed} round ${round} subgraph`);
          if ([...subgraph].some((id) => !conflictedIds.has(id) && !expected.has(id))) nonEmptySubgraphExtras++;
        }
      }
      // The subgraph must sometimes add events the auth difference lacks, or this proves little.
      if (v === '12') assert.ok(nonEmptySubgraphExtras > 0);
    }
  });
});

describe('sources that misbehave', () => {
  async function topicFork() {
    const version = getRoomVersion('11')!;
    const dag = new TestDag(version);
    await dag.build(
      [
        { id: 'CREATE', sender: ALICE, type: 'm.room.create', stateKey: '', content: {} },
        member('IMA', ALICE, ALICE, 'join'),
        powerLevels('IPOWER', ALICE, { users: { [ALICE]: 100 } }),
        topic('TA', ALICE),
        topic('TB', ALICE),
      ],
      [['TA', 'IPOWER', 'IMA', 'CREATE'], ['TB', 'IPOWER']],
    );
    return { version, dag, sets: [dag.stateAfter.get('TA')!, dag.stateAfter.get('TB')!] };
  }

  test('an event the source cannot produce takes no part', async () => {
    const { version, dag, sets } = await topicFork();
    const source = dag.source();
    const getEvents = source.getEvents.bind(source);
    source.getEvents = async (ids) => {
      const out = await getEvents(ids);
      out.delete(dag.eventId('TB'));
      return out;
    };
    const out = await resolveState(version, sets, source);
    assert.equal(dag.nodeOf(out.get(stateKey('m.room.topic', ''))!), 'TA');
  });

  test('events of another room are refused', async () => {
    const { version, dag, sets } = await topicFork();
    const source = dag.source();
    const getEvents = source.getEvents.bind(source);
    source.getEvents = async (ids) => {
      const out = await getEvents(ids);
      const tb = out.get(dag.eventId('TB'));
      if (tb) out.set(tb.event_id, { ...tb, room_id: '!other:example.com' });
      return out;
    };
    await assert.rejects(resolveState(version, sets, source), /is in room !other:example.com/);
  });
});

describe('mainline ordering against its definition', () => {
  test('random rooms: positions walked one event at a time agree with the batched, memoised sort', async () => {
    for (const v of ['2', '12']) {
      const version = getRoomVersion(v)!;
      for (let seed = 1; seed <= 6; seed++) {
        const { dag } = await randomRoom(version, seed * 31337, 80);
        const random = rng(seed);
        const plOf = (id: string): string | undefined =>
          dag.events
            .get(id)!
            .auth_events.map((r) => (typeof r === 'string' ? r : r[0]))
            .find((a) => dag.events.get(a)?.type === 'm.room.power_levels');
        const pls = [...dag.events.values()].filter((e) => e.type === 'm.room.power_levels').map((e) => e.event_id);
        const states = [...dag.events.values()].filter((e) => e.state_key !== undefined).map((e) => e.event_id);
        for (let round = 0; round < 4; round++) {
          const base = pls[Math.floor(random() * pls.length)];
          const mainline: string[] = [];
          for (let p: string | undefined = base; p !== undefined; p = plOf(p)) mainline.push(p);
          // Spec: the smallest j >= 1 with e_j on the mainline gives position i; none gives
          // infinity, sorted first. Larger index (older) first.
          const position = (id: string): number => {
            for (let e = plOf(id); e !== undefined; e = plOf(e)) {
              const i = mainline.indexOf(e);
              if (i >= 0) return i;
            }
            return Infinity;
          };
          const events = shuffled(states, random).slice(0, 25).filter((id) => !mainline.includes(id));
          const expected = [...events].sort((a, b) => {
            const pa = position(a);
            const pb = position(b);
            if (pa !== pb) return pa > pb ? -1 : 1;
            const ta = dag.events.get(a)!.origin_server_ts;
            const tb = dag.events.get(b)!.origin_server_ts;
            if (ta !== tb) return ta - tb;
            return compareCodePoints(a, b);
          });
          const cache = new EventCache(dag.source(), version);
          await cache.load(events);
          assert.deepEqual(await mainlineSort(cache, events, base), expected, `v${v} seed ${seed} round ${round}`);
        }
      }
    }
  });
});

