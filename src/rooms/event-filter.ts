// The spec's EventFilter and RoomEventFilter ("Filtering"): their types, their JSON schemas and
// the matching. /messages and /context take a RoomEventFilter as JSON in the `filter` query
// parameter; sync filters (src/sync/filter.ts) are built from the same pieces. Kept here, in the
// lower layer, because sync depends on rooms and not the other way round.
import { MatrixError } from '../http/errors.js';
import { compileBody } from '../http/validate.js';

export interface EventFilter {
  limit?: number;
  types?: string[];
  not_types?: string[];
  senders?: string[];
  not_senders?: string[];
}

export interface RoomEventFilter extends EventFilter {
  rooms?: string[];
  not_rooms?: string[];
  contains_url?: boolean;
  lazy_load_members?: boolean;
  include_redundant_members?: boolean;
  unread_thread_notifications?: boolean;
}

export const strings = { type: 'array', items: { type: 'string' } } as const;

/** JSON schema of an EventFilter. */
export const eventFilterSchema = {
  type: 'object',
  properties: {
    limit: { type: 'integer', minimum: 0 },
    types: strings,
    not_types: strings,
    senders: strings,
    not_senders: strings,
  },
} as const;

/** JSON schema of a RoomEventFilter. */
export const roomEventFilterSchema = {
  type: 'object',
  properties: {
    ...eventFilterSchema.properties,
    rooms: strings,
    not_rooms: strings,
    contains_url: { type: 'boolean' },
    lazy_load_members: { type: 'boolean' },
    include_redundant_members: { type: 'boolean' },
    unread_thread_notifications: { type: 'boolean' },
  },
} as const;

const validate = compileBody<RoomEventFilter>(roomEventFilterSchema);

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

/** `*` in a type pattern matches any run of characters (the spec's filter types). */
function typeMatches(pattern: string, type: string): boolean {
  if (!pattern.includes('*')) return pattern === type;
  const re = new RegExp(`^${pattern.split('*').map((p) => p.replace(/[\\^$.|?+()[\]{}\-]/g, '\\$&')).join('.*')}$`, 's');
  return re.test(type);
}

/** Whether an event passes an EventFilter's type and sender lists. */
export function eventAllowed(f: EventFilter | undefined, ev: { type: string; sender?: string }): boolean {
  if (!f) return true;
  if (f.not_types?.some((p) => typeMatches(p, ev.type))) return false;
  if (f.types && !f.types.some((p) => typeMatches(p, ev.type))) return false;
  if (ev.sender !== undefined) {
    if (f.not_senders?.includes(ev.sender)) return false;
    if (f.senders && !f.senders.includes(ev.sender)) return false;
  }
  return true;
}

export function roomAllowed(f: { rooms?: string[]; not_rooms?: string[] } | undefined, roomId: string): boolean {
  if (!f) return true;
  if (f.not_rooms?.includes(roomId)) return false;
  if (f.rooms && !f.rooms.includes(roomId)) return false;
  return true;
}

/** A RoomEventFilter adds rooms and contains_url to an EventFilter. */
export function roomEventAllowed(f: RoomEventFilter | undefined, ev: { type: string; sender?: string; room_id: string; content?: unknown }): boolean {
  if (!f) return true;
  if (!eventAllowed(f, ev)) return false;
  if (!roomAllowed(f, ev.room_id)) return false;
  if (f.contains_url !== undefined) {
    const c = ev.content as Record<string, unknown> | undefined;
    if ((typeof c?.['url'] === 'string') !== f.contains_url) return false;
  }
  return true;
}
