/**
 * Sock frames: the connection URL, encoding with a byte-size check, defensive decoding, reserved types.
 * Browser-safe; knows nothing of events or reconnects.
 */
import { DEV } from './dev'
import { FrameTooLargeError, ProtocolError, ValidationError } from './errors'

/** Keep-alive ping: marks the instance alive, no reply. */
export const TYPE_PING = -1
/** "Who am I": the server replies to the sender with its id. */
export const TYPE_WHOAMI = 0
/** Plain text in `data` (sockc convention). Event `message`. */
export const TYPE_TEXT = 1
/** A file, `data` = `<basename>:<base64>` (sockc convention). Event `file`. */
export const TYPE_FILE = 2

/** The reference server's read limit for a whole frame, in UTF-8 bytes. */
export const DEFAULT_MAX_FRAME_BYTES = 1024

export interface Frame {
  type: number
  data: string
  from: string
}

const NAME_RE = /^[A-Za-z0-9]+$/

/** Channel names and ids are ASCII letters and digits only. */
export function isName(v: unknown): v is string {
  return typeof v === 'string' && NAME_RE.test(v)
}

const quote = (v: unknown): string => JSON.stringify(v) ?? String(v)

export function checkChannel(channel: unknown, argument = 'channel'): string {
  if (!isName(channel)) {
    throw new ValidationError(argument, DEV ? `invalid channel ${quote(channel)}: a Sock channel name is ASCII letters and digits only ([A-Za-z0-9]+), as in 'chat' or 'room42'` : 'invalid channel')
  }
  return channel
}

export function checkId(id: unknown, argument = 'id'): string {
  if (!isName(id)) {
    throw new ValidationError(argument, DEV ? `invalid id ${quote(id)}: an instance id is ASCII letters and digits only ([A-Za-z0-9]+); omit it to let the server pick one` : 'invalid id')
  }
  return id
}

export function checkToken(token: unknown, argument = 'token'): string | undefined {
  if (token === undefined) return undefined
  if (typeof token !== 'string' || token === '') {
    throw new ValidationError(argument, DEV ? `invalid ${argument}: it must be a non-empty string; omit it to use the server's default ('demo')` : `invalid ${argument}`)
  }
  return token
}

/** `<base>/channel/<channel>?id=<id>&token=<token>`, every part encoded; id and token only when set. */
export function channelUrl(base: string, channel: string, id?: string, token?: string): string {
  const url = `${base}/channel/${encodeURIComponent(checkChannel(channel))}`
  const q: string[] = []
  if (id !== undefined) q.push(`id=${encodeURIComponent(checkId(id))}`)
  if (checkToken(token) !== undefined) q.push(`token=${encodeURIComponent(token!)}`)
  return q.length ? `${url}?${q.join('&')}` : url
}

/** Replaces the value of any `token` query parameter, so a URL can be shown or logged. */
export function redact(text: string): string {
  return text.replace(/([?&]token=)[^&#\s]*/g, '$1***')
}

let encoder: TextEncoder | undefined

/** UTF-8 byte length of a string (a lone surrogate counts as the 3 bytes of U+FFFD, as a WebSocket sends it). */
export function utf8Length(s: string): number {
  return (encoder ??= new TextEncoder()).encode(s).length
}

/**
 * Encodes an outbound frame: always `type` and `data`, never `from`. Throws `ValidationError` for a non-integer
 * type or non-string data and `FrameTooLargeError` when the UTF-8 frame exceeds `maxFrameBytes`.
 */
export function encodeFrame(type: number, data: string, maxFrameBytes = DEFAULT_MAX_FRAME_BYTES): string {
  checkFrame(type, data)
  const text = fitFrame(type, data, maxFrameBytes)
  if (typeof text === 'number') throw new FrameTooLargeError(text, maxFrameBytes)
  return text
}

/** Throws `ValidationError` unless `type` is an integer and `data` a string (what a raw Sock frame carries). */
export function checkFrame(type: unknown, data: unknown): void {
  if (!Number.isSafeInteger(type)) throw new ValidationError('type', DEV ? `invalid type ${String(type)}: a Sock frame type is an integer (1 text, 2 file, > 2 for applications)` : 'invalid type')
  if (typeof data !== 'string')
    throw new ValidationError('data', DEV ? `invalid data of type ${data === null ? 'null' : typeof data}: a raw Sock frame carries a string; use signal() for other payloads` : 'invalid data')
}

/** The frame of a valid type and string data, or its size in UTF-8 bytes when that exceeds `maxFrameBytes`. */
export function fitFrame(type: number, data: string, maxFrameBytes: number): string | number {
  const text = `{"type":${type},"data":${JSON.stringify(data)}}`
  // Fast path: a string of n UTF-16 units is at most 3n UTF-8 bytes.
  if (text.length * 3 > maxFrameBytes) {
    const bytes = utf8Length(text)
    if (bytes > maxFrameBytes) return bytes
  }
  return text
}

export type Decoded = { frame: Frame; error?: undefined } | { frame?: undefined; error: ProtocolError }

let decoder: TextDecoder | undefined

function toText(raw: unknown): string | undefined {
  if (typeof raw === 'string') return raw
  if (raw instanceof ArrayBuffer || ArrayBuffer.isView(raw)) {
    try {
      return (decoder ??= new TextDecoder('utf-8', { fatal: true })).decode(raw as ArrayBuffer)
    } catch {}
  }
  return undefined
}

const fail = (message: string): Decoded => ({ error: new ProtocolError('ERR_PROTOCOL', message) })

/**
 * Decodes an inbound frame (text or binary) defensively: never throws. `{"error": ...}` frames become a
 * `ProtocolError` with code `ERR_SERVER`; anything that is not a Sock frame becomes one with `ERR_PROTOCOL`.
 */
export function decodeFrame(raw: unknown): Decoded {
  const text = toText(raw)
  if (text === undefined) return fail(DEV ? 'received a binary frame that is not UTF-8 text' : 'not UTF-8')
  let v: unknown
  try {
    v = JSON.parse(text)
  } catch {
    return fail(DEV ? `received a frame that is not JSON (${text.length} chars)` : 'not JSON')
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return fail(DEV ? 'received JSON that is not a Sock frame object' : 'not a frame')
  const o = v as Record<string, unknown>
  if ('error' in o) {
    return { error: new ProtocolError('ERR_SERVER', `server error: ${typeof o.error === 'string' ? o.error : JSON.stringify(o.error)}`) }
  }
  const type = o.type === undefined ? TYPE_WHOAMI : o.type
  if (!Number.isSafeInteger(type) || (o.data !== undefined && typeof o.data !== 'string') || (o.from !== undefined && typeof o.from !== 'string')) {
    return fail(DEV ? 'received a frame whose type is not an integer, or whose data or from is not a string' : 'bad frame')
  }
  // The parsed object is the frame (no copy per message); only missing fields are filled in.
  o.type = type
  o.data ??= ''
  o.from ??= ''
  return { frame: o as unknown as Frame }
}
