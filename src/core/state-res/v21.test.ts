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
  TestDag,
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

  test('the creator (sender of the create event) is never outranked by a power levels entry', async () => {
    // Charlie (100) sets a topic and Alice (creator, not in users) changes it concurrently with a
    // later timestamp... and both cite IPOWER, so order is by timestamp: Alice's is newer.
    const dag = new TestDag(V12);
    await dag.build(
      [
        ...events(undefined).slice(0, 8),
        { ...powerLevels('PC', CHARLIE, { users: { [CHARLIE]: 100 }, state_default: 100 }), ts: 100 },
        { ...powerLevels('PA', ALICE, { users: { [CHARLIE]: 50 } }), ts: 50 },
        message('END', DAVE),
      ],
      [edges[0], ['END', 'PC', 'START'], ['END', 'PA', 'START']],
    );
    // Power order: Alice (infinite) before Charlie (100) whatever the timestamps; Charlie's
    // change is then checked against Alice's demotion to 50 and fails.
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
