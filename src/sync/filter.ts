// Sync filters (the spec's Filter object): validation, defaults and matching. Pure: no I/O.
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

export interface Filter {
  event_fields?: string[];
  event_format?: 'client' | 'federation';
  presence?: EventFilter;
  account_data?: EventFilter;
  room?: {
    rooms?: string[];
    not_rooms?: string[];
    include_leave?: boolean;
    ephemeral?: RoomEventFilter;
    state?: RoomEventFilter;
    timeline?: RoomEventFilter;
    account_data?: RoomEventFilter;
  };
}

const strings = { type: 'array', items: { type: 'string' } } as const;
const eventFilter = {
  type: 'object',
  properties: {
    limit: { type: 'integer', minimum: 0 },
    types: strings,
    not_types: strings,
    senders: strings,
    not_senders: strings,
  },
} as const;
const roomEventFilter = {
  type: 'object',
  properties: {
    ...eventFilter.properties,
    rooms: strings,
    not_rooms: strings,
    contains_url: { type: 'boolean' },
    lazy_load_members: { type: 'boolean' },
    include_redundant_members: { type: 'boolean' },
    unread_thread_notifications: { type: 'boolean' },
  },
} as const;

/** Throws M_BAD_JSON naming the offending key. */
export const validateFilter = compileBody<Filter>({
  type: 'object',
  properties: {
    event_fields: strings,
    event_format: { type: 'string', enum: ['client', 'federation'] },
    presence: eventFilter,
    account_data: eventFilter,
    room: {
      type: 'object',
      properties: {
        rooms: strings,
        not_rooms: strings,
        include_leave: { type: 'boolean' },
        ephemeral: roomEventFilter,
        state: roomEventFilter,
        timeline: roomEventFilter,
        account_data: roomEventFilter,
      },
    },
  },
});

/** Timeline events per room when the filter names no limit (Synapse's default). */
export const DEFAULT_TIMELINE_LIMIT = 10;
/** Upper bound on a filter's timeline limit, so one request cannot ask for everything. */
export const MAX_TIMELINE_LIMIT = 1000;

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

/** A RoomEventFilter adds rooms and contains_url. */
export function roomEventAllowed(f: RoomEventFilter | undefined, ev: { type: string; sender?: string; room_id: string; content?: unknown }): boolean {
  if (!f) return true;
  if (!eventAllowed(f, ev)) return false;
  if (!roomAllowed(f, ev.room_id)) return false;
  if (f.contains_url !== undefined) {
    const c = ev.content as Record<string, unknown> | undefined;
    const has = typeof c?.['url'] === 'string';
    if (has !== f.contains_url) return false;
  }
  return true;
}

export function roomAllowed(f: { rooms?: string[]; not_rooms?: string[] } | undefined, roomId: string): boolean {
  if (!f) return true;
  if (f.not_rooms?.includes(roomId)) return false;
  if (f.rooms && !f.rooms.includes(roomId)) return false;
  return true;
}

/** Whether a filter section asks for nothing at all (types: [] or limit 0): skip its queries. */
export function sectionDisabled(f: EventFilter | undefined): boolean {
  return !!f && ((f.types !== undefined && f.types.length === 0) || f.limit === 0);
}

/**
 * event_fields: keeps only the listed dotted paths (`\.` for a literal dot) of each event.
 * Unknown paths are skipped; an empty list keeps nothing but is applied as given.
 */
export function applyEventFields(event: Record<string, unknown>, fields: string[] | undefined): Record<string, unknown> {
  if (!fields) return event;
  const out: Record<string, unknown> = {};
  for (const field of fields) {
    const path = splitField(field);
    let src: unknown = event;
    for (const p of path) src = typeof src === 'object' && src !== null && !Array.isArray(src) ? (src as Record<string, unknown>)[p] : undefined;
    if (src === undefined) continue;
    let dst = out;
    for (const p of path.slice(0, -1)) {
      if (typeof dst[p] !== 'object' || dst[p] === null) dst[p] = {};
      dst = dst[p] as Record<string, unknown>;
    }
    dst[path.at(-1)!] = src;
  }
  return out;
}

function splitField(field: string): string[] {
  const parts: string[] = [];
  let cur = '';
  for (let i = 0; i < field.length; i++) {
    if (field[i] === '\\' && field[i + 1] === '.') cur += field[++i];
    else if (field[i] === '.') {
      parts.push(cur);
      cur = '';
    } else cur += field[i];
  }
  parts.push(cur);
  return parts;
}
