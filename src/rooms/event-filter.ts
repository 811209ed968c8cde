// The RoomEventFilter of /messages and /context (spec "Filtering"), given as JSON in the
// `filter` query parameter. Rooms keep their own small copy of the matcher rather than import
// the sync domain's (sync depends on rooms, not the other way round).
import { MatrixError } from '../http/errors.js';
import { compileBody } from '../http/validate.js';

export interface RoomEventFilter {
  limit?: number;
  types?: string[];
  not_types?: string[];
  senders?: string[];
  not_senders?: string[];
  contains_url?: boolean;
  lazy_load_members?: boolean;
  include_redundant_members?: boolean;
  rooms?: string[];
  not_rooms?: string[];
  unread_thread_notifications?: boolean;
}

const strings = { type: 'array', items: { type: 'string' } } as const;
const validate = compileBody<RoomEventFilter>({
  type: 'object',
  properties: {
    limit: { type: 'integer', minimum: 0 },
    types: strings,
    not_types: strings,
    senders: strings,
    not_senders: strings,
    rooms: strings,
    not_rooms: strings,
    contains_url: { type: 'boolean' },
    lazy_load_members: { type: 'boolean' },
    include_redundant_members: { type: 'boolean' },
    unread_thread_notifications: { type: 'boolean' },
  },
});

/** Parses the `filter` query parameter; 400 M_BAD_JSON / M_INVALID_PARAM when it is not one. */
export function parseRoomEventFilter(text: string | undefined): RoomEventFilter | undefined {
  if (text === undefined || text === '') return undefined;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new MatrixError('M_INVALID_PARAM', "'filter' is not valid JSON");
  }
  return validate(value);
}

/** `*` matches any run of characters (the spec's wildcard in types). */
function typeMatches(pattern: string, type: string): boolean {
  if (!pattern.includes('*')) return pattern === type;
  const re = new RegExp(`^${pattern.split('*').map((p) => p.replace(/[\\^$.|?+()[\]{}-]/g, '\\$&')).join('.*')}$`, 's');
  return re.test(type);
}

export function eventMatches(f: RoomEventFilter | undefined, e: { type: string; sender: string; room_id: string; content: Record<string, unknown> }): boolean {
  if (!f) return true;
  if (f.not_types?.some((p) => typeMatches(p, e.type))) return false;
  if (f.types && !f.types.some((p) => typeMatches(p, e.type))) return false;
  if (f.not_senders?.includes(e.sender)) return false;
  if (f.senders && !f.senders.includes(e.sender)) return false;
  if (f.not_rooms?.includes(e.room_id)) return false;
  if (f.rooms && !f.rooms.includes(e.room_id)) return false;
  if (f.contains_url !== undefined && (typeof e.content['url'] === 'string') !== f.contains_url) return false;
  return true;
}
