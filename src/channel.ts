/**
 * One channel across the addresses of the mode: one connection per address in broadcast mode, one rotating
 * connection in failover mode. Sends on every open connection and merges what they receive.
 */
import { alone, type Address, type Mode } from './address'
import { Assembler, type AssemblyLimits } from './chunks'
import { Connection, SENT, type ConnectionOptions, type ConnectionSink, type ConnectionState } from './connection'
import { ConnectionError, type SockError } from './errors'
import type { Frame } from './protocol'

/** How many recent message ids a channel on several servers remembers to deliver each message once. */
const DEDUPE_WINDOW = 4096

/** Where a frame went: written now, waiting in a connection's queue, or refused (with the reason). */
export interface SendReport {
  sent: string[]
  queued: string[]
  failed: { address: string; error: SockError }[]
}

export interface ConnectionInfo {
  address: string
  state: ConnectionState
  id: string | undefined
  queued: number
}

export interface ChannelSink {
  state(channel: Channel, conn: Connection, state: ConnectionState, detail: { code?: number; reason?: string; error?: SockError }): void
  frame(channel: Channel, conn: Connection, frame: Frame): void
  error(channel: Channel, conn: Connection, error: SockError): void
  reconnect(channel: Channel, conn: Connection, detail: { attempt: number; delay: number; reason: string }): void
}

/** The client's emitter key for `event` on `channel`; `''` is the catch-all listener's. */
export const listenerKey = (channel: string, event: string): string => `${channel}\0${event}`

export class Channel implements ConnectionSink {
  readonly connections: Connection[]
  private reassembly: Assembler | undefined
  private waiters: { resolve(): void; reject(e: SockError): void }[] | undefined
  // Created on first use: most channels never see a chunk, and only a channel on several servers dedupes.
  private seen: Set<string> | undefined
  private keys: Map<string, string> | undefined
  private any: string | undefined

  constructor(
    readonly name: string,
    addresses: readonly Address[],
    mode: Mode,
    options: ConnectionOptions,
    private readonly limits: AssemblyLimits,
    private readonly sink: ChannelSink,
    /** Whoever the sink reports to (the client). */
    readonly owner: unknown,
  ) {
    const groups = mode === 'failover' ? [addresses] : addresses.map(alone)
    this.connections = groups.map((g) => new Connection(name, g, options, this))
  }

  // What the connections report (ConnectionSink), passed on with the channel.
  onState(conn: Connection, state: ConnectionState, detail: { code?: number; reason?: string; error?: SockError }): void {
    this.sink.state(this, conn, state, detail)
    if (state === 'open') this.settle()
    else if ((state === 'closed' || state === 'giveup') && this.connections.every((c) => c.state === 'closed' || c.state === 'giveup')) {
      this.settle(detail.error ?? new ConnectionError('ERR_CLOSED', `channel '${this.name}' was closed before it opened`))
    }
  }

  onFrame(conn: Connection, frame: Frame): void {
    this.sink.frame(this, conn, frame)
  }

  onError(conn: Connection, error: SockError): void {
    this.sink.error(this, conn, error)
  }

  onReconnect(conn: Connection, detail: { attempt: number; delay: number; reason: string }): void {
    this.sink.reconnect(this, conn, detail)
  }

  /**
   * The listener keys of this channel (`listenerKey`): the catch-all's, and one per event, kept for the first 64 event
   * names so the emitter looks up the same string every time instead of a new one per message.
   */
  get anyKey(): string {
    return (this.any ??= listenerKey(this.name, ''))
  }

  key(event: string): string {
    const keys = (this.keys ??= new Map())
    let k = keys.get(event)
    if (k === undefined) {
      k = listenerKey(this.name, event)
      if (keys.size < 64) keys.set(event, k)
    }
    return k
  }

  /** Reassembles chunked messages, keyed by message id (so several servers and senders never mix). */
  get assembler(): Assembler {
    return (this.reassembly ??= new Assembler(this.limits, (error) => this.sink.error(this, this.connections[0]!, error)))
  }

  /**
   * True the first time message `id` is seen. Only a channel on several servers can receive a message twice;
   * it remembers the last DEDUPE_WINDOW ids (bounded memory).
   */
  firstTime(id: string): boolean {
    if (this.connections.length < 2) return true
    this.seen ??= new Set()
    if (this.seen.has(id)) return false
    this.seen.add(id)
    if (this.seen.size > DEDUPE_WINDOW) this.seen.delete(this.seen.values().next().value!)
    return true
  }

  /** A frame from one of our own instances (several servers sharing a channel relay it back to us). */
  isOwn(from: string): boolean {
    if (this.connections.length < 2) return false
    for (const c of this.connections) if (c.id === from) return true
    return false
  }

  get isOpen(): boolean {
    return this.connections.some((c) => c.isOpen)
  }

  /** Resolves once any connection of the channel is open; rejects if every one is closed for good. */
  ready(): Promise<void> {
    if (this.isOpen) return Promise.resolve()
    const ended = this.connections.find((c) => c.state === 'closed' || c.state === 'giveup')
    if (ended && this.connections.every((c) => c.state === 'closed' || c.state === 'giveup')) {
      return Promise.reject(new ConnectionError(ended.state === 'giveup' ? 'ERR_GAVE_UP' : 'ERR_CLOSED', `channel '${this.name}' is ${ended.state === 'giveup' ? 'given up (call reconnect())' : 'closed'}`))
    }
    return new Promise((resolve, reject) => (this.waiters ??= []).push({ resolve, reject }))
  }

  private settle(error?: SockError): void {
    const w = this.waiters
    this.waiters = undefined
    if (w) for (const x of w) error ? x.reject(error) : x.resolve()
  }

  /**
   * Sends an encoded frame on every connection of the channel (one in failover mode). Resolves once at least one
   * connection wrote it, with the outcome per address; rejects when none can (the first reason).
   */
  send(text: string): Promise<SendReport> {
    const conns = this.connections
    const first = conns[0]!.offer(text)
    if (first === SENT && conns.length === 1) {
      return Promise.resolve({ sent: [String(conns[0]!.address)], queued: [], failed: [] }) // the common case
    }
    const report: SendReport = { sent: [], queued: [], failed: [] }
    let waits: Promise<[queuedFor: string, writtenTo: string]>[] | undefined
    for (let i = 0; i < conns.length; i++) {
      const c = conns[i]!
      const address = String(c.address)
      const r = i === 0 ? first : c.offer(text)
      if (r.status === 'sent') report.sent.push(address)
      else if (r.status === 'failed') report.failed.push({ address, error: r.error })
      else {
        report.queued.push(address)
        const w = r.written.then((to): [string, string] => [address, to]) // failover may write it to the next address
        w.catch(() => {}) // unless awaited below, its fate is reported by the close or give-up that drops it
        ;(waits ??= []).push(w)
      }
    }
    if (report.sent.length) return Promise.resolve(report)
    if (!waits) return Promise.reject(report.failed[0]!.error)
    return Promise.any(waits).then(
      ([queuedFor, writtenTo]) => {
        report.queued.splice(report.queued.indexOf(queuedFor), 1)
        report.sent.push(writtenTo)
        return report
      },
      (e: AggregateError) => {
        throw e.errors[0] as SockError
      },
    )
  }

  /** Each connection: its address in use, state, the id the server gave it and frames waiting in its queue. */
  describe(): ConnectionInfo[] {
    return this.connections.map((c) => ({ address: String(c.address), state: c.state, id: c.id, queued: c.queued }))
  }

  /** The instance id the server gave us, on the first connection that has one. */
  get id(): string | undefined {
    for (const c of this.connections) if (c.id) return c.id
    return undefined
  }

  check(): void {
    for (const c of this.connections) c.check()
  }

  reconnect(): void {
    for (const c of this.connections) c.reconnect()
  }

  close(): void {
    this.reassembly?.clear()
    for (const c of this.connections) c.close()
    this.settle(new ConnectionError('ERR_CLOSED', `channel '${this.name}' was closed before it opened`))
  }
}
