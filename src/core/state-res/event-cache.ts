// The one place state resolution touches the event source. Everything else in state-res works on
// events already held here, synchronously, so the algorithms stay plain loops and every fetch is
// a batch the storage layer can answer with one query.
import { referenceId } from '../auth-rules.js';
import type { RoomVersion } from '../room-versions.js';
import type { RoomEvent } from '../types.js';

export interface StateResEventSource {
  /** Events by id; ids the source does not know are simply absent from the result. */
  getEvents(ids: Iterable<string>): Promise<Map<string, RoomEvent>>;
  /**
   * Optional fast path: the union of the auth chains of `ids` (every event reachable through
   * `auth_events`, plus, in room versions whose room id is the create event's id, that create
   * event). The ids themselves may or may not be included. A store with an auth chain index
   * answers this without loading events, so resolving two forks of a huge room only loads the
   * conflicted events and their own auth chains.
   */
  getAuthChainIds?(ids: string[]): Promise<Set<string>>;
  /**
   * Optional: which of `ids` this server rejected. Rejected events are never admitted into the
   * resolved state and never stand in as auth events (spec "Rejected events"; this is also
   * what Synapse does). Without it every event is taken as accepted.
   */
  getRejectedIds?(ids: string[]): Promise<Set<string>>;
}

export class EventCache {
  private readonly events = new Map<string, RoomEvent>();
  /** Ids asked for and not returned, so a missing event costs one query, not one per use. */
  private readonly missing = new Set<string>();
  private readonly rejected = new Set<string>();
  private readonly rejectionKnown = new Set<string>();
  private readonly edges = new Map<string, readonly string[]>();
  private roomId: string | undefined;

  constructor(
    readonly source: StateResEventSource,
    readonly version: RoomVersion,
  ) {}

  /** Makes sure every id is either held or known to be missing. One source call at most. */
  async load(ids: Iterable<string>): Promise<void> {
    const want: string[] = [];
    for (const id of ids) {
      if (!this.events.has(id) && !this.missing.has(id)) want.push(id);
    }
    if (want.length === 0) return;
    const unique = [...new Set(want)];
    const got = await this.source.getEvents(unique);
    for (const id of unique) {
      const ev = got.get(id);
      if (ev && ev.event_id === id) this.events.set(id, ev);
      else this.missing.add(id);
    }
    this.checkSameRoom(unique);
  }

  // Mixing rooms would let one room's events authorise another's; the storage layer should
  // never do it, so treat it as a bug rather than resolve nonsense.
  private checkSameRoom(ids: string[]): void {
    for (const id of ids) {
      const ev = this.events.get(id);
      if (!ev) continue;
      if (this.roomId === undefined) this.roomId = ev.room_id;
      else if (ev.room_id !== this.roomId) {
        throw new Error(`state resolution: event ${id} is in room ${ev.room_id}, expected ${this.roomId}`);
      }
    }
  }

  get(id: string): RoomEvent | undefined {
    return this.events.get(id);
  }

  has(id: string): boolean {
    return this.events.has(id);
  }

  /** Learns the rejection status of `ids` (batched; only asks about ids not asked before). */
  async loadRejections(ids: Iterable<string>): Promise<void> {
    if (!this.source.getRejectedIds) return;
    const want: string[] = [];
    for (const id of ids) {
      if (!this.rejectionKnown.has(id)) {
        this.rejectionKnown.add(id);
        want.push(id);
      }
    }
    if (want.length === 0) return;
    const got = await this.source.getRejectedIds(want);
    for (const id of got) this.rejected.add(id);
  }

  isRejected(id: string): boolean {
    return this.rejected.has(id);
  }

  /**
   * The auth event ids of an event. From room version 12 the create event is no longer listed
   * but is implied by the room id (MSC4291), so it is added back: it is part of every auth
   * chain and is what the auth rules and sender power levels read.
   */
  authEdges(ev: RoomEvent): readonly string[] {
    let out = this.edges.get(ev.event_id);
    if (out) return out;
    const list: string[] = [];
    if (this.version.roomIdFromCreateEvent && !(ev.type === 'm.room.create' && ev.state_key === '')) {
      list.push(createEventIdFromRoomId(ev.room_id));
    }
    for (const ref of ev.auth_events ?? []) {
      const id = referenceId(ref);
      if (!list.includes(id)) list.push(id);
    }
    out = list;
    this.edges.set(ev.event_id, out);
    return out;
  }
}

export function createEventIdFromRoomId(roomId: string): string {
  return '$' + roomId.slice(1);
}
