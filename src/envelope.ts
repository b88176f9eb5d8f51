/**
 * sock-client's own frames, in types it reserves (documented in docs/protocol.md):
 * - `TYPE_EVENT` (7): an event envelope, `data` = the JSON text `{"i": id, "e": event, "d": payload}`; with a codec
 *   other than JSON, `{"i", "e", "c": codec name, "d": the codec's string}`.
 * - `TYPE_CHUNK` (8): one piece of an envelope too large for one frame (the chunks feature).
 * - `TYPE_CONTROL` (9): a reply without data and the pieces and credit of streams (the replies and streams
 *   features, docs/protocol-replies.md); requests and replies with data are envelopes with more keys (`q`, `t`, `r`,
 *   `k`, `m`, `s`), event `$r` marking a reply.
 * Browser-safe; no sockets. The core reads and writes JSON; other codecs come from the codecs feature.
 */
import { DEV } from './dev'
import { ProtocolError } from './errors'

export const TYPE_EVENT = 7
export const TYPE_CHUNK = 8
export const TYPE_CONTROL = 9
/** The event of a reply envelope: reserved, never a listener's. */
export const REPLY = '$r'
/** The event of a presence announcement (docs/protocol-presence.md): for the presence feature, never a listener's. */
export const PRESENCE = 'sock:presence'

/**
 * Longest envelope id and event name. A receiver keeps ids (to deliver a message once over several servers) and
 * event names (its listener keys): what a peer sends must not size what is kept.
 */
export const MAX_ID = 64
export const MAX_EVENT = 256

/** Turns an event payload into the string an envelope carries, and back. */
export interface Codec {
  /** Written into the envelope (`c`), so the receiver knows how to decode. `json` is implied when absent. */
  readonly name: string
  encode(data: unknown): string
  decode(text: string): unknown
}

export const json: Codec = {
  name: 'json',
  encode: (data) => JSON.stringify(data),
  decode: (text) => JSON.parse(text),
}

/** Finds a codec by the name an envelope gives (the codecs feature's registry); the core knows only JSON. */
export type CodecLookup = (name: string) => Codec | undefined

export interface Envelope {
  /** Message id, unique per sender: delivers a message once when it arrives over several servers. */
  id: string
  event: string
  data: unknown
  /**
   * The keys of requests and replies, as received (the replies feature checks them): `q` a reply is wanted (the
   * requester's timeout), `t` the one instance meant, `r` the request a reply answers, `k` its code, `m` more
   * replies follow, `s` a stream is attached.
   */
  q?: unknown
  t?: unknown
  r?: unknown
  k?: unknown
  m?: unknown
  s?: unknown
}

/** `keys`: more keys, written between the event and the payload (`,"q":5000,"t":"bob"`). */
export function encodeEnvelope(id: string, event: string, data: unknown, codec: Codec = json, keys = ''): string {
  const head = `{"i":"${id}","e":${JSON.stringify(event)}${keys}` // ids are letters and digits: nothing to escape
  if (codec === json) {
    const d = JSON.stringify(data)
    return d === undefined ? `${head}}` : `${head},"d":${d}}`
  }
  return `${head},"c":${JSON.stringify(codec.name)},"d":${JSON.stringify(codec.encode(data))}}`
}

const bad = (why: string) => new ProtocolError('ERR_PROTOCOL', DEV ? `received a malformed event envelope: ${why}` : 'bad envelope')

export function decodeEnvelope(text: string, codecs?: CodecLookup): Envelope | ProtocolError {
  return decodeOwn(text) ?? decodeAny(text, codecs)
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

function decodeAny(text: string, codecs?: CodecLookup): Envelope | ProtocolError {
  let o: { i?: unknown; e?: unknown; c?: unknown; d?: unknown; q?: unknown; t?: unknown; r?: unknown; k?: unknown; m?: unknown; s?: unknown }
  try {
    o = JSON.parse(text)
  } catch {
    return bad('not JSON')
  }
  if (!o || typeof o !== 'object' || typeof o.i !== 'string' || typeof o.e !== 'string' || o.e === '') return bad('no string id (i) and event (e)')
  const tooLong = checkNames(o.i, o.e)
  if (tooLong) return tooLong
  const env: Envelope = { id: o.i, event: o.e, data: o.d, q: o.q, t: o.t, r: o.r, k: o.k, m: o.m, s: o.s }
  if (o.c === undefined || o.c === 'json') return env
  const codec = typeof o.c === 'string' ? codecs?.(o.c) : undefined
  if (!codec)
    return bad(
      DEV
        ? `codec ${JSON.stringify(o.c)} is not loaded (for msgpack: import { msgpack } from 'sock-client/msgpack'${codecs ? '' : ", on a client with the codecs feature from 'sock-client/codecs'"})`
        : 'unknown codec',
    )
  if (typeof o.d !== 'string') return bad(`codec ${o.c} needs a string payload`)
  try {
    env.data = codec.decode(o.d)
    return env
  } catch (e) {
    return bad(`${o.c} payload does not decode (${(e as Error)?.message ?? e})`)
  }
}
