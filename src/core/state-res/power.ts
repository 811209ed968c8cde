// Power events and sender power levels as state resolution v2 sees them.
import { userPowerLevel } from '../power-levels.js';
import type { RoomVersion } from '../room-versions.js';
import type { RoomEvent } from '../types.js';
import type { EventCache } from './event-cache.js';

/**
 * Power events: events that may take away someone's ability to act. Like Synapse and Ruma,
 * power levels and join rules count only with the empty state key (the only key the auth rules
 * read), and the create event counts too; it can only be conflicted in a broken room, and then
 * ordering it first is what every implementation does.
 */
export function isPowerEvent(ev: RoomEvent): boolean {
  if (ev.state_key === '') {
    if (ev.type === 'm.room.power_levels' || ev.type === 'm.room.join_rules' || ev.type === 'm.room.create') {
      return true;
    }
  }
  if (ev.type === 'm.room.member' && typeof ev.state_key === 'string') {
    const membership = ev.content['membership'];
    if (membership === 'leave' || membership === 'ban') return ev.sender !== ev.state_key;
  }
  return false;
}

/**
 * The sender's power level according to the event's own auth events (not the resolved state):
 * that is what the reverse topological power ordering compares. Rejected auth events still
 * count here, as in Synapse: this only orders events, it authorises nothing.
 */
export function senderPowerLevel(ev: RoomEvent, cache: EventCache, version: RoomVersion): number {
  let pl: RoomEvent | undefined;
  let create: RoomEvent | undefined;
  for (const aid of cache.authEdges(ev)) {
    const aev = cache.get(aid);
    if (!aev || aev.state_key !== '') continue;
    if (aev.type === 'm.room.power_levels') pl = aev;
    else if (aev.type === 'm.room.create') create = aev;
  }
  // Without a create event nobody is a creator (the create event itself, or a broken event).
  if (!create) return pl ? userPowerLevel(ev.sender, (t, sk) => (t === 'm.room.power_levels' && sk === '' ? pl : undefined), version) : 0;
  return userPowerLevel(
    ev.sender,
    (t, sk) => {
      if (sk !== '') return undefined;
      if (t === 'm.room.power_levels') return pl;
      if (t === 'm.room.create') return create;
      return undefined;
    },
    version,
  );
}
