// Sync filters (the spec's Filter object): validation, defaults and matching. Pure: no I/O.
// Its event and room event filters are the rooms domain's (src/rooms/event-filter.ts).
import { compileBody } from '../http/validate.js';
import { eventFilterSchema, roomEventFilterSchema, strings, type EventFilter, type RoomEventFilter } from '../rooms/event-filter.js';

export { eventAllowed, roomAllowed, roomEventAllowed, type EventFilter, type RoomEventFilter } from '../rooms/event-filter.js';

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

/** Throws M_BAD_JSON naming the offending key. */
export const validateFilter = compileBody<Filter>({
  type: 'object',
  properties: {
    event_fields: strings,
    event_format: { type: 'string', enum: ['client', 'federation'] },
    presence: eventFilterSchema,
    account_data: eventFilterSchema,
    room: {
      type: 'object',
      properties: {
        rooms: strings,
        not_rooms: strings,
        include_leave: { type: 'boolean' },
        ephemeral: roomEventFilterSchema,
        state: roomEventFilterSchema,
        timeline: roomEventFilterSchema,
        account_data: roomEventFilterSchema,
      },
    },
  },
});

/** Timeline events per room when the filter names no limit (Synapse's default). */
export const DEFAULT_TIMELINE_LIMIT = 10;
/** Upper bound on a filter's timeline limit, so one request cannot ask for everything. */
export const MAX_TIMELINE_LIMIT = 1000;

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
