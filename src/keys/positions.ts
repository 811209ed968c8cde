// Positions of the two streams keys owns, as they travel in sync tokens, and the hook sync
// subscribes to. The token format is sync's (src/sync/token.ts): parts joined by '_', each a
// stream key (letters) and a decimal position, e.g. `e42_r7_t3_a9_d0_l5_p2`, with `d` the
// to-device and `l` the device-list position. This module is the one place keys reads a
// position out of a token (through token.ts's parser: unknown parts skipped, a missing part is
// 0, no known part at all is 400 M_INVALID_PARAM), so /keys/changes accepts exactly the
// `next_batch` values /sync hands out.
//
// For the sync engineer:
//  - next_batch: take `toDevice` and `deviceLists` from KeysService.streamHeads(), read in the
//    same REPEATABLE READ snapshot as the other streams (the heads only move at commit, in order).
//  - to_device: ToDeviceService.toDeviceSince(user, device, token.toDevice, limit) returns the
//    events and the position to put in next_batch (lower than the head when `limited`); on the
//    next sync call deleteToDeviceUpTo(user, device, since.toDevice) first.
//  - device_lists.changed: KeysService.changedUsersBetween(user, from, to); `left` and users who
//    newly share a room come from the rooms side (RoomMembershipView in service.ts).
//  - device_one_time_keys_count / device_unused_fallback_key_types: KeysService.syncKeyFigures
//    (one query).
//  - wake-ups: subscribe to KeysService.streamListeners / ToDeviceService.streamListeners; each
//    call names the position and the users whose sync should wake (for device lists, the users
//    whose keys changed: fan out to those who share a room with them).
import { parseSyncToken } from '../sync/token.js';

export interface StreamHeads {
  toDevice: number;
  deviceLists: number;
}

export interface StreamChange {
  stream: 'toDevice' | 'deviceLists';
  position: number;
  /** toDevice: the recipients. deviceLists: the users whose keys changed. */
  userIds: string[];
}

export type StreamListener = (change: StreamChange) => void;

/** The device-list position of a sync token; 400 M_INVALID_PARAM for anything else. */
export function deviceListPosition(token: string): number {
  return parseSyncToken(token).deviceLists;
}

/** The to-device position of a sync token. */
export function toDevicePosition(token: string): number {
  return parseSyncToken(token).toDevice;
}

/** Calls each listener; a failing listener is logged by the caller's `onError`, never thrown. */
export function emitStreamChange<T = StreamChange>(listeners: readonly ((change: T) => void)[], change: T, onError: (err: unknown) => void): void {
  for (const listener of listeners) {
    try {
      listener(change);
    } catch (err) {
      onError(err);
    }
  }
}
