// The rooms service: one object for the composition root, delegating to the modules split by
// verb (create, membership, send, state reads). It owns the write queue, the state store and the
// event cache, and is the only way other domains change rooms.
import type { AccountService } from '../accounts/service.js';
import type { PratConfig } from '../config/schema.js';
import type { SigningKey } from '../core/signing.js';
import type { JsonObject } from '../core/types.js';
import type { Database } from '../db/pool.js';
import type { Logger } from '../logger.js';
import type { RoomDeps } from './context.js';
import { createRoom, type CreateRoomRequest } from './create.js';
import * as roomsSql from './store/rooms.js';
import { EventLoader } from './events.js';
import * as membership from './membership.js';
import { storedOf } from './persist.js';
import { RoomQueue, type EventsPersistedListener, type PersistedEvent } from './queue.js';
import * as read from './read.js';
import * as send from './send.js';
import { StateStore } from './state-store.js';
import { SEND_VALIDATORS } from './send-validators.js';

/** Where the database announces redactions taking effect (migrations/0011). */
export const REDACTIONS_CHANNEL = 'prat_redactions';

/** How long a client's transaction id makes a retried send answer with the first event (Synapse: 24 h). */
export const TXN_ID_LIFETIME_MS = 24 * 60 * 60 * 1000;
const HOUSEKEEPING_INTERVAL_MS = 60 * 60 * 1000;

export class RoomService {
  readonly deps: RoomDeps;

  constructor(opts: { db: Database; log: Logger; config: PratConfig; signingKey: SigningKey; accounts: AccountService }) {
    const events = new EventLoader();
    const state = new StateStore();
    const queue = new RoomQueue(opts.db, opts.log, {
      beginTx: (tx) => {
        events.beginTx(tx);
        state.beginTx(tx);
      },
      endTx: (tx, committed) => {
        events.endTx(tx);
        state.endTx(tx, committed);
      },
      rolledBack: (tx, nids) => {
        events.unwritten(tx, nids);
        state.rolledBack(tx);
      },
      othersWrote: (tx) => events.readFresh(tx),
      afterCommit: (persisted) => this.remember(persisted),
    });
    this.deps = {
      db: opts.db,
      log: opts.log,
      config: opts.config,
      serverName: opts.config.server_name,
      signingKey: opts.signingKey,
      accounts: opts.accounts,
      queue,
      state,
      events,
      sendValidators: SEND_VALIDATORS,
    };
    // Member events carry the profile, so a profile change is a new join in every room; a
    // deactivated user leaves every room.
    opts.accounts.profileListeners.push((userId) => membership.propagateProfile(this.deps, userId));
    opts.accounts.deactivationListeners.push((userId) => membership.leaveAllRooms(this.deps, userId));
  }

  private housekeeping: NodeJS.Timeout | undefined;

  /** Periodic clean-up: client transaction ids older than TXN_ID_LIFETIME_MS. */
  startHousekeeping(): void {
    const run = () => {
      this.expireTxnIds(Date.now()).catch((err) => this.deps.log.warn({ err }, 'could not expire transaction ids'));
    };
    this.housekeeping = setInterval(run, HOUSEKEEPING_INTERVAL_MS);
    this.housekeeping.unref();
  }

  close(): void {
    clearInterval(this.housekeeping);
  }

  /** Forgets the transaction ids recorded more than TXN_ID_LIFETIME_MS before `now`, in batches. */
  async expireTxnIds(now: number): Promise<number> {
    let total = 0;
    for (;;) {
      const n = await roomsSql.deleteTxnIdsBefore(this.deps.db, now - TXN_ID_LIFETIME_MS, 10_000);
      total += n;
      if (n < 10_000) return total;
    }
  }

  /** Committed events go straight into the event cache: the next send cites them. */
  private remember(persisted: PersistedEvent[]): void {
    for (const p of persisted) {
      this.deps.events.remember(storedOf(p));
      if (p.redactedNid !== undefined) this.deps.events.redacted(p.redactedNid, p.nid);
    }
  }

  /** Another process's redaction took effect (the prat_redactions announcement: "<nid> <redaction nid>"). */
  redactedElsewhere(payload: string): void {
    const [nid, by] = payload.split(' ').map(Number);
    if (Number.isSafeInteger(nid) && Number.isSafeInteger(by)) this.deps.events.redacted(nid!, by!);
  }

  /** Called after each commit with the events it persisted, in stream order (sync, federation). */
  onEventsPersisted(listener: EventsPersistedListener): void {
    this.deps.queue.listeners.push(listener);
  }

  createRoom(userId: string, req: CreateRoomRequest) {
    return createRoom(this.deps, userId, req);
  }

  async join(userId: string, roomIdOrAlias: string, reason?: string, opts: { guest?: boolean } = {}): Promise<string> {
    const roomId = await membership.resolveRoomIdOrAlias(this.deps, roomIdOrAlias);
    await membership.changeMembership(this.deps, userId, roomId, userId, 'join', {
      ...(reason !== undefined ? { reason } : {}),
      ...(opts.guest ? { guest: true } : {}),
    });
    return roomId;
  }

  async knock(userId: string, roomIdOrAlias: string, reason?: string): Promise<string> {
    const roomId = await membership.resolveRoomIdOrAlias(this.deps, roomIdOrAlias);
    await membership.changeMembership(this.deps, userId, roomId, userId, 'knock', reason !== undefined ? { reason } : {});
    return roomId;
  }

  changeMembership(actor: string, roomId: string, target: string, action: membership.MembershipAction, reason?: string) {
    return membership.changeMembership(this.deps, actor, roomId, target, action, reason !== undefined ? { reason } : {});
  }

  forget(userId: string, roomId: string) {
    return membership.forget(this.deps, userId, roomId);
  }

  sendMessage(sender: send.Sender, roomId: string, type: string, content: JsonObject, txnId: string) {
    return send.sendMessage(this.deps, sender, roomId, type, content, txnId);
  }

  sendState(sender: send.Sender, roomId: string, type: string, stateKey: string, content: JsonObject) {
    return send.sendState(this.deps, sender, roomId, type, stateKey, content);
  }

  redact(sender: send.Sender, roomId: string, eventId: string, txnId: string, reason?: string) {
    return send.redact(this.deps, sender, roomId, eventId, txnId, reason);
  }

  getEvent(reader: read.Reader, roomId: string, eventId: string) {
    return read.getEvent(this.deps, reader, roomId, eventId);
  }

  getState(reader: read.Reader, roomId: string) {
    return read.getState(this.deps, reader, roomId);
  }

  getStateEvent(reader: read.Reader, roomId: string, type: string, stateKey: string, format: 'content' | 'event') {
    return read.getStateEvent(this.deps, reader, roomId, type, stateKey, format);
  }

  getMembers(reader: read.Reader, roomId: string, q: { at?: string; membership?: string; not_membership?: string }) {
    return read.getMembers(this.deps, reader, roomId, q);
  }

  getJoinedMembers(reader: read.Reader, roomId: string) {
    return read.getJoinedMembers(this.deps, reader, roomId);
  }

  joinedRooms(userId: string) {
    return read.joinedRooms(this.deps, userId);
  }
}
