// The error model. Services throw MatrixError with an errcode; the status is looked up here,
// once, so handlers never pick status codes by hand.

const STATUS_BY_ERRCODE: Record<string, number> = {
  M_FORBIDDEN: 403,
  M_UNKNOWN_TOKEN: 401,
  M_MISSING_TOKEN: 401,
  M_USER_LOCKED: 401,
  M_USER_SUSPENDED: 403,
  M_BAD_JSON: 400,
  M_NOT_JSON: 400,
  M_NOT_FOUND: 404,
  M_LIMIT_EXCEEDED: 429,
  M_UNRECOGNIZED: 404,
  M_UNKNOWN: 400,
  M_UNAUTHORIZED: 401,
  M_USER_DEACTIVATED: 403,
  M_USER_IN_USE: 400,
  M_INVALID_USERNAME: 400,
  M_ROOM_IN_USE: 400,
  M_INVALID_ROOM_STATE: 400,
  M_THREEPID_IN_USE: 400,
  M_THREEPID_NOT_FOUND: 400,
  M_SERVER_NOT_TRUSTED: 400,
  M_UNSUPPORTED_ROOM_VERSION: 400,
  M_INCOMPATIBLE_ROOM_VERSION: 400,
  M_BAD_STATE: 400,
  M_GUEST_ACCESS_FORBIDDEN: 403,
  M_CAPTCHA_NEEDED: 400,
  M_MISSING_PARAM: 400,
  M_INVALID_PARAM: 400,
  M_TOO_LARGE: 413,
  M_EXCLUSIVE: 400,
  M_RESOURCE_LIMIT_EXCEEDED: 403,
  M_CANNOT_LEAVE_SERVER_NOTICE_ROOM: 403,
  M_WEAK_PASSWORD: 400,
  M_NOT_YET_UPLOADED: 504,
  M_CANNOT_OVERWRITE_MEDIA: 409,
  M_WRONG_ROOM_KEYS_VERSION: 403,
  M_UNKNOWN_POS: 400,
  M_URL_NOT_SET: 400,
};

export class MatrixError extends Error {
  override name = 'MatrixError';
  readonly status: number;

  constructor(
    readonly errcode: string,
    message: string,
    options: { status?: number; extra?: Record<string, unknown> } = {},
  ) {
    super(message);
    this.status = options.status ?? STATUS_BY_ERRCODE[errcode] ?? 400;
    this.extra = options.extra;
  }

  readonly extra: Record<string, unknown> | undefined;

  toJSON(): Record<string, unknown> {
    return { ...this.extra, errcode: this.errcode, error: this.message };
  }
}

export const forbidden = (message: string) => new MatrixError('M_FORBIDDEN', message);
export const notFound = (message: string) => new MatrixError('M_NOT_FOUND', message);
export const badJson = (message: string) => new MatrixError('M_BAD_JSON', message);
export const invalidParam = (message: string) => new MatrixError('M_INVALID_PARAM', message);
export const missingParam = (message: string) => new MatrixError('M_MISSING_PARAM', message);
export const unrecognized = (message = 'Unrecognized request') => new MatrixError('M_UNRECOGNIZED', message);
