import { ValidationError } from '../shared/errors';

/**
 * A refusal that names the request field it is about, with its own code: it is answered as a
 * ValidationError is (`{ code, field, message }`), so the caller sees which field to change.
 */
export class FieldRefusal extends ValidationError {
  constructor(code: string, field: string, message: string) {
    super(field, message);
    // ValidationError fixes its code; this refusal carries the more specific one.
    (this as { code: string }).code = code;
    this.name = code;
  }
}

/** A registry write whose `expectedVersion` is not the stored version (security review H2). */
export class RegistryVersionConflictError extends FieldRefusal {
  constructor(message: string) {
    super('RegistryVersionConflict', 'detail.expectedVersion', message);
  }
}

/** An image source (registry, bucket, snapshot owner) outside a host group's allowlists. */
export class SourceNotAllowedError extends FieldRefusal {
  constructor(field: string, message: string) {
    super('SourceNotAllowed', field, message);
  }
}
