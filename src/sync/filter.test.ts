import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { applyEventFields, eventAllowed, roomEventAllowed, validateFilter } from './filter.js';

describe('sync filters', () => {
  it('accepts the spec example and refuses wrong types with M_BAD_JSON', () => {
    validateFilter({
      event_fields: ['type', 'content', 'sender'],
      event_format: 'client',
      presence: { not_senders: ['@alice:example.com'], types: ['m.presence'] },
      room: { ephemeral: { not_rooms: ['!x:y'], types: ['m.receipt', 'm.typing'] }, timeline: { limit: 10, types: ['m.room.message'] } },
    });
    assert.throws(() => validateFilter({ room: { timeline: { limit: 'ten' } } }), (e: { errcode?: string }) => e.errcode === 'M_BAD_JSON');
    assert.throws(() => validateFilter({ event_format: 'xml' }), (e: { errcode?: string }) => e.errcode === 'M_BAD_JSON');
  });

  it('matches types with * wildcards, with not_types winning', () => {
    const f = { types: ['m.room.*'], not_types: ['m.room.member'] };
    assert.ok(eventAllowed(f, { type: 'm.room.message' }));
    assert.ok(!eventAllowed(f, { type: 'm.room.member' }));
    assert.ok(!eventAllowed(f, { type: 'm.reaction' }));
  });

  it('filters on senders, rooms and contains_url', () => {
    assert.ok(!eventAllowed({ not_senders: ['@a:x'] }, { type: 't', sender: '@a:x' }));
    assert.ok(!roomEventAllowed({ rooms: ['!a:x'] }, { type: 't', room_id: '!b:x' }));
    assert.ok(roomEventAllowed({ contains_url: true }, { type: 't', room_id: '!b:x', content: { url: 'mxc://x/y' } }));
    assert.ok(!roomEventAllowed({ contains_url: true }, { type: 't', room_id: '!b:x', content: {} }));
  });

  it('keeps only the event_fields asked for', () => {
    const e = { type: 't', sender: '@a:x', content: { body: 'b', 'm.x': 1, other: 2 } };
    assert.deepEqual(applyEventFields(e, ['type', 'content.body', 'content.m\\.x']), { type: 't', content: { body: 'b', 'm.x': 1 } });
  });
});
