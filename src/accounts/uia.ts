// User-interactive authentication (spec: client-server-api "User-Interactive Authentication
// API"). Sessions live in PostgreSQL so any server process can continue one.
import type { Database, Queryable } from '../db/pool.js';
import { MatrixError } from '../http/errors.js';
import { randomString } from './secrets.js';

export type StageChecker = (auth: Record<string, unknown>, session: UiaSession) => Promise<StageResult>;
export type StageResult = { ok: true; result?: unknown } | { ok: false; errcode: string; error: string };

export interface UiaSession {
  sessionId: string;
  clientdict: Record<string, unknown>;
  completed: string[];
  results: Record<string, unknown>;
}

/** The 401 body of the spec: flows, params, session, completed, and the last stage's error. */
export class UiaRequired extends MatrixError {
  constructor(private readonly body: Record<string, unknown>) {
    super(typeof body['errcode'] === 'string' ? body['errcode'] : 'M_UNAUTHORIZED', String(body['error'] ?? 'Authentication required'), {
      status: 401,
    });
  }

  override toJSON(): Record<string, unknown> {
    return this.body;
  }
}

const SESSION_LIFETIME_MS = 48 * 3600 * 1000;

// Never written to the sessions table: a password must not sit in the database in the clear.
// An operation that needs one from an earlier request keeps a hash in `results` (onSession).
const SECRET_KEYS = ['password', 'new_password'];

function withoutSecrets(clientdict: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(clientdict).filter(([k]) => !SECRET_KEYS.includes(k)));
}

export interface UiaRequest {
  method: string;
  /** The endpoint, with r0 normalised to v3: a session cannot move to another operation. */
  uri: string;
  body: Record<string, unknown>;
}

export class UserInteractiveAuth {
  constructor(private readonly db: Database) {}

  /**
   * Runs one step of UIA for a request. Resolves with the completed session when one of
   * `flows` is done; throws UiaRequired (401) otherwise. `onSession` runs on every request of
   * the session before the stages, and what it puts in `session.results` is kept.
   */
  async check(
    request: UiaRequest,
    flows: string[][],
    stages: Record<string, StageChecker>,
    onSession?: (session: UiaSession) => Promise<void>,
  ): Promise<UiaSession> {
    const auth = request.body['auth'];
    if (auth !== undefined && (typeof auth !== 'object' || auth === null || Array.isArray(auth))) {
      throw new MatrixError('M_BAD_JSON', "'auth' must be an object");
    }
    const { auth: _omit, ...clientdict } = request.body;
    const authDict = auth as Record<string, unknown> | undefined;
    let session: UiaSession;
    const sessionId = authDict?.['session'];
    if (sessionId !== undefined) {
      if (typeof sessionId !== 'string') throw new MatrixError('M_BAD_JSON', "'auth.session' must be a string");
      session = await this.load(sessionId, request);
      // Parameters given again win over those of the first request.
      session.clientdict = { ...session.clientdict, ...clientdict };
    } else {
      session = await this.create(request, clientdict);
    }
    if (onSession) {
      await onSession(session);
      await this.save(this.db, session);
    }

    const type = authDict?.['type'];
    let failure: { errcode: string; error: string } | undefined;
    if (typeof type === 'string') {
      const checker = stages[type];
      const allowed = flows.some((f) => f.includes(type));
      if (!checker || !allowed) {
        failure = { errcode: 'M_UNRECOGNIZED', error: `Unrecognised or disallowed auth type ${type}` };
      } else {
        const outcome = await checker(authDict!, session);
        if (outcome.ok) {
          if (!session.completed.includes(type)) session.completed.push(type);
          if (outcome.result !== undefined) session.results[type] = outcome.result;
          await this.save(this.db, session);
        } else {
          failure = { errcode: outcome.errcode, error: outcome.error };
        }
      }
    } else if (authDict !== undefined && type !== undefined) {
      throw new MatrixError('M_BAD_JSON', "'auth.type' must be a string");
    }

    if (!failure && flows.some((flow) => flow.every((stage) => session.completed.includes(stage)))) return session;
    throw new UiaRequired({
      flows: flows.map((stages) => ({ stages })),
      params: {},
      session: session.sessionId,
      ...(session.completed.length > 0 ? { completed: session.completed } : {}),
      ...(failure ?? {}),
    });
  }

  /** Ends a session once the operation it authorised has been carried out. */
  async finish(session: UiaSession, db: Queryable = this.db): Promise<void> {
    await db.query('DELETE FROM uia_sessions WHERE session_id = $1', [session.sessionId]);
  }

  private async create(request: UiaRequest, clientdict: Record<string, unknown>): Promise<UiaSession> {
    const session: UiaSession = { sessionId: randomString(18), clientdict, completed: [], results: {} };
    await this.db.query('DELETE FROM uia_sessions WHERE created_ts < $1', [Date.now() - SESSION_LIFETIME_MS]);
    await this.db.query(
      'INSERT INTO uia_sessions (session_id, created_ts, method, uri, clientdict) VALUES ($1, $2, $3, $4, $5)',
      [session.sessionId, Date.now(), request.method, request.uri, JSON.stringify(withoutSecrets(clientdict))],
    );
    return session;
  }

  private async load(sessionId: string, request: UiaRequest): Promise<UiaSession> {
    const row = (
      await this.db.query<{ method: string; uri: string; clientdict: Record<string, unknown>; completed: string[]; results: Record<string, unknown>; created_ts: number }>(
        'SELECT method, uri, clientdict, completed, results, created_ts FROM uia_sessions WHERE session_id = $1',
        [sessionId],
      )
    ).rows[0];
    if (!row || row.created_ts < Date.now() - SESSION_LIFETIME_MS) {
      throw new MatrixError('M_UNKNOWN', 'Unknown UIA session', { status: 400 });
    }
    if (row.method !== request.method || row.uri !== request.uri) {
      throw new MatrixError('M_FORBIDDEN', 'Requested operation has changed during the UI authentication session.');
    }
    return { sessionId, clientdict: row.clientdict, completed: row.completed, results: row.results };
  }

  private async save(db: Queryable, session: UiaSession): Promise<void> {
    await db.query('UPDATE uia_sessions SET completed = $2, results = $3, clientdict = $4 WHERE session_id = $1', [
      session.sessionId,
      JSON.stringify(session.completed),
      JSON.stringify(session.results),
      JSON.stringify(withoutSecrets(session.clientdict)),
    ]);
  }
}
