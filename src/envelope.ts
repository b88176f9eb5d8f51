/**
 * sock-client's own envelope for events other than plain-text `message` and small `file`:
 * a Sock frame of type `TYPE_EVENT` whose `data` is the JSON text `{"i": id, "e": event, "d": payload}`.
 * Browser-safe; no sockets.
 */
import { ProtocolError } from './errors'

/** Frame type of a sock-client event envelope. */
export const TYPE_EVENT = 7

export interface Envelope {
  /** Message id, unique per sender: used to deliver a message once when it arrives over several servers. */
  i: string
  /** Event name. */
  e: string
  /** The payload (JSON codec). */
  d?: unknown
}

export function encodeEnvelope(id: string, event: string, data: unknown): string {
  const d = JSON.stringify(data)
  return d === undefined ? JSON.stringify({ i: id, e: event }) : `{"i":${JSON.stringify(id)},"e":${JSON.stringify(event)},"d":${d}}`
}

export function decodeEnvelope(data: string): Envelope | ProtocolError {
  let v: unknown
  try {
    v = JSON.parse(data)
  } catch {
    return new ProtocolError('ERR_PROTOCOL', 'received an event envelope that is not JSON')
  }
  const o = v as Envelope | null
  if (!o || typeof o !== 'object' || typeof o.i !== 'string' || typeof o.e !== 'string' || o.e === '') {
    return new ProtocolError('ERR_PROTOCOL', 'received an event envelope without a string id (i) and event (e)')
  }
  return o
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
