/**
 * Typed errors. Every error sock-client throws or emits is a `SockError` with a stable string `code`
 * and a literal `name`, so `err instanceof X` and `isX(err)` (which also matches by name, across
 * bundles and realms) both work.
 */
import { DEV } from './dev'
import { hideSecrets } from './secrets'

export type SockErrorCode =
  | 'ERR_INVALID_ARGUMENT'
  | 'ERR_ADDRESS'
  | 'ERR_FRAME_TOO_LARGE'
  | 'ERR_PROTOCOL'
  | 'ERR_SERVER'
  | 'ERR_REJECTED'
  | 'ERR_CLOSED'
  | 'ERR_QUEUE_FULL'
  | 'ERR_GAVE_UP'
  | 'ERR_HTTP'
  | 'ERR_TIMEOUT'
  | 'ERR_NETWORK'
  | 'ERR_LISTENER'
  | 'ERR_MISSING_PACKAGE'
  | 'ERR_DISCONNECTED'
  | 'ERR_ABORTED'
  | 'ERR_REPLY'
  | 'ERR_TOKEN'
  | 'ERR_UNAUTHORIZED'

export class SockError extends Error {
  override name: string = 'SockError'
  readonly code: SockErrorCode
  constructor(code: SockErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.code = code
  }
}

/** A public method got an argument it cannot use. `argument` names it. */
export class ValidationError extends SockError {
  override name = 'ValidationError' as const
  constructor(
    readonly argument: string,
    message: string,
  ) {
    super('ERR_INVALID_ARGUMENT', message)
  }
}

const hideIn = (v: unknown): unknown => (typeof v === 'string' ? hideSecrets(v) : Array.isArray(v) ? v.map(hideIn) : v)

/** `setup()` got an address it cannot use. `value` is the offending value, with any credential in it hidden. */
export class AddressError extends SockError {
  override name = 'AddressError' as const
  readonly value: unknown
  /** For a `flat` list whose arrays differ in length: both arrays. */
  ips?: readonly string[]
  ports?: readonly (string | number)[]
  constructor(value: unknown, message: string) {
    super('ERR_ADDRESS', message)
    this.value = hideIn(value)
  }
}

/** A frame would exceed the server's read limit (`maxFrameBytes`). */
export class FrameTooLargeError extends SockError {
  override name = 'FrameTooLargeError' as const
  constructor(
    readonly bytes: number,
    readonly limit: number,
    message = DEV
      ? `frame of ${bytes} bytes exceeds maxFrameBytes (${limit}); send less data, use signal() (which splits large payloads) or raise maxFrameBytes to the server's -limit`
      : 'frame too large',
  ) {
    super('ERR_FRAME_TOO_LARGE', message)
  }
}

/** Something arrived that is not a valid Sock frame, or the server answered with an `{"error"}` frame. */
export class ProtocolError extends SockError {
  override name = 'ProtocolError' as const
}

/** A connection failed, was closed, or was rejected by the server (close code 1008). */
export class ConnectionError extends SockError {
  override name = 'ConnectionError' as const
  constructor(
    code: SockErrorCode,
    message: string,
    /** The WebSocket close code, when there was one. */
    readonly closeCode?: number,
    options?: { cause?: unknown },
  ) {
    super(code, message, options)
  }
}

/** A REST call failed: HTTP status, timeout or network. */
export class RestError extends SockError {
  override name = 'RestError' as const
  constructor(
    code: SockErrorCode,
    message: string,
    readonly status?: number,
    options?: { cause?: unknown },
  ) {
    super(code, message, options)
  }
}

/** A feature needs an optional peer dependency that is not installed (msgpackr, ioredis). `install` is the command. */
export class MissingPackageError extends SockError {
  override name = 'MissingPackageError' as const
  /** `npm i <packageName>` */
  readonly install: string
  constructor(
    readonly packageName: string,
    /** What needs it: `sock-client/msgpack`, `createSockServer({ redis })`. */
    readonly feature: string,
    options?: { cause?: unknown },
  ) {
    super(
      'ERR_MISSING_PACKAGE',
      DEV ? `${feature} needs the ${packageName} package, an optional peer dependency of sock-client that is not installed: run npm i ${packageName}` : `npm i ${packageName}`,
      options,
    )
    this.install = `npm i ${packageName}`
  }
}

/**
 * Thrown (or rejected with) by an application's token function to say that no token can be had (the session is
 * over, the user logged out): the channel stops retrying, as after a close 1008, until `reconnect()`. Any error whose
 * `name` is `'UnauthorizedError'` counts, so one from another copy of sock-client does too.
 */
export class UnauthorizedError extends SockError {
  override name = 'UnauthorizedError' as const
  constructor(message = 'unauthorized', options?: { cause?: unknown }) {
    super('ERR_UNAUTHORIZED', message, options)
  }
}

const NAMES = [
  'SockError',
  'ValidationError',
  'AddressError',
  'FrameTooLargeError',
  'ProtocolError',
  'ConnectionError',
  'RestError',
  'MissingPackageError',
  'RequestError',
  'ReplyError',
  'StreamError',
  'UnauthorizedError',
]

const guard =
  <T>(name: string) =>
  (e: unknown): e is T =>
    e instanceof Error && (name === 'SockError' ? NAMES.includes(e.name) : e.name === name)

export const isSockError = guard<SockError>('SockError')
export const isValidationError = guard<ValidationError>('ValidationError')
export const isAddressError = guard<AddressError>('AddressError')
export const isFrameTooLargeError = guard<FrameTooLargeError>('FrameTooLargeError')
export const isProtocolError = guard<ProtocolError>('ProtocolError')
export const isConnectionError = guard<ConnectionError>('ConnectionError')
export const isRestError = guard<RestError>('RestError')
export const isMissingPackageError = guard<MissingPackageError>('MissingPackageError')
export const isUnauthorizedError = guard<UnauthorizedError>('UnauthorizedError')
