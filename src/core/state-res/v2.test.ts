// The classic state resolution v2 scenarios (the ones every implementation's test suite carries,
// after Synapse's tests/state/test_v2.py), written as DAGs over the same opening events: Alice
// creates the room (power 100), sets public join rules, Bob, Charlie and Zara join, then the
// scenario forks from START and merges at END.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { getRoomVersion } from '../room-versions.js';
import {
  ALICE,
  BOB,
  CHARLIE,
  EVELYN,
  INITIAL_EDGES,
  TestDag,
  initialEvents,
  joinRules,
  member,
  message,
  powerLevels,
  topic,
  type EventSpec,
} from './test-dag.js';

/**
 * Power levels users for the version: from v12 the creator (Alice) has infinite power and must
 * not be listed, so she is left out there.
 */
function u(versionId: string, users: Record<string, number>): Record<string, number> {
  if (!getRoomVersion(versionId)!.privilegedCreators) return users;
  const { [ALICE]: _creator, ...rest } = users;
  return rest;
}

async function check(versionId: string, events: EventSpec[], edges: string[][], expected: string[]): Promise<TestDag> {
  const version = getRoomVersion(versionId)!;
  const dag = new TestDag(version);
  await dag.build([...initialEvents(version, { users: u(versionId, { [ALICE]: 100 }) }), ...events], [INITIAL_EDGES, ...edges]);
  assert.deepEqual(dag.changedState('START', 'END', expected), dag.expectedState(expected));
  return dag;
}

// Room versions 2 to 11 share the algorithm; run the scenarios on the first, a middle and the last.
for (const v of ['2', '6', '11', '12']) {
  describe(`state res v2 classic scenarios (room v${v})`, () => {
    test('ban vs pl: a ban wins over a concurrent power levels change by the banned user', async () => {
      // Alice bans Bob on one branch while Bob (power 50) re-sends the power levels on the other.
      // Power events sort by sender power, so Alice's ban goes first and Bob's change then fails.
      await check(
        v,
        [
          powerLevels('PA', ALICE, { users: u(v, { [ALICE]: 100, [BOB]: 50 }) }),
          member('MA', ALICE, ALICE, 'join'),
          member('MB', ALICE, BOB, 'ban'),
          powerLevels('PB', BOB, { users: u(v, { [ALICE]: 100, [BOB]: 50 }) }),
        ],
        [
          ['END', 'MB', 'MA', 'PA', 'START'],
          ['END', 'PB', 'PA'],
        ],
        ['PA', 'MA', 'MB'],
      );
    });

    test('join rule evasion: a join racing a switch to private join rules loses', async () => {
      await check(
        v,
        [joinRules('JR', ALICE, 'private'), member('ME', EVELYN, EVELYN, 'join')],
        [
          ['END', 'JR', 'START'],
          ['END', 'ME', 'START'],
        ],
        ['JR'],
      );
    });

    test('offtopic pl: power levels changes chained through users stay in auth order', async () => {
      await check(
        v,
        [
          powerLevels('PA', ALICE, { users: u(v, { [ALICE]: 100, [BOB]: 50 }) }),
          powerLevels('PB', BOB, { users: u(v, { [ALICE]: 100, [BOB]: 50, [CHARLIE]: 50 }) }),
          powerLevels('PC', CHARLIE, { users: u(v, { [ALICE]: 100, [BOB]: 50, [CHARLIE]: 0 }) }),
        ],
        [
          ['END', 'PC', 'PB', 'PA', 'START'],
          ['END', 'PA'],
        ],
        ['PC'],
      );
    });

    test('topic basic: a topic from a user demoted on the other branch is dropped', async () => {
      await check(
        v,
        [
          topic('T1', ALICE),
          powerLevels('PA1', ALICE, { users: u(v, { [ALICE]: 100, [BOB]: 50 }) }),
          topic('T2', ALICE),
          powerLevels('PA2', ALICE, { users: u(v, { [ALICE]: 100, [BOB]: 0 }) }),
          powerLevels('PB', BOB, { users: u(v, { [ALICE]: 100, [BOB]: 50 }) }),
          topic('T3', BOB),
        ],
        [
          ['END', 'PA2', 'T2', 'PA1', 'T1', 'START'],
          ['END', 'T3', 'PB', 'PA1'],
        ],
        ['PA2', 'T2'],
      );
    });

    test('topic reset: a banned user\'s topic does not override an older topic', async () => {
      await check(
        v,
        [
          topic('T1', ALICE),
          powerLevels('PA', ALICE, { users: u(v, { [ALICE]: 100, [BOB]: 50 }) }),
          topic('T2', BOB),
          member('MB', ALICE, BOB, 'ban'),
        ],
        [
          ['END', 'MB', 'T2', 'PA', 'T1', 'START'],
          ['END', 'T1'],
        ],
        ['T1', 'MB', 'PA'],
      );
    });

    test('topic: mainline ordering with a message in between', async () => {
      await check(
        v,
        [
          topic('T1', ALICE),
          powerLevels('PA1', ALICE, { users: u(v, { [ALICE]: 100, [BOB]: 50 }) }),
          topic('T2', ALICE),
          powerLevels('PA2', ALICE, { users: u(v, { [ALICE]: 100, [BOB]: 0 }) }),
          powerLevels('PB', BOB, { users: u(v, { [ALICE]: 100, [BOB]: 50 }) }),
          topic('T3', BOB),
          message('MZ1', '@zara:example.com'),
          topic('T4', ALICE),
        ],
        [
          ['END', 'T4', 'MZ1', 'PA2', 'T2', 'PA1', 'T1', 'START'],
          ['END', 'MZ1', 'T3', 'PB', 'PA1'],
        ],
        ['T4', 'PA2'],
      );
    });

    test('mainline sort: the topic based on the newest power levels wins, not the latest sent', async () => {
      // T4 is sent after T3, but T4 hangs off PA1 (an older mainline event) while T3 hangs off
      // PA2, so T3 is applied last. Without the mainline T4 would win on its timestamp.
      await check(
        v,
        [
          topic('T1', ALICE),
          powerLevels('PA1', ALICE, { users: u(v, { [ALICE]: 100, [BOB]: 50 }) }),
          topic('T2', ALICE),
          powerLevels('PA2', ALICE, { users: u(v, { [ALICE]: 100, [BOB]: 50 }), events: { 'm.room.power_levels': 100 } }),
          powerLevels('PB', BOB, { users: u(v, { [ALICE]: 100, [BOB]: 50 }) }),
          topic('T3', BOB),
          topic('T4', ALICE),
        ],
        [
          ['END', 'T3', 'PA2', 'T2', 'PA1', 'T1', 'START'],
          ['END', 'T4', 'PB', 'PA1'],
        ],
        ['T3', 'PA2'],
      );
    });

    test('power levels lowered on one branch: the demoted moderator\'s kick is undone', async () => {
      // Bob (50) kicks Charlie on one branch; on the other Alice lowers Bob to 0. Alice's change
      // sorts first (power 100) and Bob's kick then fails against it.
      await check(
        v,
        [
          powerLevels('PA', ALICE, { users: u(v, { [ALICE]: 100, [BOB]: 50 }) }),
          powerLevels('PA2', ALICE, { users: u(v, { [ALICE]: 100, [BOB]: 0 }) }),
          member('KC', BOB, CHARLIE, 'leave'),
        ],
        [
          ['END', 'PA2', 'PA', 'START'],
          ['END', 'KC', 'PA'],
        ],
        ['PA2'],
      );
    });

    test('a topic fork between equals is settled by the mainline, then the timestamp', async () => {
      // Both topics cite the same power levels event (same mainline position): the later
      // origin_server_ts is applied last and wins.
      const dag = await check(
        v,
        [topic('TA', ALICE), { ...topic('TB', BOB), ts: 1_000 }, powerLevels('PA', ALICE, { users: u(v, { [ALICE]: 100, [BOB]: 50 }) })],
        [
          ['END', 'TA', 'PA', 'START'],
          ['END', 'TB', 'PA'],
        ],
        ['PA', 'TB'],
      );
      assert.ok(dag.event('TB').origin_server_ts > dag.event('TA').origin_server_ts);
    });

    test('a topic fork with equal timestamps is settled by the event id', async () => {
      // Same mainline position and origin_server_ts: the larger event id is applied last.
      await check(
        v,
        [
          powerLevels('PA', ALICE, { users: u(v, { [ALICE]: 100, [BOB]: 50 }) }),
          { ...topic('TX', ALICE), ts: 500 },
          { ...topic('TY', BOB), ts: 500 },
        ],
        [
          ['END', 'TY', 'PA', 'START'],
          ['END', 'TX', 'PA'],
        ],
        ['PA', 'TY'],
      );
    });

    test('a self-leave is not a power event: it is ordered by the mainline like any other', async () => {
      // Charlie leaves (late clock) on one branch and updates his join on the other; both cite
      // the same power levels, so the later timestamp (the leave) is applied last and stands.
      await check(
        v,
        [
          { ...member('LC', CHARLIE, CHARLIE, 'leave'), ts: 1_000 },
          member('JC', CHARLIE, CHARLIE, 'join', { displayname: 'C' }),
        ],
        [
          ['END', 'LC', 'START'],
          ['END', 'JC', 'START'],
        ],
        ['LC'],
      );
    });

    test('join rules change on a fork: an invite-only switch beats a join that relied on public', async () => {
      // Alice switches to invite; Evelyn joins on the other branch, then Charlie invites Dave
      // after her join. The join fails against the new join rules; the invite survives since
      // Charlie is still joined.
      await check(
        v,
        [
          joinRules('JI', ALICE, 'invite'),
          member('ME', EVELYN, EVELYN, 'join'),
          member('ID', CHARLIE, '@dave:example.com', 'invite'),
        ],
        [
          ['END', 'JI', 'START'],
          ['END', 'ID', 'ME', 'START'],
        ],
        ['JI', 'ID'],
      );
    });
  });
}

describe('state res v2 basics', () => {
  test('two concurrent joins merge without conflict resolution dropping either', async () => {
    const version = getRoomVersion('10')!;
    const dag = new TestDag(version);
    await dag.build(
      [...initialEvents(version).slice(0, 4), member('JB', BOB, BOB, 'join'), member('JC', CHARLIE, CHARLIE, 'join'), message('END', ALICE)],
      [
        ['JB', 'IJR', 'IPOWER', 'IMA', 'CREATE'],
        ['END', 'JB'],
        ['END', 'JC', 'IJR'],
      ],
    );
    const end = dag.namedState(dag.stateAfter.get('END')!);
    assert.equal(end.size, 6);
    assert.deepEqual(
      [...end.values()].sort(),
      ['CREATE', 'IJR', 'IMA', 'IPOWER', 'JB', 'JC'],
    );
  });
});
