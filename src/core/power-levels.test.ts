import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  isPrivilegedCreator,
  isValidPowerLevelValue,
  namedPowerLevel,
  notificationPowerLevel,
  parsePowerLevelValue,
  parsePowerLevelsContent,
  requiredPowerLevelForEvent,
  roomCreators,
  userPowerLevel,
  validatePowerLevelsContent,
} from './power-levels.js';
import { ALICE, ALL_VERSIONS, BOB, CAROL, TestRoom, makeCreate, version, versions } from './test-fixtures.js';

describe('parsePowerLevelValue', () => {
  test('integers, integer strings (spec grammar), truncated floats, booleans as Synapse int()', () => {
    const cases: Array<[unknown, number | undefined]> = [
      [50, 50],
      [-5, -5],
      ['100', 100],
      ['000100', 100],
      ['+100', 100],
      ['-100', -100],
      [' 100 ', 100],
      [' +0 ', 0],
      ['-0', 0],
      [50.57, 50],
      [-1.9, -1],
      [5.114698e4, 51146],
      [true, 1],
      [false, 0],
      ['5.5', undefined],
      ['1e3', undefined],
      ['abc', undefined],
      ['', undefined],
      ['+-1', undefined],
      ['0x10', undefined],
      [null, undefined],
      [{}, undefined],
      [[1], undefined],
      [Number.NaN, undefined],
      [Number.POSITIVE_INFINITY, undefined],
    ];
    for (const [input, expected] of cases) {
      assert.equal(parsePowerLevelValue(input), expected, JSON.stringify(input));
    }
  });

  test('v10+ accepts only integers; v1-v9 the lenient forms', () => {
    for (const rv of ALL_VERSIONS) {
      const strict = Number(rv.id) >= 10;
      assert.equal(isValidPowerLevelValue(50, rv), true);
      assert.equal(isValidPowerLevelValue('50', rv), !strict, `v${rv.id} "50"`);
      assert.equal(isValidPowerLevelValue(true, rv), !strict, `v${rv.id} true`);
      assert.equal(isValidPowerLevelValue('x', rv), false);
      assert.equal(isValidPowerLevelValue(5.5, rv), !strict, `v${rv.id} 5.5`);
    }
  });
});

describe('parsePowerLevelsContent', () => {
  test('fills in the spec defaults', () => {
    const levels = parsePowerLevelsContent({});
    assert.equal(levels.usersDefault, 0);
    assert.equal(levels.eventsDefault, 0);
    assert.equal(levels.stateDefault, 50);
    assert.equal(levels.ban, 50);
    assert.equal(levels.kick, 50);
    assert.equal(levels.redact, 50);
    assert.equal(levels.invite, 0);
    assert.equal(levels.notifications.get('room'), 50);
    assert.equal(levels.users.size, 0);
    assert.equal(levels.events.size, 0);
  });

  test('no power levels event at all: the same defaults (state_default stays 50)', () => {
    assert.deepEqual(parsePowerLevelsContent(undefined), parsePowerLevelsContent({}));
  });

  test('reads explicit values, strings, and treats null and junk as absent', () => {
    const levels = parsePowerLevelsContent({
      users_default: '5',
      ban: 10,
      kick: null,
      redact: 'junk',
      users: { [BOB]: '42', [CAROL]: 'x' },
      events: { 'm.room.name': 75 },
      notifications: { room: 20 },
    });
    assert.equal(levels.usersDefault, 5);
    assert.equal(levels.ban, 10);
    assert.equal(levels.kick, 50);
    assert.equal(levels.redact, 50);
    assert.equal(levels.users.get(BOB), 42);
    assert.equal(levels.users.has(CAROL), false);
    assert.equal(levels.events.get('m.room.name'), 75);
    assert.equal(levels.notifications.get('room'), 20);
  });

  test('does not read inherited properties', () => {
    const levels = parsePowerLevelsContent(JSON.parse('{"users": {"__proto__": 5}}'));
    assert.equal(levels.users.get('__proto__'), 5);
    assert.equal(parsePowerLevelsContent({}).users.get('constructor'), undefined);
  });
});

describe('roomCreators', () => {
  test('v1-v10 use content.creator, v11 the sender, v12 sender plus additional_creators', () => {
    for (const rv of ALL_VERSIONS) {
      const create = makeCreate(rv, ALICE, { creator: BOB, additional_creators: [CAROL, 5] });
      const expected = Number(rv.id) <= 10 ? [BOB] : Number(rv.id) === 11 ? [ALICE] : [ALICE, CAROL];
      assert.deepEqual([...roomCreators(create, rv)].sort(), expected.sort(), `v${rv.id}`);
    }
    assert.equal(roomCreators(undefined, version('12')).size, 0);
  });
});

describe('userPowerLevel', () => {
  for (const rv of versions(1, 11)) {
    test(`v${rv.id}: without power levels the creator has 100, others 0`, () => {
      const room = new TestRoom(rv);
      assert.equal(userPowerLevel(ALICE, room.lookup, rv), 100);
      assert.equal(userPowerLevel(BOB, room.lookup, rv), 0);
    });

    test(`v${rv.id}: with power levels, users entries then users_default; the creator is not special`, () => {
      const room = new TestRoom(rv);
      room.powerLevels({ users: { [BOB]: 30 }, users_default: 7 });
      assert.equal(userPowerLevel(BOB, room.lookup, rv), 30);
      assert.equal(userPowerLevel(CAROL, room.lookup, rv), 7);
      assert.equal(userPowerLevel(ALICE, room.lookup, rv), 7);
    });
  }

  test('v10: the creator is content.creator when there are no power levels', () => {
    const rv = version('10');
    const room = new TestRoom(rv, { createContent: { creator: BOB } });
    assert.equal(userPowerLevel(BOB, room.lookup, rv), 100);
    assert.equal(userPowerLevel(ALICE, room.lookup, rv), 0);
  });

  test('v11: the creator is the sender', () => {
    const rv = version('11');
    const room = new TestRoom(rv, { createContent: { creator: BOB } });
    assert.equal(userPowerLevel(ALICE, room.lookup, rv), 100);
    assert.equal(userPowerLevel(BOB, room.lookup, rv), 0);
  });

  test('v12: creators and additional creators have infinite power, with or without power levels', () => {
    const rv = version('12');
    const room = new TestRoom(rv, { createContent: { additional_creators: [BOB] } });
    assert.equal(userPowerLevel(ALICE, room.lookup, rv), Number.POSITIVE_INFINITY);
    assert.equal(userPowerLevel(BOB, room.lookup, rv), Number.POSITIVE_INFINITY);
    assert.equal(userPowerLevel(CAROL, room.lookup, rv), 0);
    room.powerLevels({ users: { [CAROL]: 100 }, users_default: 3 });
    assert.equal(userPowerLevel(ALICE, room.lookup, rv), Number.POSITIVE_INFINITY);
    assert.equal(userPowerLevel(CAROL, room.lookup, rv), 100);
    assert.equal(isPrivilegedCreator(BOB, room.lookup, rv), true);
    assert.equal(isPrivilegedCreator(CAROL, room.lookup, rv), false);
  });

  test('pre-v10 string levels are read as numbers', () => {
    const rv = version('9');
    const room = new TestRoom(rv);
    room.powerLevels({ users: { [BOB]: ' 75 ' }, users_default: '-1' });
    assert.equal(userPowerLevel(BOB, room.lookup, rv), 75);
    assert.equal(userPowerLevel(CAROL, room.lookup, rv), -1);
  });
});

describe('requiredPowerLevelForEvent and named levels', () => {
  test('events entry, else state_default / events_default', () => {
    const room = new TestRoom(version('10'));
    room.powerLevels({ events: { 'm.room.name': 70 }, state_default: 40, events_default: 10 });
    assert.equal(requiredPowerLevelForEvent('m.room.name', true, room.lookup), 70);
    assert.equal(requiredPowerLevelForEvent('m.room.name', false, room.lookup), 70);
    assert.equal(requiredPowerLevelForEvent('m.room.topic', true, room.lookup), 40);
    assert.equal(requiredPowerLevelForEvent('m.room.message', false, room.lookup), 10);
  });

  test('without power levels: 50 for state, 0 for messages', () => {
    const room = new TestRoom(version('10'));
    assert.equal(requiredPowerLevelForEvent('m.room.topic', true, room.lookup), 50);
    assert.equal(requiredPowerLevelForEvent('m.room.message', false, room.lookup), 0);
  });

  test('named levels and notifications', () => {
    const room = new TestRoom(version('10'));
    assert.equal(namedPowerLevel('invite', room.lookup), 0);
    assert.equal(namedPowerLevel('ban', room.lookup), 50);
    assert.equal(notificationPowerLevel('room', room.lookup), 50);
    room.powerLevels({ invite: 5, kick: 6, redact: 7, ban: 8, notifications: { room: 9 } });
    assert.equal(namedPowerLevel('invite', room.lookup), 5);
    assert.equal(namedPowerLevel('kick', room.lookup), 6);
    assert.equal(namedPowerLevel('redact', room.lookup), 7);
    assert.equal(namedPowerLevel('ban', room.lookup), 8);
    assert.equal(notificationPowerLevel('room', room.lookup), 9);
    assert.equal(notificationPowerLevel('other', room.lookup), 50);
  });
});

describe('validatePowerLevelsContent', () => {
  test('v9 accepts strings, v10 does not', () => {
    const content = { ban: '50', users: { [BOB]: '10' } };
    assert.equal(validatePowerLevelsContent(content, version('9')), undefined);
    assert.match(validatePowerLevelsContent(content, version('10')) ?? '', /"ban" must be an integer/);
  });

  test('pre-v10 only the users map is validated (as Synapse does)', () => {
    assert.equal(validatePowerLevelsContent({ ban: 'junk', events: 5 }, version('9')), undefined);
    assert.match(validatePowerLevelsContent({ users: { [BOB]: 'junk' } }, version('9')) ?? '', /not an integer/);
  });

  test('v12 creators cannot be listed', () => {
    const creators = new Set([ALICE]);
    assert.match(validatePowerLevelsContent({ users: { [ALICE]: 100 } }, version('12'), creators) ?? '', /creator/);
    assert.equal(validatePowerLevelsContent({ users: { [ALICE]: 100 } }, version('11'), creators), undefined);
  });
});
