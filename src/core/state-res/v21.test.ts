// State resolution v2.1 (room version 12): creators with infinite power, replaying from the empty
// state, and the conflicted state subgraph. Where v2.1 differs from v2 the same DAG is resolved
// under room version 11 as the control.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { getRoomVersion } from '../room-versions.js';
import { stateKey, type StateMap } from '../types.js';
import { conflictedSubgraph } from './auth-chain.js';
import { EventCache } from './event-cache.js';
import { resolveState } from './resolve.js';
import {
  ALICE,
  BOB,
  CHARLIE,
  DAVE,
  EVELYN,
  TestDag,
  ZARA,
  joinRules,
  member,
  message,
  powerLevels,
  topic,
  type EventSpec,
} from './test-dag.js';

const V11 = getRoomVersion('11')!;
const V12 = getRoomVersion('12')!;
const PL_KEY = stateKey('m.room.power_levels', '');
const TOPIC_KEY = stateKey('m.room.topic', '');

function createEvent(content: Record<string, unknown> = {}): EventSpec {
  return { id: 'CREATE', sender: ALICE, type: 'm.room.create', stateKey: '', content: { room_version: '12', ...content } as never };
}

describe('v12 creators', () => {
  // Alice creates the room naming Bob an additional creator; Charlie is a moderator at 100. On
  // one branch Bob demotes Charlie, on the other Charlie kicks Dave.
  const events = (additional: string[] | undefined): EventSpec[] => [
    createEvent(additional ? { additional_creators: additional } : {}),
    member('IMA', ALICE, ALICE, 'join'),
    powerLevels('IPOWER', ALICE, { users: { [CHARLIE]: 100 } }),
    joinRules('IJR', ALICE, 'public'),
    member('IMB', BOB, BOB, 'join'),
    member('IMC', CHARLIE, CHARLIE, 'join'),
    member('IMD', DAVE, DAVE, 'join'),
    message('START', DAVE),
    powerLevels('PBOB', BOB, { users: { [CHARLIE]: 0 } }),
    member('KD', CHARLIE, DAVE, 'leave'),
    message('END', DAVE),
  ];
  const edges = [
    ['START', 'IMD', 'IMC', 'IMB', 'IJR', 'IPOWER', 'IMA', 'CREATE'],
    ['END', 'PBOB', 'START'],
    ['END', 'KD', 'START'],
  ];

  test('an additional creator outranks every power level: their demotion lands first', async () => {
    const dag = new TestDag(V12);
    await dag.build(events([BOB]), edges);
    assert.deepEqual(dag.changedState('START', 'END', ['PBOB']), dag.expectedState(['PBOB']));
  });

  test('without additional_creators the same user has no power and the kick stands', async () => {
    const dag = new TestDag(V12);
    await dag.build(events(undefined), edges);
    assert.deepEqual(dag.changedState('START', 'END', ['KD']), dag.expectedState(['KD']));
  });

  test('the creator (sender of the create event) outranks a moderator whatever the timestamps', async () => {
    // Charlie (100) kicks Dave early; Alice, the creator and in no users map, demotes Charlie
    // later. Power order puts Alice's change first, so the kick then fails. Ordered by time (or
    // with Alice at power 0) the kick would land first and stand.
    const dag = new TestDag(V12);
    await dag.build(
      [
        ...events(undefined).slice(0, 8),
        { ...member('KD', CHARLIE, DAVE, 'leave'), ts: 100 },
        { ...powerLevels('PA', ALICE, { users: { [CHARLIE]: 0 } }), ts: 200 },
        message('END', DAVE),
      ],
      [edges[0], ['END', 'KD', 'START'], ['END', 'PA', 'START']],
    );
    assert.deepEqual(dag.changedState('START', 'END', ['PA']), dag.expectedState(['PA']));
  });
});

describe('v2.1 replays from the empty state', () => {
  // Bob (50) sets topic T1 (with a clock far ahead), then Alice demotes him (P2); after P2 Alice
  // sets T2. Resolving {after P2, after T2}: only the topic is conflicted.
  async function build(version: typeof V11): Promise<TestDag> {
    const users: Record<string, number> = version.privilegedCreators ? {} : { [ALICE]: 100 };
    const dag = new TestDag(version);
    await dag.build(
      [
        {
          id: 'CREATE',
          sender: ALICE,
          type: 'm.room.create',
          stateKey: '',
          content: { room_version: version.id },
        },
        member('IMA', ALICE, ALICE, 'join'),
        powerLevels('P1', ALICE, { users: { ...users, [BOB]: 50 } }),
        joinRules('IJR', ALICE, 'public'),
        member('IMB', BOB, BOB, 'join'),
        message('START', BOB),
        { ...topic('T1', BOB), ts: 1_000_000 },
        powerLevels('P2', ALICE, { users: { ...users, [BOB]: 0 } }),
        topic('T2', ALICE),
        message('END', ALICE),
      ],
      [
        ['START', 'IMB', 'IJR', 'P1', 'IMA', 'CREATE'],
        ['END', 'T2', 'P2', 'T1', 'START'],
        ['END', 'P2'],
      ],
    );
    return dag;
  }

  test('v2 authorises the stale topic against the unconflicted power levels and drops it', async () => {
    const dag = await build(V11);
    assert.equal(dag.nodeOf(dag.stateAfter.get('END')!.get(TOPIC_KEY)!), 'T2');
  });

  test('v2.1 authorises it against its own auth events; with no power event resolved, timestamps order it last', async () => {
    const dag = await build(V12);
    const end = dag.stateAfter.get('END')!;
    assert.equal(dag.nodeOf(end.get(TOPIC_KEY)!), 'T1');
    // The unconflicted power levels still have the last word.
    assert.equal(dag.nodeOf(end.get(PL_KEY)!), 'P2');
  });
});

describe('v2.1 conflicted state subgraph', () => {
  // P1 is the first power levels event; P2 (Alice) raises Bob to 100; Charlie joins under P2; P3
  // (Bob) adds Charlie at 50. The two state sets agree on Charlie's join (so P2, in its auth chain,
  // is in every auth chain and not in the auth difference) but one of them was reset to P1.
  async function build(version: typeof V11): Promise<{ dag: TestDag; sets: StateMap[] }> {
    const users: Record<string, number> = version.privilegedCreators ? {} : { [ALICE]: 100 };
    const dag = new TestDag(version);
    await dag.build(
      [
        { id: 'CREATE', sender: ALICE, type: 'm.room.create', stateKey: '', content: { room_version: version.id } },
        member('IMA', ALICE, ALICE, 'join'),
        powerLevels('P1', ALICE, { users: { ...users } }),
        joinRules('IJR', ALICE, 'public'),
        member('IMB', BOB, BOB, 'join'),
        powerLevels('P2', ALICE, { users: { ...users, [BOB]: 100 } }),
        member('IMC', CHARLIE, CHARLIE, 'join'),
        powerLevels('P3', BOB, { users: { ...users, [BOB]: 100, [CHARLIE]: 50 } }),
      ],
      [['P3', 'IMC', 'P2', 'IMB', 'IJR', 'P1', 'IMA', 'CREATE']],
    );
    const after = dag.stateAfter.get('P3')!;
    const reset = new Map(after);
    reset.set(PL_KEY, dag.eventId('P1'));
    return { dag, sets: [reset, after] };
  }

  test('the subgraph holds every event on an auth path between conflicted events', async () => {
    const { dag } = await build(V12);
    const cache = new EventCache(dag.source(), V12);
    const sub = await conflictedSubgraph(cache, new Set([dag.eventId('P1'), dag.eventId('P3')]));
    // P3 -> P2 -> P1 directly, and P3 -> IMB -> IJR -> P1 through Bob's join and the join rules
    // (both sent under P1); IMA and CREATE are below P1, so on no such path.
    assert.deepEqual([...sub].map((id) => dag.nodeOf(id)).sort(), ['IJR', 'IMB', 'P1', 'P2', 'P3']);
  });

  test('v2 leaves P2 out, so Bob\'s P3 is checked against P1 and the reset sticks', async () => {
    const { dag, sets } = await build(V11);
    const out = await resolveState(V11, sets, dag.source());
    assert.equal(dag.nodeOf(out.get(PL_KEY)!), 'P1');
  });

  test('v2.1 replays P2 between them and keeps P3', async () => {
    const { dag, sets } = await build(V12);
    const out = await resolveState(V12, sets, dag.source());
    assert.equal(dag.nodeOf(out.get(PL_KEY)!), 'P3');
  });
});

// The two MSC4297 reset scenarios (after Synapse's tests/state/test_v21.py), with events citing
// explicit auth events and state sets given directly, as a faulty or malicious server could.
describe('v2.1 repairs the state resets MSC4297 describes', () => {
  /** Builds `specs` as one chain (prev events only matter for depth and the creator's join). */
  async function chain(version: typeof V11, specs: EventSpec[]): Promise<TestDag> {
    const dag = new TestDag(version);
    const withTs = specs.map((spec, i) => ({ ...spec, ts: i + 1 }));
    await dag.build(withTs, [specs.map((spec) => spec.id).reverse()]);
    return dag;
  }
  const state = (dag: TestDag, nodes: string[]): StateMap => {
    const out: StateMap = new Map();
    for (const n of nodes) {
      const ev = dag.event(n);
      out.set(stateKey(ev.type, ev.state_key!), ev.event_id);
    }
    return out;
  };
  const named = (dag: TestDag, s: StateMap) => Object.fromEntries([...dag.namedState(s)].sort());

  test('a rename citing old power levels cannot drag the power levels back (conflicted subgraph)', async () => {
    const dag = await chain(V12, [
      { id: 'CREATE', sender: ALICE, type: 'm.room.create', stateKey: '', content: { room_version: '12' } },
      { ...member('MA', ALICE, ALICE, 'join'), authEvents: [] },
      { ...powerLevels('P1', ALICE, { users: {} }), authEvents: ['MA'] },
      { ...joinRules('JR', ALICE, 'public'), authEvents: ['MA', 'P1'] },
      { ...member('MB', BOB, BOB, 'join'), authEvents: ['P1', 'JR'] },
      { ...member('MC', CHARLIE, CHARLIE, 'join'), authEvents: ['P1', 'JR'] },
      { ...powerLevels('P2', ALICE, { users: { [BOB]: 50 } }), authEvents: ['MA', 'P1'] },
      { ...powerLevels('P3', BOB, { users: { [BOB]: 50, [CHARLIE]: 50 } }), authEvents: ['MB', 'P2'] },
      { ...member('ME1', EVELYN, EVELYN, 'join'), authEvents: ['P3', 'JR'] },
      // Evelyn renames herself but cites the old power levels directly.
      { ...member('ME2', EVELYN, EVELYN, 'join', { displayname: 'E' }), authEvents: ['P1', 'JR', 'ME1'] },
      { ...member('MZ', ZARA, ZARA, 'join'), authEvents: ['P3', 'JR'] },
    ]);
    const dodgy = state(dag, ['CREATE', 'MA', 'MB', 'MC', 'ME2', 'P1', 'JR']);
    const sensible = state(dag, ['CREATE', 'MA', 'MB', 'MC', 'MZ', 'P3', 'JR']);
    const expected = named(dag, state(dag, ['CREATE', 'MA', 'MB', 'MC', 'ME1', 'MZ', 'P3', 'JR']));
    for (const sets of [[dodgy, sensible], [sensible, dodgy]]) {
      const out = await resolveState(V12, sets, dag.source());
      // ME2 is replayed in the P1 epoch, then ME1 (in the P3 epoch) after it.
      assert.deepEqual(named(dag, out), expected);
    }
    // The create event is in every auth chain, so never in the full conflicted set.
    const cache = new EventCache(dag.source(), V12);
    const sub = await conflictedSubgraph(cache, new Set([dag.eventId('ME2'), dag.eventId('P1'), dag.eventId('P3'), dag.eventId('MZ')]));
    assert.ok(!sub.has(dag.eventId('CREATE')));
    assert.ok(sub.has(dag.eventId('ME1')) && sub.has(dag.eventId('P2')));
  });

  async function joinRulesReset(version: typeof V11) {
    const aliceEntry: Record<string, number> = version.privilegedCreators ? {} : { [ALICE]: 100 };
    const dag = await chain(version, [
      { id: 'CREATE', sender: ALICE, type: 'm.room.create', stateKey: '', content: { room_version: version.id } },
      { ...member('MA1', ALICE, ALICE, 'join'), authEvents: version.privilegedCreators ? [] : ['CREATE'] },
      { ...powerLevels('PW', ALICE, { users: { ...aliceEntry, [BOB]: 100 } }), authEvents: version.privilegedCreators ? ['MA1'] : ['CREATE', 'MA1'] },
      { ...joinRules('JR1', ALICE, 'public'), authEvents: version.privilegedCreators ? ['MA1', 'PW'] : ['CREATE', 'MA1', 'PW'] },
      { ...member('MB', BOB, BOB, 'join'), authEvents: version.privilegedCreators ? ['PW', 'JR1'] : ['CREATE', 'PW', 'JR1'] },
      { ...joinRules('JR2', ALICE, 'invite'), authEvents: version.privilegedCreators ? ['MA1', 'PW'] : ['CREATE', 'MA1', 'PW'] },
      { ...member('MA2', ALICE, ALICE, 'leave'), authEvents: version.privilegedCreators ? ['PW', 'MA1'] : ['CREATE', 'PW', 'MA1'] },
    ]);
    const correct = state(dag, ['CREATE', 'MA2', 'MB', 'PW', 'JR2']);
    // Another server hands us a fork citing the old join rules.
    const incorrect = state(dag, ['CREATE', 'MA2', 'MB', 'PW', 'JR1']);
    return { dag, out: await resolveState(version, [correct, incorrect], dag.source()) };
  }

  test('join rules whose sender has since left are not reset to nothing (v2.1 starts empty)', async () => {
    const { dag, out } = await joinRulesReset(V12);
    assert.equal(dag.nodeOf(out.get(stateKey('m.room.join_rules', ''))!), 'JR2');
  });

  test('control: v2 checks both join rules against Alice having left and loses them', async () => {
    const { out } = await joinRulesReset(V11);
    assert.equal(out.get(stateKey('m.room.join_rules', '')), undefined);
  });
});

