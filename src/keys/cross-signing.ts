// Cross-signing: POST /keys/device_signing/upload and POST /keys/signatures/upload (spec:
// client-server API, "Cross-signing"). Every signature is checked against the stored key it
// claims to be made with before it is stored; failures are reported per key.
import type { Database, Queryable } from '../db/pool.js';
import { MatrixError } from '../http/errors.js';
import type { Requester } from '../http/types.js';
import type { AccountService } from '../accounts/service.js';
import type { UiaRequest, UserInteractiveAuth, UiaSession } from '../accounts/uia.js';
import { decodeBase64 } from '../core/base64.js';
import { encodeCanonicalJson } from '../core/canonical-json.js';
import { verifyJsonSignature } from '../core/signing.js';
import * as crossSigning from './store/cross-signing.js';
import * as deviceKeys from './store/device-keys.js';
import * as streams from './store/streams.js';
import { checkCrossSigningKey, isObject, isSignatures, sameSignedContent, type CrossSigningKeyInfo, type Json } from './key-json.js';
import type { KeysService } from './service.js';

export interface DeviceSigningBody {
  master_key?: unknown;
  self_signing_key?: unknown;
  user_signing_key?: unknown;
}

const BODY_FIELD: Record<crossSigning.CrossSigningKeyType, keyof DeviceSigningBody> = {
  master: 'master_key',
  self_signing: 'self_signing_key',
  user_signing: 'user_signing_key',
};

type Failure = { errcode: string; error: string };
const failure = (errcode: string, error: string): Failure => ({ errcode, error });

export class CrossSigningService {
  constructor(
    private readonly db: Database,
    private readonly accounts: AccountService,
    private readonly uia: UserInteractiveAuth,
    private readonly keys: KeysService,
  ) {}

  // ---- device_signing/upload ------------------------------------------------------------

  async uploadSigningKeys(requester: Requester, request: UiaRequest, body: DeviceSigningBody): Promise<void> {
    const userId = requester.userId;
    const given = (Object.keys(BODY_FIELD) as crossSigning.CrossSigningKeyType[]).filter((t) => body[BODY_FIELD[t]] !== undefined);
    const checked = new Map<crossSigning.CrossSigningKeyType, CrossSigningKeyInfo>();
    for (const t of given) checked.set(t, checkCrossSigningKey(body[BODY_FIELD[t]], userId, t));

    // Self-signing and user-signing keys must be signed by the master key being uploaded, or
    // by the stored one when none is.
    let master = checked.get('master');
    if (!master) {
      const stored = await crossSigning.getCrossSigningKey(this.db, userId, 'master');
      if (!stored) throw new MatrixError('M_MISSING_PARAM', 'No master key available');
      master = checkCrossSigningKey(JSON.parse(stored.key_json), userId, 'master');
    }
    for (const t of ['self_signing', 'user_signing'] as const) {
      if (!checked.has(t)) continue;
      if (!verifyJsonSignature(body[BODY_FIELD[t]] as object, userId, master.keyId, master.publicKey)) {
        throw new MatrixError('M_INVALID_SIGNATURE', `Invalid signature on ${t} key: it must be signed by the master key`);
      }
    }
    // Cross-signing keys and device ids share one namespace (verification treats a master key
    // as a device), so a key equal to a device id is refused.
    const deviceIds = new Set(await deviceKeys.deviceIdsOf(this.db, userId));
    for (const info of checked.values()) {
      if (deviceIds.has(info.publicKeyText)) throw new MatrixError('M_FORBIDDEN', 'Key ID in use: a device has this id');
    }

    // UIA unless this is the first upload or repeats exactly what is stored (spec v1.11), so
    // a lost response can be retried. Decided again under the user's lock at write time, so two
    // racing "first" uploads cannot both skip it.
    let session: UiaSession | undefined;
    if (await this.needsAuth(this.db, userId, body, given)) session = await this.accounts.requireOwnAuth(requester, request);
    for (;;) {
      const outcome = await this.db.withTx('cross_signing_upload', async (tx) => {
        await crossSigning.lockUserCrossSigning(tx, userId);
        if (!session && (await this.needsAuth(tx, userId, body, given))) return 'needs-auth' as const;
        const changes: streams.DeviceListChange[] = [];
        for (const t of given) {
          const current = await crossSigning.getCrossSigningKey(tx, userId, t);
          const value = body[BODY_FIELD[t]] as Json;
          if (current && current.key_json === JSON.stringify(value)) continue;
          await crossSigning.setCrossSigningKey(tx, userId, t, checked.get(t)!.keyId, JSON.stringify(value));
          // A new user-signing key only matters to its owner; master and self-signing keys to
          // everyone who shares a room (Synapse's split).
          changes.push(t === 'user_signing' ? { userId, visibleTo: userId } : { userId });
        }
        if (session) await this.uia.finish(session, tx);
        return changes.length > 0 ? streams.recordDeviceListChanges(tx, changes) : undefined;
      });
      if (outcome === 'needs-auth') {
        // Someone else uploaded keys in the meantime: this request now has to authenticate.
        session = await this.accounts.requireOwnAuth(requester, request);
        continue;
      }
      if (outcome !== undefined) this.keys.emit('deviceLists', outcome, [userId]);
      return;
    }
  }

  /** No master key stored yet, or every given key equals the stored one: no UIA needed. */
  private async needsAuth(
    db: Queryable,
    userId: string,
    body: DeviceSigningBody,
    given: crossSigning.CrossSigningKeyType[],
  ): Promise<boolean> {
    const stored = await crossSigning.getCrossSigningKeys(db, [userId], ['master', 'self_signing', 'user_signing']);
    if (!stored.some((k) => k.key_type === 'master')) return false;
    for (const t of given) {
      const current = stored.find((k) => k.key_type === t);
      if (!current || !sameJson(JSON.parse(current.key_json), body[BODY_FIELD[t]])) return true;
    }
    return false;
  }

  // ---- signatures/upload ----------------------------------------------------------------

  async uploadSignatures(requester: Requester, body: Record<string, unknown>): Promise<{ failures: Record<string, Record<string, Failure>> }> {
    const signer = requester.userId;
    const failures: Record<string, Record<string, Failure>> = {};
    const fail = (user: string, keyId: string, f: Failure) => ((failures[user] ??= {})[keyId] = f);
    for (const [user, keys] of Object.entries(body)) {
      if (!isObject(keys)) throw new MatrixError('M_BAD_JSON', `'${user}' must map key ids to signed objects`);
      for (const [keyId, obj] of Object.entries(keys)) {
        if (!isObject(obj)) throw new MatrixError('M_BAD_JSON', `'${user}.${keyId}' must be a signed object`);
      }
    }

    const own = (body[signer] ?? {}) as Record<string, Json>;
    const toStore: crossSigning.SignatureRow[] = [];
    const changes: streams.DeviceListChange[] = [];

    if (Object.keys(own).length > 0) {
      const stored = await crossSigning.getCrossSigningKeys(this.db, [signer], ['master', 'self_signing']);
      const masterRow = stored.find((k) => k.key_type === 'master');
      const sskRow = stored.find((k) => k.key_type === 'self_signing');
      const master = masterRow ? (JSON.parse(masterRow.key_json) as Json) : undefined;
      const masterPub = masterRow?.key_id.slice('ed25519:'.length);
      const devices = new Map(
        (await deviceKeys.queryDeviceKeys(this.db, [signer], [])).map((r) => [r.device_id, JSON.parse(r.key_json) as Json]),
      );
      for (const [keyId, signed] of Object.entries(own)) {
        let outcome: crossSigning.SignatureRow[] | Failure;
        if (master && keyId === masterPub) outcome = this.checkMasterSignedByDevices(signer, keyId, signed, master, devices);
        else if (devices.has(keyId)) outcome = this.checkDeviceSignedBySsk(signer, keyId, signed, devices.get(keyId)!, sskRow);
        else outcome = failure('M_NOT_FOUND', 'Unknown device or key');
        if (Array.isArray(outcome)) {
          toStore.push(...outcome);
          if (outcome.length > 0) changes.push({ userId: signer });
        } else fail(signer, keyId, outcome);
      }
    }

    const others = Object.entries(body).filter(([user]) => user !== signer) as [string, Record<string, Json>][];
    if (others.length > 0) {
      const uskRow = await crossSigning.getCrossSigningKey(this.db, signer, 'user_signing');
      const targetMasters = new Map(
        (await crossSigning.getCrossSigningKeys(this.db, others.map(([u]) => u), ['master'])).map((k) => [k.user_id, k]),
      );
      for (const [target, keys] of others) {
        for (const [keyId, signed] of Object.entries(keys)) {
          const masterRow = targetMasters.get(target);
          let outcome: crossSigning.SignatureRow | Failure;
          if (!uskRow) outcome = failure('M_NOT_FOUND', 'You have no user-signing key to sign with');
          else if (!masterRow || masterRow.key_id !== `ed25519:${keyId}`) {
            // Only another user's master key may be signed (with one's user-signing key).
            outcome = failure('M_NOT_FOUND', "Only the user's master key can be signed");
          } else outcome = this.checkSignedWith(signer, uskRow, target, keyId, signed, JSON.parse(masterRow.key_json) as Json);
          if ('errcode' in outcome) fail(target, keyId, outcome);
          else {
            toStore.push(outcome);
            changes.push({ userId: target, visibleTo: signer });
          }
        }
      }
    }

    if (toStore.length > 0) {
      const position = await this.db.withTx('signatures_upload', async (tx) => {
        await crossSigning.insertSignatures(tx, toStore);
        return streams.recordDeviceListChanges(tx, changes);
      });
      this.keys.emit('deviceLists', position, [...new Set(changes.map((c) => c.userId))]);
    }
    return { failures };
  }

  /** The user's master key signed by one or more of their own devices (ed25519:<device id>). */
  private checkMasterSignedByDevices(
    userId: string,
    masterPub: string,
    signed: Json,
    master: Json,
    devices: Map<string, Json>,
  ): crossSigning.SignatureRow[] | Failure {
    if (!sameSignedContent(signed, master)) return failure('M_INVALID_PARAM', 'Key does not match the stored master key');
    const sigs = isSignatures(signed['signatures']) ? signed['signatures'][userId] ?? {} : {};
    if (Object.keys(sigs).length === 0) return failure('M_INVALID_SIGNATURE', 'No signature from the user');
    const rows: crossSigning.SignatureRow[] = [];
    for (const [signingKeyId, signature] of Object.entries(sigs)) {
      if (signingKeyId === `ed25519:${masterPub}`) continue; // the master key's own self-signature
      const deviceId = signingKeyId.startsWith('ed25519:') ? signingKeyId.slice('ed25519:'.length) : undefined;
      const device = deviceId !== undefined ? devices.get(deviceId) : undefined;
      const pub = device && isObject(device['keys']) ? (device['keys'] as Record<string, string>)[signingKeyId] : undefined;
      if (pub === undefined) return failure('M_INVALID_SIGNATURE', `Signed by an unknown device key ${signingKeyId}`);
      if (!verifyWith(signed, userId, signingKeyId, pub)) return failure('M_INVALID_SIGNATURE', 'Invalid signature');
      rows.push({ signer_user_id: userId, signer_key_id: signingKeyId, target_user_id: userId, target_key_id: masterPub, signature });
    }
    return rows;
  }

  /** One of the user's devices signed by their self-signing key. */
  private checkDeviceSignedBySsk(
    userId: string,
    deviceId: string,
    signed: Json,
    device: Json,
    sskRow: crossSigning.StoredCrossSigningKey | undefined,
  ): crossSigning.SignatureRow[] | Failure {
    if (!sskRow) return failure('M_NOT_FOUND', 'You have no self-signing key to sign with');
    const row = this.checkSignedWith(userId, sskRow, userId, deviceId, signed, device);
    return 'errcode' in row ? row : [row];
  }

  /** `signed` must equal `stored` apart from signatures and carry a valid signature by `key`. */
  private checkSignedWith(
    signer: string,
    key: crossSigning.StoredCrossSigningKey,
    targetUser: string,
    targetKeyId: string,
    signed: Json,
    stored: Json,
  ): crossSigning.SignatureRow | Failure {
    if (!sameSignedContent(signed, stored)) return failure('M_INVALID_PARAM', 'Key does not match the stored key');
    const signature = isSignatures(signed['signatures']) ? signed['signatures'][signer]?.[key.key_id] : undefined;
    if (signature === undefined) return failure('M_INVALID_SIGNATURE', `No signature by ${key.key_id}`);
    if (!verifyWith(signed, signer, key.key_id, key.key_id.slice('ed25519:'.length))) return failure('M_INVALID_SIGNATURE', 'Invalid signature');
    return { signer_user_id: signer, signer_key_id: key.key_id, target_user_id: targetUser, target_key_id: targetKeyId, signature };
  }
}

function verifyWith(obj: Json, userId: string, keyId: string, publicKeyText: string): boolean {
  let pub: Uint8Array;
  try {
    pub = decodeBase64(publicKeyText);
  } catch {
    return false;
  }
  return verifyJsonSignature(obj, userId, keyId, pub);
}

/** Exactly the same object, signatures included (key order does not matter). */
function sameJson(a: unknown, b: unknown): boolean {
  try {
    return encodeCanonicalJson(a) === encodeCanonicalJson(b);
  } catch {
    return false;
  }
}
