import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_ROOM_VERSION, getRoomVersion, ROOM_VERSIONS, type RoomVersion } from './room-versions.js';

// Where each behaviour starts, per the spec's room version pages (rooms/v1.md ... v12.md).
const SINCE: Array<[keyof RoomVersion, number, number?]> = [
  ['enforceKeyValidity', 5],
  ['strictCanonicalJson', 6],
  ['limitNotificationsPowerLevels', 6],
  ['knockJoinRule', 7],
  ['restrictedJoinRule', 8],
  ['restrictedJoinRuleFix', 9],
  ['knockRestrictedJoinRule', 10],
  ['integerPowerLevels', 10],
  ['implicitRoomCreator', 11],
  ['updatedRedactionRules', 11],
  ['privilegedCreators', 12],
  ['roomIdFromCreateEvent', 12],
];

describe('room versions', () => {
  test('1 to 12 are known, stable, and nothing else', () => {
    assert.deepEqual([...ROOM_VERSIONS.keys()], ['1', '2', '3', '4', '5', '6', '7', '8', '9', '10', '11', '12']);
    for (const v of ROOM_VERSIONS.values()) assert.ok(v.stable);
    assert.equal(getRoomVersion('13'), undefined);
    assert.equal(getRoomVersion('org.matrix.msc1234'), undefined);
    assert.ok(getRoomVersion(DEFAULT_ROOM_VERSION));
  });

  for (const [flag, since] of SINCE) {
    test(`${flag} from v${since}`, () => {
      for (const [id, v] of ROOM_VERSIONS) assert.equal(v[flag], Number(id) >= since, `v${id}`);
    });
  }

  test('aliases special case only up to v5', () => {
    for (const [id, v] of ROOM_VERSIONS) assert.equal(v.specialCaseAliasesAuth, Number(id) <= 5, `v${id}`);
  });

  test('event id formats and state resolution', () => {
    const expected: Record<string, [string, string]> = {
      '1': ['v1', 'v1'],
      '2': ['v1', 'v2'],
      '3': ['v3', 'v2'],
      '4': ['v4', 'v2'],
      '11': ['v4', 'v2'],
      '12': ['v4', 'v2.1'],
    };
    for (const [id, [format, stateRes]] of Object.entries(expected)) {
      assert.equal(getRoomVersion(id)!.eventIdFormat, format);
      assert.equal(getRoomVersion(id)!.stateResolution, stateRes);
    }
  });

  test('version objects are frozen', () => {
    assert.ok(Object.isFrozen(getRoomVersion('11')));
  });
});
