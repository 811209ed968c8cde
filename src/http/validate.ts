// Request bodies are validated by ajv schemas compiled once, when the router module is built.
import { Ajv, type ErrorObject, type JSONSchemaType, type ValidateFunction } from 'ajv';
import { MatrixError } from './errors.js';

const ajv = new Ajv({ allErrors: false, strict: false, coerceTypes: false, useDefaults: false });

export type BodyValidator<T> = (body: unknown) => T;

function describe(e: ErrorObject): string {
  const path = e.instancePath.replace(/^\//, '').replace(/\//g, '.');
  if (e.keyword === 'required') {
    const key = (e.params as { missingProperty: string }).missingProperty;
    return `missing '${path ? `${path}.` : ''}${key}'`;
  }
  if (e.keyword === 'additionalProperties') {
    return `unknown key '${(e.params as { additionalProperty: string }).additionalProperty}'`;
  }
  return `'${path || 'body'}' ${e.message ?? 'is invalid'}`;
}

/**
 * Compiles a schema into a validator that returns the typed body or throws M_BAD_JSON
 * (M_MISSING_PARAM for a missing required key, when asked).
 */
export function compileBody<T>(
  schema: JSONSchemaType<T> | Record<string, unknown>,
  opts: { missingErrcode?: string } = {},
): BodyValidator<T> {
  const validate = ajv.compile(schema) as ValidateFunction<T>;
  return (body: unknown): T => {
    if (validate(body)) return body;
    const err = validate.errors![0]!;
    const errcode = err.keyword === 'required' && opts.missingErrcode ? opts.missingErrcode : 'M_BAD_JSON';
    throw new MatrixError(errcode, describe(err));
  };
}
