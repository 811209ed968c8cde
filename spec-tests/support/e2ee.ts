// E2EE fixtures for spec tests: real ed25519 keys (tweetnacl) signing device keys, one-time keys
// and cross-signing keys exactly as clients do (signatures over canonical JSON without
// `signatures` and `unsigned`), so the server's checks run against genuine signatures.
import nacl from 'tweetnacl';
import { randomBytes } from 'node:crypto';
import { encodeBase64 } from '../../src/core/base64.js';
import { canonicalJsonBytes } from '../../src/core/canonical-json.js';
import type { TestClient } from './client.js';

export type Json = Record<string, any>;

export interface Ed25519 {
  publicKey: string;
  secretKey: Uint8Array;
}

export function ed25519(): Ed25519 {
  const kp = nacl.sign.keyPair();
  return { publicKey: encodeBase64(kp.publicKey), secretKey: kp.secretKey };
}

/** Adds `signatures[userId][keyId]` to a copy of `obj`. */
export function sign<T extends Json>(obj: T, userId: string, keyId: string, key: Ed25519): T {
  const { signatures, unsigned: _u, ...rest } = obj;
  const sig = encodeBase64(nacl.sign.detached(canonicalJsonBytes(rest), key.secretKey));
  return { ...obj, signatures: { ...signatures, [userId]: { ...signatures?.[userId], [keyId]: sig } } };
}

const curve = () => encodeBase64(randomBytes(32));

/** A client device with its ed25519 identity key. */
export class TestDevice {
  readonly ed = ed25519();
  readonly curveKey = curve();
  constructor(readonly client: TestClient) {}

  get keyId(): string {
    return `ed25519:${this.client.deviceId}`;
  }

  deviceKeys(): Json {
    const { userId, deviceId } = this.client;
    return sign(
      {
        user_id: userId,
        device_id: deviceId,
        algorithms: ['m.olm.v1.curve25519-aes-sha2', 'm.megolm.v1.aes-sha2'],
        keys: { [`curve25519:${deviceId}`]: this.curveKey, [`ed25519:${deviceId}`]: this.ed.publicKey },
      },
      userId,
      this.keyId,
      this.ed,
    );
  }

  /** `n` signed one-time keys with ids `<prefix>0..n-1`. */
  oneTimeKeys(n: number, prefix = 'AAAA'): Json {
    const out: Json = {};
    for (let i = 0; i < n; i++) out[`signed_curve25519:${prefix}${i}`] = sign({ key: curve() }, this.client.userId, this.keyId, this.ed);
    return out;
  }

  fallbackKey(id = 'FB1'): Json {
    return { [`signed_curve25519:${id}`]: sign({ key: curve(), fallback: true }, this.client.userId, this.keyId, this.ed) };
  }

  upload(body: Json) {
    return this.client.post('/_matrix/client/v3/keys/upload', body);
  }
}

export interface CrossSigning {
  master: Ed25519;
  selfSigning: Ed25519;
  userSigning: Ed25519;
  body: { master_key: Json; self_signing_key: Json; user_signing_key: Json };
}

/** A fresh set of cross-signing keys for `userId`, the other two signed by the master key. */
export function crossSigningKeys(userId: string): CrossSigning {
  const master = ed25519();
  const selfSigning = ed25519();
  const userSigning = ed25519();
  const key = (k: Ed25519, usage: string) => ({ user_id: userId, usage: [usage], keys: { [`ed25519:${k.publicKey}`]: k.publicKey } });
  const masterId = `ed25519:${master.publicKey}`;
  return {
    master,
    selfSigning,
    userSigning,
    body: {
      master_key: key(master, 'master'),
      self_signing_key: sign(key(selfSigning, 'self_signing'), userId, masterId, master),
      user_signing_key: sign(key(userSigning, 'user_signing'), userId, masterId, master),
    },
  };
}
