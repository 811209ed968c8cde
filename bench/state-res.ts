// State resolution benchmark: two forks of a room with 10,000 joined members and about 1,000
// conflicting state events (displayname changes, kicks, bans, topics, power levels and join
// rules changes, overlapping on both sides). Run with `npx tsx bench/state-res.ts`.
//
// The event source is in memory, but its optional getAuthChainIds walks the auth graph on every
// call (no precomputed index), so its cost is inside the measured time.
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import { selectAuthEvents } from '../src/core/auth-events.js';
import { getRoomVersion, type RoomVersion } from '../src/core/room-versions.js';
import { resolveState, type StateResEventSource } from '../src/core/state-res/resolve.js';
import { stateKey, type JsonObject, type RoomEvent, type StateMap } from '../src/core/types.js';

const MEMBERS = 10_000;
const MODERATORS = 10;

interface Room {
  events: Map<string, RoomEvent>;
  forks: [StateMap, StateMap];
  conflicting: number;
}

function buildRoom(version: RoomVersion): Room {
  const events = new Map<string, RoomEvent>();
  const roomId = version.roomIdFromCreateEvent ? '!create' : '!bench:example.com';
  const creator = '@alice:example.com';
  const user = (i: number) => `@user${i}:example.com`;
  const mod = (i: number) => `@mod${i}:example.com`;
  let ts = 1_000;
  let depth = 0;
  let n = 0;

  const add = (state: StateMap, prev: string | undefined, sender: string, type: string, sk: string, content: JsonObject, id?: string): string => {
    const eventId = id ?? `$e${n++}`;
    const probe = { type, sender, state_key: sk, content };
    const auth = selectAuthEvents(probe, (t, k) => {
      const ev = state.get(stateKey(t, k));
      return ev === undefined ? undefined : events.get(ev);
    }, version);
    const event: RoomEvent = {
      event_id: eventId,
      room_id: roomId,
      sender,
      type,
      state_key: sk,
      content,
      origin_server_ts: ts++,
      depth: ++depth,
      prev_events: prev ? [prev] : [],
      auth_events: auth,
      hashes: { sha256: '' },
      signatures: {},
    };
    events.set(eventId, event);
    state.set(stateKey(type, sk), eventId);
    return eventId;
  };

  const base: StateMap = new Map();
  let last = add(base, undefined, creator, 'm.room.create', '', version.implicitRoomCreator ? { room_version: version.id } : { creator, room_version: version.id }, '$create');
  last = add(base, last, creator, 'm.room.member', creator, { membership: 'join' });
  const users: Record<string, number> = version.privilegedCreators ? {} : { [creator]: 100 };
  for (let i = 0; i < MODERATORS; i++) users[mod(i)] = 50;
  last = add(base, last, creator, 'm.room.power_levels', '', { users });
  last = add(base, last, creator, 'm.room.join_rules', '', { join_rule: 'public' });
  for (let i = 0; i < MODERATORS; i++) last = add(base, last, mod(i), 'm.room.member', mod(i), { membership: 'join' });
  for (let i = 0; i < MEMBERS; i++) last = add(base, last, user(i), 'm.room.member', user(i), { membership: 'join' });
  const forkPoint = last;

  // Fork A: 400 displayname changes (users 0-399), 60 kicks by moderators (users 1000-1059),
  // 20 topics, 10 power levels changes, 10 join rules changes.
  const a: StateMap = new Map(base);
  let headA = forkPoint;
  for (let i = 0; i < 400; i++) headA = add(a, headA, user(i), 'm.room.member', user(i), { membership: 'join', displayname: `A${i}` });
  for (let i = 0; i < 60; i++) headA = add(a, headA, mod(i % MODERATORS), 'm.room.member', user(1000 + i), { membership: 'leave' });
  for (let i = 0; i < 20; i++) headA = add(a, headA, mod(i % MODERATORS), 'm.room.topic', '', { topic: `A${i}` });
  for (let i = 0; i < 10; i++) headA = add(a, headA, creator, 'm.room.power_levels', '', { users: { ...users, [user(i)]: 10 + i } });
  for (let i = 0; i < 10; i++) headA = add(a, headA, creator, 'm.room.join_rules', '', { join_rule: i % 2 ? 'public' : 'invite' });

  // Fork B: 400 displayname changes (users 200-599, half overlapping A), 60 bans by moderators
  // (users 1030-1089, half overlapping A's kicks), 20 topics, 10 power levels changes by a
  // moderator (some of which fail against A's), 10 join rules changes.
  const b: StateMap = new Map(base);
  let headB = forkPoint;
  for (let i = 200; i < 600; i++) headB = add(b, headB, user(i), 'm.room.member', user(i), { membership: 'join', displayname: `B${i}` });
  for (let i = 0; i < 60; i++) headB = add(b, headB, mod(i % MODERATORS), 'm.room.member', user(1030 + i), { membership: 'ban' });
  for (let i = 0; i < 20; i++) headB = add(b, headB, mod(i % MODERATORS), 'm.room.topic', '', { topic: `B${i}` });
  for (let i = 0; i < 10; i++) headB = add(b, headB, mod(0), 'm.room.power_levels', '', { users: { ...users, [user(500 + i)]: 20 } });
  for (let i = 0; i < 10; i++) headB = add(b, headB, creator, 'm.room.join_rules', '', { join_rule: i % 2 ? 'invite' : 'public' });

  // Distinct events at the keys the forks disagree on (both sides' events, and the base events
  // still held by the side that did not touch the key).
  const conflicting = new Set<string>();
  for (const k of new Set([...a.keys(), ...b.keys()])) {
    const x = a.get(k);
    const y = b.get(k);
    if (x === y) continue;
    if (x !== undefined) conflicting.add(x);
    if (y !== undefined) conflicting.add(y);
  }
  return { events, forks: [a, b], conflicting: conflicting.size };
}

function source(events: Map<string, RoomEvent>, fastPath: boolean, version: RoomVersion): StateResEventSource & { fetched: number } {
  const src: StateResEventSource & { fetched: number } = {
    fetched: 0,
    async getEvents(ids) {
      const out = new Map<string, RoomEvent>();
      for (const id of ids) {
        const ev = events.get(id);
        if (ev) {
          out.set(id, ev);
          src.fetched++;
        }
      }
      return out;
    },
  };
  if (fastPath) {
    // What a store with an auth chain index answers; here a plain walk, repeated every call.
    src.getAuthChainIds = async (ids) => {
      const seen = new Set<string>();
      const stack = [...ids];
      while (stack.length > 0) {
        const ev = events.get(stack.pop()!);
        if (!ev) continue;
        const auth = ev.auth_events.map((r) => (typeof r === 'string' ? r : r[0]));
        if (version.roomIdFromCreateEvent && ev.type !== 'm.room.create') auth.push('$' + ev.room_id.slice(1));
        for (const x of auth) if (!seen.has(x)) (seen.add(x), stack.push(x));
      }
      return seen;
    };
  }
  return src;
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

async function measure(label: string, version: RoomVersion, fastPath: boolean, runs: number): Promise<void> {
  const room = buildRoom(version);
  let result: StateMap | undefined;
  let fetched = 0;
  for (let i = 0; i < 3; i++) result = await resolveState(version, room.forks, source(room.events, fastPath, version));
  const times: number[] = [];
  const cpu: number[] = [];
  for (let i = 0; i < runs; i++) {
    const src = source(room.events, fastPath, version);
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    result = await resolveState(version, room.forks, src);
    times.push(performance.now() - t0);
    const c = process.cpuUsage(c0);
    cpu.push((c.user + c.system) / 1000);
    fetched = src.fetched;
  }
  times.sort((x, y) => x - y);
  cpu.sort((x, y) => x - y);
  // Wall time is what the target is about; CPU time (this process, GC threads included) shows
  // how much of a slow run was other processes competing for the two cores.
  console.log(
    `${label.padEnd(38)} median ${percentile(times, 50).toFixed(1).padStart(6)} ms   p95 ${percentile(times, 95).toFixed(1).padStart(6)} ms` +
      `   cpu median ${percentile(cpu, 50).toFixed(1).padStart(6)} ms` +
      `   (${runs} runs; ${room.conflicting} conflicting events, ${fetched} events fetched, ${result!.size} keys resolved)`,
  );
}

const runs = Number(process.argv[2] ?? 30);
console.log(`state resolution: 2 forks, ${MEMBERS} members, node ${process.version}, load average ${os.loadavg()[0].toFixed(1)}`);
await measure('v11 (state res v2), auth chain index', getRoomVersion('11')!, true, runs);
await measure('v11 (state res v2), walking', getRoomVersion('11')!, false, runs);
await measure('v12 (state res v2.1), auth chain index', getRoomVersion('12')!, true, runs);
await measure('v12 (state res v2.1), walking', getRoomVersion('12')!, false, runs);
await measure('v1 (state res v1)', getRoomVersion('1')!, false, runs);
