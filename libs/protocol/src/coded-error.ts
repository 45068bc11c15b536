/**
 * Base of Cairn's typed errors (docs/CONVENTIONS.md): each subclass declares its stable `code`
 * (`readonly code = 'LOG_CLOSED'`), which callers and the apps' error mapping switch on rather than
 * on `instanceof` across package copies; `name` is the concrete class's name, set here once. Lives
 * in @cairn/protocol, the workspace's root lib (no dependencies), so every lib and app can import
 * it without pulling in anything new. `options.cause` as Error's.
 */
export abstract class CodedError extends Error {
  abstract readonly code: string;

  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
  }
}
