// Placeholder until the OpenAPI validation layer lands: validates nothing.
export function validateResponse(_method: string, _path: string, _status: number, _body: unknown): void {}
