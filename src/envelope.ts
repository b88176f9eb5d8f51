/**
 * sock-client's own frames, in types it reserves (documented in the README):
 * - `TYPE_EVENT` (7): an event envelope, `data` = the JSON text `{"i": id, "e": event, "d": payload}`; with a codec
 *   other than JSON, `{"i", "e", "c": codec name, "d": the codec's string}`.
 * - `TYPE_CHUNK` (8): one piece of an envelope too large for one frame, `data` = `<id>:<index>:<count>:<length>:<piece>`.
 * Browser-safe; no sockets.
 */
import { findCodec, json, type Codec } from './codec'
import { ProtocolError } from './errors'

export const TYPE_EVENT = 7
export const TYPE_CHUNK = 8

/**
 * Longest envelope id and event name. A receiver keeps ids (to deliver a message once over several servers) and
 * event names (its listener keys): what a peer sends must not size what is kept.
 */
export const MAX_ID = 64
export const MAX_EVENT = 256

export interface Envelope {
  /** Message id, unique per sender: delivers a message once when it arrives over several servers. */
  id: string
  event: string
  data: unknown
}

export function encodeEnvelope(id: string, event: string, data: unknown, codec: Codec = json): string {
  const head = `{"i":"${id}","e":${JSON.stringify(event)}` // ids are letters and digits: nothing to escape
  if (codec === json) {
    const d = JSON.stringify(data)
    return d === undefined ? `${head}}` : `${head},"d":${d}}`
  }
  return `${head},"c":${JSON.stringify(codec.name)},"d":${JSON.stringify(codec.encode(data))}}`
}

const bad = (why: string) => new ProtocolError('ERR_PROTOCOL', `received a malformed event envelope: ${why}`)

export function decodeEnvelope(text: string): Envelope | ProtocolError {
  return decodeOwn(text) ?? decodeAny(text)
}

/** The bounds on a decoded id and event, as one error. */
function checkNames(id: string, event: string): ProtocolError | undefined {
  if (id.length > MAX_ID) return bad(`its id (i) is longer than ${MAX_ID} characters`)
  if (event.length > MAX_EVENT) return bad(`its event name (e) is longer than ${MAX_EVENT} characters`)
  return undefined
}

const ESCAPED = /[\\\x00-\x1f]/ // a backslash, or a control character JSON.parse would refuse

/**
 * The envelope exactly as `encodeEnvelope` writes it with JSON, `{"i":"<id>","e":"<event>","d":<payload>}` with no
 * backslash in id or event, read by slicing and one `JSON.parse` of the payload: a third cheaper than parsing the
 * whole envelope. Anything else (other key order, whitespace, escapes or control characters, a codec, no
 * payload) is `undefined`, for the full parser; what this accepts is exactly what the full parser would return.
 */
function decodeOwn(s: string): Envelope | ProtocolError | undefined {
  if (!s.startsWith('{"i":"') || s.charCodeAt(s.length - 1) !== 125 /* } */) return
  const a = s.indexOf('"', 6)
  if (a < 0 || !s.startsWith(',"e":"', a + 1)) return
  const b = s.indexOf('"', a + 7)
  if (b <= a + 7 || !s.startsWith(',"d":', b + 1)) return
  const id = s.slice(6, a)
  const event = s.slice(a + 7, b)
  if (ESCAPED.test(id) || ESCAPED.test(event)) return
  const tooLong = checkNames(id, event) // before the payload is parsed
  if (tooLong) return tooLong
  try {
    // One JSON value and nothing else, or it throws: a trailing `,"c":...` or a second key never gets through.
    return { id, event, data: JSON.parse(s.slice(b + 6, -1)) }
  } catch {
    return
  }
}

function decodeAny(text: string): Envelope | ProtocolError {
  let o: { i?: unknown; e?: unknown; c?: unknown; d?: unknown }
  try {
    o = JSON.parse(text)
  } catch {
    return bad('not JSON')
  }
  if (!o || typeof o !== 'object' || typeof o.i !== 'string' || typeof o.e !== 'string' || o.e === '') return bad('no string id (i) and event (e)')
  const tooLong = checkNames(o.i, o.e)
  if (tooLong) return tooLong
  if (o.c === undefined || o.c === 'json') return { id: o.i, event: o.e, data: o.d }
  const codec = typeof o.c === 'string' ? findCodec(o.c) : undefined
  if (!codec) return bad(`codec ${JSON.stringify(o.c)} is not loaded (for msgpack: import { msgpack } from 'sock-client/msgpack')`)
  if (typeof o.d !== 'string') return bad(`codec ${o.c} needs a string payload`)
  try {
    return { id: o.i, event: o.e, data: codec.decode(o.d) }
  } catch (e) {
    return bad(`${o.c} payload does not decode (${(e as Error)?.message ?? e})`)
  }
}

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789'

/** `n` random ASCII letters and digits (crypto-quality where the runtime has it). */
export function randomName(n: number): string {
  const bytes = new Uint8Array(n)
  const c = (globalThis as { crypto?: Crypto }).crypto
  if (c?.getRandomValues) c.getRandomValues(bytes)
  else for (let i = 0; i < n; i++) bytes[i] = (Math.random() * 256) | 0
  let s = ''
  for (const b of bytes) s += ALPHABET[b % 62]
  return s
}
