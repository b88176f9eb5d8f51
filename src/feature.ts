/**
 * How a feature composes onto the kernel: one table of hooks, filled from the features a client is given
 * (`new SockClient({ features: [chunks, files] })`) and read by the channel's message layer. A feature adds frame
 * kinds (types it reads, envelopes too large to send whole), event payload readers, codecs, address forms and
 * per-connection watchers here, never by patching a shared prototype. Types, the merge, and `HANDLED`.
 */
import type { Address, Mode, SetupForms } from './address'
import type { Channel, ChannelHost } from './channel'
import type { Connection, ConnectionState, StateDetail } from './connection'
import type { CodecLookup, Envelope } from './envelope'
import type { ProtocolError } from './errors'
import type { Frame } from './protocol'

/** Reads an inbound frame of a type the core does not: `8` (chunks), `2` (files). */
export type Reader = (ch: Channel, conn: Connection, frame: Frame) => void

/**
 * Turns an event's payload into what listeners get (`file` envelopes into a `SockFile`), or a reason to drop it, or
 * `HANDLED` when the feature took the event for itself (presence announcements): no listener gets it.
 */
export type EventReader = (data: unknown, from: string, ch: Channel, conn: Connection) => unknown | ProtocolError

/** What an `EventReader` returns for an event it consumed. */
export const HANDLED: unique symbol = /* @__PURE__ */ Symbol('handled')

/** Told that a channel is closing (left, closed, moved by `setup()`), while its connections are still open. */
export type Closing = (ch: Channel) => void

/** Sends an envelope too large for one frame (chunks), reporting progress. */
export type Splitter = (ch: Channel, id: string, text: string, onProgress?: (done: number, total: number) => void, track?: import('./channel').Tracker) => Promise<import('./channel').SendReport>

/** Reads a request (an envelope with `q`) or a reply (event `$r`): the replies feature. Without it, they are dropped. */
export type RequestReader = (ch: Channel, conn: Connection, from: string, type: number, env: Envelope, bytes: number) => void

/** Makes the channel for `name`: several connections in broadcast mode (the addresses feature). */
export type ChannelMaker = (name: string, addresses: readonly Address[], mode: Mode, host: ChannelHost) => Channel | undefined

/** Told of every state change of every connection (the REST feature's registration check). */
export type Watcher = (ch: Channel, conn: Connection, state: ConnectionState, detail: StateDetail) => void

/** Called when a deadline a feature set on a connection (`conn.wakeAt()`) came. */
export type Due = (ch: Channel, conn: Connection) => void

export interface Feature {
  /** Its name, for the messages that say a feature is missing. */
  readonly name: string
  readonly read?: { readonly [type: number]: Reader }
  readonly events?: { readonly [event: string]: EventReader }
  readonly split?: Splitter
  readonly requests?: RequestReader
  readonly codecs?: CodecLookup
  readonly channel?: ChannelMaker
  readonly setup?: SetupForms
  readonly watch?: Watcher
  readonly due?: Due
  readonly closing?: Closing
  /** Reads this feature's options when a client is made, into the client's configuration (see `Kernel`). */
  readonly init?: (options: any, k: any) => void
}

/** The features of a client, merged: the single hooks as they are, the tables merged, the `init`s in order. */
export interface Features extends Omit<Feature, 'name' | 'read' | 'events' | 'init'> {
  readonly names: readonly string[]
  readonly read: { readonly [type: number]: Reader }
  /** A Map: looked up for every event received, and most names are in none. */
  readonly events: ReadonlyMap<string, EventReader>
  readonly init: readonly ((options: any, k: any) => void)[]
}

const cache = /* @__PURE__ */ new WeakMap<readonly Feature[], Features>()
/** Tables by the features in them (their numbers below, in order), so that arrays made per client share one table. */
const tables = /* @__PURE__ */ new Map<string, Features>()
const numbers = /* @__PURE__ */ new WeakMap<Feature, number>()
let count = 0

/**
 * Merges `list` into one table. A feature given twice counts once (its hooks would run twice: the full client
 * given one it has, `[presence, presence]`), and the same features give the same table, however the array was made.
 */
export function compose(list: readonly Feature[] = []): Features {
  let f = cache.get(list)
  if (f) return f
  const unique = [...new Set(list)]
  const key = unique.map((x) => numbers.get(x) ?? (numbers.set(x, ++count), count)).join()
  f = tables.get(key)
  if (!f) {
    const events = new Map<string, EventReader>()
    const out: { -readonly [K in keyof Features]: Features[K] } = { names: [], read: {}, events, init: [] }
    for (const x of unique) {
      ;(out.names as string[]).push(x.name)
      Object.assign(out.read, x.read)
      for (const e in x.events) events.set(e, x.events[e]!)
      if (x.init) (out.init as unknown[]).push(x.init)
      out.split ??= x.split
      out.requests ??= x.requests
      out.codecs ??= x.codecs
      out.channel ??= x.channel
      out.setup ??= x.setup
      out.due ??= x.due
      const [a, b] = [out.watch, x.watch]
      out.watch = a && b ? (ch, conn, state, detail) => (a(ch, conn, state, detail), b(ch, conn, state, detail)) : (a ?? b)
      const [c, d] = [out.closing, x.closing]
      out.closing = c && d ? (ch) => (c(ch), d(ch)) : (c ?? d)
    }
    f = out
    if (tables.size < 64) tables.set(key, f) // combinations an application makes; features made per client are not kept
  }
  cache.set(list, f)
  return f
}
