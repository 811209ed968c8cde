// State resolution v1 (room version 1), as Synapse implements it.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, test } from 'node:test';
import { getRoomVersion } from '../room-versions.js';
import { stateKey } from '../types.js';
import { ALICE, BOB, CHARLIE, EVELYN, INITIAL_EDGES, TestDag, initialEvents, member, powerLevels, topic, type EventSpec } from './test-dag.js';
import { separateV1 } from './v1.js';
import { separateV2 } from './v2.js';

const V1 = getRoomVersion('1')!;

async function build(events: EventSpec[], edges: string[][]): Promise<TestDag> {
  const dag = new TestDag(V1);
  await dag.build([...initialEvents(V1), ...events], [INITIAL_EDGES, ...edges]);
  return dag;
}

describe('state res v1', () => {
  test('a key missing from one state set is not a conflict in v1 (it is in v2)', () => {
    const a = new Map([[stateKey('m.room.topic', ''), '$t:x']]);
    const b = new Map<string, string>();
    assert.deepEqual([...separateV1([a, b]).unconflicted], [[stateKey('m.room.topic', ''), '$t:x']]);
    assert.equal(separateV1([a, b]).conflicted.size, 0);
    assert.equal(separateV2([a, b]).unconflicted.size, 0);
    assert.deepEqual([...separateV2([a, b]).conflicted.get(stateKey('m.room.topic', ''))!], ['$t:x']);
  });

  test('conflicting power levels: the deeper change applies when it passes auth on top of the older', async () => {
    const dag = await build(
      [
        powerLevels('PA', ALICE, { users: { [ALICE]: 100, [BOB]: 50 } }),
        powerLevels('PB', BOB, { users: { [ALICE]: 100, [BOB]: 50, [CHARLIE]: 50 } }),
        topic('T', ALICE),
      ],
      [
        ['END', 'PB', 'PA', 'START'],
        ['END', 'T', 'PA'],
      ],
    );
    assert.deepEqual(dag.changedState('START', 'END', ['PB', 'T']), dag.expectedState(['PB', 'T']));
  });

  test('conflicting power levels: the chain stops at the last change that passed', async () => {
    // Bob (50) tries to give Charlie 75, above his own level.
    const dag = await build(
      [
        powerLevels('PA', ALICE, { users: { [ALICE]: 100, [BOB]: 50 } }),
        powerLevels('PB', BOB, { users: { [ALICE]: 100, [BOB]: 50, [CHARLIE]: 75 } }),
        topic('T', ALICE),
      ],
      [
        ['END', 'PB', 'PA', 'START'],
        ['END', 'T', 'PA'],
      ],
    );
    assert.deepEqual(dag.changedState('START', 'END', ['PA', 'T']), dag.expectedState(['PA', 'T']));
  });

  test('other conflicts: the deepest event that passes auth wins', async () => {
    // T2 is deepest but Bob (0) may not set the topic; T3 is the next candidate.
    const dag = await build(
      [topic('T1', ALICE), topic('T2', BOB), topic('T3', ALICE)],
      [
        ['END', 'T2', 'T1', 'START'],
        ['END', 'T3', 'START'],
      ],
    );
    assert.equal(dag.event('T2').depth, dag.event('T3').depth + 1);
    assert.deepEqual(dag.changedState('START', 'END', ['T3']), dag.expectedState(['T3']));
  });

  test('other conflicts: among passing events of equal depth the lowest sha1(event_id) wins', async () => {
    const dag = await build(
      [topic('TA', ALICE), topic('TB', ALICE)],
      [
        ['END', 'TA', 'START'],
        ['END', 'TB', 'START'],
      ],
    );
    const sha1 = (node: string) => createHash('sha1').update(dag.eventId(node)).digest('hex');
    const winner = sha1('TA') < sha1('TB') ? 'TA' : 'TB';
    assert.deepEqual(dag.changedState('START', 'END', [winner]), dag.expectedState([winner]));
  });

  test('other conflicts: when none passes, the last in order (shallowest) is kept', async () => {
    // Both topics are by Bob, who may not set one: v1 still keeps one (the last in order).
    const dag = await build(
      [topic('T1', BOB), topic('T2', BOB), topic('T3', BOB)],
      [
        ['END', 'T2', 'T1', 'START'],
        ['END', 'T3', 'START'],
      ],
    );
    // The candidates are T2 (deeper) and T3, so T3 is last in order.
    assert.deepEqual(dag.changedState('START', 'END', ['T3']), dag.expectedState(['T3']));
  });

  test('a ban racing a join of the same user wins whichever applies first', async () => {
    const dag = await build(
      [member('BE', ALICE, EVELYN, 'ban'), member('JE', EVELYN, EVELYN, 'join')],
      [
        ['END', 'BE', 'START'],
        ['END', 'JE', 'START'],
      ],
    );
    assert.deepEqual(dag.changedState('START', 'END', ['BE']), dag.expectedState(['BE']));
  });

  test('v1 weakness: a join on one side only is not a conflict and survives a switch to invite-only', async () => {
    // Evelyn's membership exists on one side only, so v1 never checks it against the new rules.
    const dag = await build(
      [
        { id: 'JI', sender: ALICE, type: 'm.room.join_rules', stateKey: '', content: { join_rule: 'invite' } },
        member('JE', EVELYN, EVELYN, 'join'),
      ],
      [
        ['END', 'JI', 'START'],
        ['END', 'JE', 'START'],
      ],
    );
    // v1's known weakness: a key present on one side only is not a conflict, so the join stays.
    assert.deepEqual(dag.changedState('START', 'END', ['JI', 'JE']), dag.expectedState(['JI', 'JE']));
  });

  test('memberships are resolved against the join rules resolved before them', async () => {
    // Charlie leaves on both branches; on one he rejoins (RJ) while on the other Alice switches to
    // invite-only (JI) before his leave (LC). JI wins the join rules; then of LC and RJ (same
    // depth), LC applies first and RJ must pass with LC and JI in place, which it cannot.
    const dag = await build(
      [
        { id: 'JI', sender: ALICE, type: 'm.room.join_rules', stateKey: '', content: { join_rule: 'invite' } },
        member('LC', CHARLIE, CHARLIE, 'leave'),
        member('LY', CHARLIE, CHARLIE, 'leave'),
        member('RJ', CHARLIE, CHARLIE, 'join'),
      ],
      [
        ['END', 'LC', 'JI', 'START'],
        ['END', 'RJ', 'LY', 'START'],
      ],
    );
    const sha1 = (node: string) => createHash('sha1').update(dag.eventId(node)).digest('hex');
    assert.equal(dag.event('LC').depth, dag.event('RJ').depth);
    // Ascending depth then descending sha1: LC is applied before RJ.
    assert.ok(sha1('LC') > sha1('RJ'));
    assert.deepEqual(dag.changedState('START', 'END', ['JI', 'LC']), dag.expectedState(['JI', 'LC']));
  });

  test('a join relies on the join rules resolved in the pass before memberships', async () => {
    // Bob (no power) tries to make the room invite-only (JB) and fails, so the join rules stay
    // public; Charlie's rejoin (RJ) then passes against them even though his leave LC is applied
    // first. Had memberships been resolved before join rules, RJ would see no join rules at all.
    const dag = await build(
      [
        { id: 'JB', sender: BOB, type: 'm.room.join_rules', stateKey: '', content: { join_rule: 'invite' } },
        member('LC', CHARLIE, CHARLIE, 'leave'),
        member('LY', CHARLIE, CHARLIE, 'leave'),
        member('RJ', CHARLIE, CHARLIE, 'join'),
      ],
      [
        ['END', 'LC', 'JB', 'START'],
        ['END', 'RJ', 'LY', 'START'],
      ],
    );
    const sha1 = (node: string) => createHash('sha1').update(dag.eventId(node)).digest('hex');
    assert.ok(sha1('LC') > sha1('RJ'));
    assert.deepEqual(dag.changedState('START', 'END', ['IJR', 'RJ']), dag.expectedState(['IJR', 'RJ']));
  });
});
