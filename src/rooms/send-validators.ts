// Checks on events this server builds that the auth rules cannot make, run under the room's
// lock before the event is built (send.ts sendUnderLock calls every RoomDeps.sendValidators):
//  - m.room.canonical_alias: every alias must be valid and point at this room (M_BAD_ALIAS);
//  - relations (as Synapse checks them): the parent, when known, must be in this room; a
//    thread cannot start from an event that itself has a relation (400 M_UNKNOWN, spec
//    "Validation of m.thread relationships"); the same reaction twice is refused
//    (M_DUPLICATE_ANNOTATION).
import { domainOf } from '../core/auth-rules.js';
import { isValidRoomAlias } from '../core/identifiers.js';
import type { JsonObject } from '../core/types.js';
import { MatrixError } from '../http/errors.js';
import type { RoomDeps, SendValidator } from './context.js';
import * as historySql from './store/history.js';
import * as roomsSql from './store/rooms.js';

export const validateCanonicalAlias: SendValidator = async (d, lock, spec) => {
  if (spec.type !== 'm.room.canonical_alias' || spec.state_key !== '') return;
  const aliases: unknown[] = [];
  if (spec.content['alias'] !== undefined) aliases.push(spec.content['alias']);
  const alt = spec.content['alt_aliases'];
  if (alt !== undefined) {
    if (!Array.isArray(alt)) throw new MatrixError('M_INVALID_PARAM', 'alt_aliases must be a list of room aliases');
    aliases.push(...alt);
  }
  for (const alias of aliases) {
    if (typeof alias !== 'string' || !isValidRoomAlias(alias)) throw new MatrixError('M_INVALID_PARAM', `${JSON.stringify(alias)} is not a valid room alias`);
    // Aliases of other servers cannot be checked without federation, so they are refused
    // rather than published unchecked.
    if (domainOf(alias) !== d.serverName) throw new MatrixError('M_BAD_ALIAS', `Cannot check alias ${alias} of another server`);
    const target = await roomsSql.resolveAlias(lock.tx, alias);
    if (target !== lock.room.roomId) throw new MatrixError('M_BAD_ALIAS', `Room alias ${alias} does not point to this room`);
  }
};

export const validateRelation: SendValidator = async (d: RoomDeps, lock, spec) => {
  const rel = spec.content['m.relates_to'];
  if (typeof rel !== 'object' || rel === null || Array.isArray(rel)) return;
  const r = rel as JsonObject;
  const relType = r['rel_type'];
  const parentId = r['event_id'];
  if (typeof relType !== 'string' || typeof parentId !== 'string') return;
  const parent = (await d.events.byIds(lock.tx, [parentId])).get(parentId);
  if (!parent) return;
  if (parent.roomNid !== lock.room.roomNid) throw new MatrixError('M_UNKNOWN', 'Relations must be to an event in the same room', { status: 400 });
  if (relType === 'm.thread' && (await historySql.hasRelation(lock.tx, parent.nid))) {
    throw new MatrixError('M_UNKNOWN', 'Cannot start a thread from an event with a relation', { status: 400 });
  }
  if (relType === 'm.annotation' && typeof r['key'] === 'string' && (await historySql.hasAnnotation(lock.tx, parent.nid, spec.sender, spec.type, r['key']))) {
    throw new MatrixError('M_DUPLICATE_ANNOTATION', 'You already sent this annotation to this event', { status: 400 });
  }
};

export const SEND_VALIDATORS: SendValidator[] = [validateCanonicalAlias, validateRelation];
