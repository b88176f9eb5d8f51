/**
 * The streams feature (`sock-client/streams`, on top of the replies feature): `stream()` opens a stream to one
 * instance and returns a writer (a web `WritableStream`, plus `ready`, `delivered` and `result`); `handleStream()`
 * gives the addressed instance a reader (an async iterable and a web `ReadableStream`). The open is a request
 * (`s: 1`) whose final reply is the handler's result. Pieces travel as type-9 frames (`b` bytes in base64, `d` text,
 * each with a sequence number; `e` the end with the count) that fit one frame with no JSON inside the JSON, and only
 * within the credit the reader grants as its application reads (`c`), so a slow reader bounds the memory of the
 * writer, the server and itself. Abort and cancel travel both ways (`x` with a code); a stream idle too long aborts.
 */
import { fromBase64, toBase64 } from './bytes'
import type { Channel } from './channel'
import { escapedCost } from './escape'
import { positive, type SockClient, type Unsubscribe } from './client'
import type { Connection } from './connection'
import { control, type Control } from './control'
import { DEV } from './dev'
import { TYPE_CONTROL } from './envelope'
import { SockError, ValidationError, type SockErrorCode } from './errors'
import type { Feature } from './feature'
import {
  clientState,
  configOf,
  handle,
  isReplyError,
  NO_REPLY,
  open,
  Outgoing,
  ReplyCode,
  ReplyError,
  sendAbort,
  sendControl,
  sleepUntil,
  stateOf,
  type ChannelState,
  type ClientState,
  type Reply,
  type SockRequest,
  type StreamEnd,
} from './replies'
import { unsleep, type Sleeper } from './timers'

/** A piece of a stream: bytes, or text. */
export type Piece = Uint8Array | string

export interface StreamOptions {
  /** The instance that reads it (required: credit needs exactly one reader). */
  to: string
  /** Most pieces in flight unacknowledged, whatever the reader grants (default: the reader's window). */
  window?: number
  /** ms for the reader to accept, from the call (default `requestTimeout`). */
  timeout?: number
  /** No piece and no credit for this long aborts both sides with code 7 (default 30 000 ms). */
  idleTimeout?: number
  /** Aborts the stream (code 6). */
  signal?: AbortSignal
}

export interface HandleStreamOptions {
  /** Pieces the writer may send beyond what the application has read (default 64; at most window pieces are held). */
  window?: number
  /** No piece for this long aborts both sides with code 7 (default 30 000 ms). */
  idleTimeout?: number
  /** Streams this client reads at once, on all its channels (default 64); beyond it an open is refused with code 1. */
  maxStreams?: number
}

/** A stream aborted or cut short: `remoteCode` and `reason` when the other side said why. */
export class StreamError extends SockError {
  override name = 'StreamError' as const
  constructor(
    code: SockErrorCode,
    message: string,
    readonly streamId: string,
    readonly remoteCode?: number,
    readonly reason?: string,
    options?: { cause?: unknown },
  ) {
    super(code, message, options)
  }
}
export const isStreamError = (e: unknown): e is StreamError => e instanceof Error && e.name === 'StreamError'

export interface SockWriter<Res = unknown> {
  readonly id: string
  /** The reader accepted (its first credit came): with its id. */
  readonly ready: Promise<{ from: string }>
  /** The stream as a web WritableStream: `await file.stream().pipeTo(w.writable)`. */
  readonly writable: WritableStream<Piece | ArrayBufferView | ArrayBuffer>
  /** Resolves after `close()` once the reader holds every piece. */
  readonly delivered: Promise<void>
  /** The reader's handler's return value (its final reply); rejects with ReplyError when it failed. */
  readonly result: Promise<Res>
  /** Writes a chunk, cut into pieces that fit a frame; resolves once they are sent within the reader's credit. */
  write(chunk: Piece | ArrayBufferView | ArrayBuffer): Promise<void>
  /** Ends the stream (after what was written): sends the end with the count. */
  close(): Promise<void>
  /** Aborts both sides (code 6). */
  abort(reason?: unknown): void
}

export interface SockReader extends AsyncIterable<Piece> {
  readonly id: string
  /** The writer's instance id. */
  readonly from: string
  /** The stream as a web ReadableStream; each pull grants credit, so an unread stream holds at most its window. */
  readonly readable: ReadableStream<Piece>
  /** The next piece; `done` after the end (every piece delivered in order). */
  read(): Promise<IteratorResult<Piece, undefined>>
  /** Stops reading: the writer's stream aborts (code 6). */
  cancel(reason?: unknown): void
}

/** `{"type":9,"data":""}` around a control frame's data. */
const FRAME = 20
const RESOLVED = /* @__PURE__ */ Promise.resolve()
const now = (): number => performance.now()
const noop = (): void => {}
const reasonOf = (r: unknown): string => (typeof r === 'string' ? r : r instanceof Error ? r.message : r === undefined ? '' : String(r)).slice(0, 200)

/**
 * Writes a control frame on the channel's open connections only: a stream's pieces are never queued for a later
 * socket. Pieces were cut to fit, so the frame is built without measuring it again; `plain`: nothing to escape.
 */
function emit(ch: Channel, data: string, plain = true): Promise<void> | undefined {
  const text = `{"type":${TYPE_CONTROL},"data":${plain ? `"${data}"` : JSON.stringify(data)}}`
  let wait: Promise<void> | undefined
  for (const c of ch.connections) {
    if (!c.isOpen) continue
    const r = c.offer(text)
    // A socket past its high-water mark queues it: the writer waits for it to leave.
    if (r.status === 'queued') wait ??= r.written.then(noop, noop)
  }
  return wait
}

/** Both ends: the idle deadline on the shared timer, and the one way to end. */
abstract class End implements StreamEnd, Sleeper {
  due = 0
  slot = -1
  error: StreamError | undefined
  protected last = now()
  protected ended = false
  constructor(
    readonly ch: Channel,
    readonly cs: ChannelState,
    readonly id: string,
    protected readonly idle: number,
  ) {}

  abstract control(ch: Channel, conn: Connection, c: Control, from: string): void
  /** Ends this side with `error` (undefined: normally). */
  abstract finish(error?: StreamError): void

  protected touch(): void {
    this.last = now()
    if (!this.ended && this.idle < Infinity) sleepUntil(this, this.last + this.idle)
  }

  wake(): void {
    if (this.ended) return
    if (now() + 1 - this.last < this.idle) return sleepUntil(this, this.last + this.idle)
    this.stop(ReplyCode.Timeout, DEV ? `no piece or credit for ${this.idle} ms (idleTimeout)` : 'idle', 'ERR_TIMEOUT')
  }

  /** Aborts both sides: tells the other end why (`x`), then ends with a StreamError. */
  stop(code: number, reason: string, local: SockErrorCode = 'ERR_ABORTED'): void {
    if (this.ended) return
    sendAbort(this.ch, this.id, code, reason)
    this.finish(new StreamError(local, DEV ? `stream ${this.id} on '${this.ch.name}' aborted (code ${code}${reason ? `: ${reason}` : ''})` : 'aborted', this.id, undefined, reason))
  }

  leaving(): void {
    if (this.ended) return
    sendAbort(this.ch, this.id, ReplyCode.Canceled, 'closed')
    this.finish(new StreamError('ERR_CLOSED', DEV ? `channel '${this.ch.name}' was closed or left during stream ${this.id}` : 'closed', this.id))
  }

  /** The other side aborted. */
  protected aborted(c: Control): void {
    this.finish(
      new StreamError(
        'ERR_ABORTED',
        DEV ? `the other end aborted stream ${this.id} on '${this.ch.name}' with code ${c.n}${c.rest ? `: ${c.rest.slice(0, 200)}` : ''}` : 'aborted',
        this.id,
        c.n,
        c.rest.slice(0, 200),
      ),
    )
  }

  protected leave(error?: StreamError): void {
    this.ended = true
    this.error ??= error
    unsleep(this)
    if (this.cs.streams.get(this.id) === this) this.cs.streams.delete(this.id)
  }

  watch(ch: Channel, _conn: Connection, state: string, ended: SockError | undefined): void {
    if (ended) return this.finish(new StreamError(ended.code, ended.message, this.id))
    // Phase 1 (docs/protocol-replies.md): no retransmission, so a stream with no open connection left may have lost pieces.
    if (state !== 'open' && !ch.connections.some((c) => c.isOpen))
      this.finish(
        new StreamError('ERR_DISCONNECTED', DEV ? `lost every connection of '${ch.name}' during stream ${this.id}: pieces may be lost, so it ends (open a new one)` : 'disconnected', this.id),
      )
  }
}

// ---------- writer ----------

class Writer<Res> extends End implements SockWriter<Res> {
  readonly ready: Promise<{ from: string }>
  readonly delivered: Promise<void>
  readonly result: Promise<Res>
  private limit = 0
  private acked = 0
  private seq = 0
  private accepted = false
  private closing = false
  private chain: Promise<void> = RESOLVED
  private credit: (() => void) | undefined
  private call!: Outgoing
  private settleReady!: [(v: { from: string }) => void, (e: unknown) => void]
  private settleDelivered!: [() => void, (e: unknown) => void]
  private settleResult!: [(v: Res) => void, (e: unknown) => void]
  private acceptBy: number
  private ws: WritableStream | undefined

  constructor(
    ch: Channel,
    cs: ChannelState,
    id: string,
    readonly to: string,
    private readonly cap: number,
    timeout: number,
    idle: number,
  ) {
    super(ch, cs, id, idle)
    this.ready = new Promise((a, b) => (this.settleReady = [a, b]))
    this.delivered = new Promise((a, b) => (this.settleDelivered = [a, b]))
    this.result = new Promise((a, b) => (this.settleResult = [a, b]))
    // What nobody awaits must not become an unhandled rejection: the writer's own calls reject too.
    for (const p of [this.ready, this.delivered, this.result]) p.catch(noop)
    this.acceptBy = timeout > 0 && timeout < Infinity ? now() + timeout : Infinity
    if (this.acceptBy < Infinity) sleepUntil(this, this.acceptBy)
  }

  attach(call: Outgoing): void {
    this.call = call
    this.cs.streams.set(this.id, this)
  }

  get writable(): WritableStream<Piece | ArrayBufferView | ArrayBuffer> {
    return (this.ws ??= new WritableStream({ write: (chunk) => this.write(chunk), close: () => this.close(), abort: (reason) => this.abort(reason) }))
  }

  override wake(): void {
    if (this.ended) return
    if (!this.accepted) {
      if (now() + 1 < this.acceptBy) return sleepUntil(this, this.acceptBy)
      return this.stop(ReplyCode.Timeout, DEV ? 'the reader did not accept in time' : 'not accepted', 'ERR_TIMEOUT')
    }
    super.wake()
  }

  control(_ch: Channel, _conn: Connection, c: Control, from: string): void {
    if (from !== this.to || this.ended) return // credit and aborts only from the reader
    if (c.op === 'x') return this.aborted(c)
    if (c.op !== 'c') return
    const ack = Number(c.rest)
    if (!Number.isSafeInteger(ack) || ack < 0 || ack > c.n) return this.stop(ReplyCode.BadRequest, 'malformed credit')
    this.touch()
    this.limit = Math.max(this.limit, c.n)
    this.acked = Math.max(this.acked, ack)
    if (!this.accepted) {
      this.accepted = true
      this.settleReady[0]({ from })
    }
    this.credit?.()
    if (this.closing && this.acked >= this.seq) this.settleDelivered[0]()
  }

  /** The open's final reply: the reader's result. Before the end, it stops the writer. */
  replied(r: Reply): void {
    if (r.error) {
      if (!this.accepted) this.settleReady[1](r.error)
      this.settleResult[1](r.error)
      return this.finish(
        new StreamError('ERR_CLOSED', DEV ? `the reader of stream ${this.id} answered with code ${r.code}: ${r.error.message}` : 'answered', this.id, r.code, undefined, { cause: r.error }),
      )
    }
    this.settleResult[0](r.data as Res)
    if (!this.accepted) this.settleReady[0]({ from: r.from })
    this.finish(
      this.closing && this.acked >= this.seq ? undefined : new StreamError('ERR_CLOSED', DEV ? `the reader of stream ${this.id} answered before the end: nothing more is sent` : 'answered', this.id),
    )
  }

  private room(): number {
    return Math.min(this.limit, this.acked + this.cap)
  }

  write(chunk: Piece | ArrayBufferView | ArrayBuffer): Promise<void> {
    let piece: Piece
    if (typeof chunk === 'string' || chunk instanceof Uint8Array) piece = chunk
    else if (chunk instanceof ArrayBuffer) piece = new Uint8Array(chunk)
    else if (ArrayBuffer.isView(chunk)) piece = new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength)
    else return Promise.reject(new ValidationError('chunk', DEV ? 'a stream takes strings, Uint8Array, Buffer, ArrayBuffer or typed arrays' : 'invalid chunk'))
    if (this.closing) return Promise.reject(new StreamError('ERR_CLOSED', DEV ? `stream ${this.id} is closed: nothing can be written after close()` : 'closed', this.id))
    return (this.chain = this.chain.then(() => this.pieces(piece)))
  }

  /** Sends `chunk` as pieces, each within credit and fitting one frame. */
  private async pieces(chunk: Piece): Promise<void> {
    const max = this.ch.host.k.maxFrameBytes
    const text = typeof chunk === 'string'
    for (let at = 0; at < chunk.length; ) {
      while (!this.ended && this.seq >= this.room()) await new Promise<void>((r) => (this.credit = r))
      this.credit = undefined
      if (this.error) throw this.error
      const head = `${text ? 'd' : 'b'}:${this.id}:${this.seq}:`
      const budget = max - FRAME - head.length
      let data: string
      if (text) {
        let used = 0
        let end = at
        while (end < chunk.length) {
          const [bytes, units] = escapedCost(chunk, end)
          if (used + bytes > budget) break
          used += bytes
          end += units
        }
        if (end === at) throw new ValidationError('options.maxFrameBytes', 'maxFrameBytes is too small for a stream piece')
        data = head + (chunk as string).slice(at, end)
        at = end
      } else {
        const n = Math.floor(budget / 4) * 3
        if (n < 3) throw new ValidationError('options.maxFrameBytes', 'maxFrameBytes is too small for a stream piece')
        data = head + toBase64((chunk as Uint8Array).subarray(at, at + n))
        at += n
      }
      if (!this.ch.isOpen) {
        // Never a gap in the sequence: with no connection open the stream cannot go on (its loss ends it too).
        this.finish(new StreamError('ERR_DISCONNECTED', DEV ? `no connection of '${this.ch.name}' is open: stream ${this.id} cannot go on` : 'disconnected', this.id))
        throw this.error
      }
      this.seq++
      this.touch()
      const wait = emit(this.ch, data, !text)
      if (wait) await wait
    }
  }

  close(): Promise<void> {
    if (this.closing) return this.chain
    this.closing = true
    return (this.chain = this.chain.then(() => {
      if (this.error) throw this.error
      this.touch()
      emit(this.ch, control('e', this.id, this.seq))
      if (this.acked >= this.seq) this.settleDelivered[0]()
    }))
  }

  abort(reason?: unknown): void {
    this.stop(ReplyCode.Canceled, reasonOf(reason))
  }

  finish(error?: StreamError): void {
    if (this.ended) return
    this.leave(error)
    if (error) {
      this.settleReady[1](error)
      this.settleDelivered[1](error)
      this.settleResult[1](error)
    }
    if (this.call && !this.call.settled) this.call.fail(error ?? new StreamError('ERR_CLOSED', 'ended', this.id))
    this.credit?.()
  }
}

/** The stream's open: a request whose final reply is the reader's result, and whose loss ends the writer. */
class Open extends Outgoing {
  writer!: Writer<unknown>
  reply(r: Reply): void {
    if (!r.final) return
    this.settle()
    this.writer.replied(r)
  }
  fail(e: SockError): void {
    if (this.settled) return
    this.settle()
    this.writer.finish(e instanceof StreamError ? e : new StreamError(e.code, e.message, this.id, undefined, undefined, { cause: e }))
  }
  expired(): void {}
}

/**
 * Opens a stream of `event` on `channel` to the instance `options.to`, with `meta` for its handler; returns the
 * writer at once. `ready` resolves when the reader accepts; `result` with its handler's value.
 */
export function stream<Res = unknown>(client: SockClient<any>, channel: string, event: string, meta: unknown, options: StreamOptions): SockWriter<Res> {
  const config = configOf(client)
  if (!options || typeof options !== 'object' || typeof options.to !== 'string')
    throw new ValidationError('options.to', DEV ? 'a stream needs options.to, the id of the instance that reads it (find it with instances() or a request first)' : 'missing to')
  const cap = positive(options.window, 'options.window', Infinity, true) || Infinity
  const timeout = positive(options.timeout, 'options.timeout', config.timeout, true)
  const idle = positive(options.idleTimeout, 'options.idleTimeout', 30_000, true) || Infinity
  let w!: Writer<Res>
  open(client, channel, event, meta, options.to, options.signal, (p) => {
    w = new Writer<Res>(p.ch, p.cs, p.id, options.to, cap, timeout, idle)
    const o = new Open(client, p.ch, p.cs, p.id, event, p.head, p.rest, Infinity, options.to, 0, Infinity, undefined)
    o.writer = w as Writer<unknown>
    w.attach(o)
    return o
  })
  const signal = options.signal
  if (signal) {
    const onAbort = () => w.abort(signal.reason ?? 'aborted')
    if (signal.aborted) onAbort()
    else {
      signal.addEventListener('abort', onAbort)
      const off = () => signal.removeEventListener('abort', onAbort)
      w.result.then(off, off)
    }
  }
  return w
}

// ---------- reader ----------

class Reader extends End implements SockReader {
  private buf = new Map<number, Piece>()
  private next = 0
  private received = 0
  private count = -1
  private granted = 0
  private wait: (() => void) | undefined
  private rs: ReadableStream<Piece> | undefined
  private credited = false

  constructor(
    ch: Channel,
    cs: ChannelState,
    id: string,
    readonly from: string,
    private readonly window: number,
    idle: number,
    private readonly st: ClientState,
  ) {
    super(ch, cs, id, idle)
    st.reading++
    cs.streams.set(id, this)
    this.grant(true)
    this.touch()
  }

  /** Sends credit: at the start, once the application has read half a window since the last, and at the end. */
  private grant(force = false): void {
    const limit = this.next + this.window
    if (!force && limit - this.granted < this.window / 2) return
    this.granted = limit
    sendControl(this.ch, control('c', this.id, limit, String(this.received)))
  }

  control(_ch: Channel, _conn: Connection, c: Control, from: string): void {
    if (from !== this.from || this.ended) return // pieces only from the writer
    if (c.op === 'x') return this.aborted(c)
    if (c.op === 'e') {
      if (this.count < 0) this.count = c.n
      this.touch()
      return this.wait?.()
    }
    if (c.op !== 'b' && c.op !== 'd') return
    const seq = c.n
    if (seq < this.next || this.buf.has(seq)) return // a copy over another server
    if (seq >= this.granted || (this.count >= 0 && seq >= this.count)) return this.stop(ReplyCode.FlowControl, DEV ? `piece ${seq} beyond the credit granted (${this.granted})` : 'beyond credit')
    const piece = c.op === 'd' ? c.rest : fromBase64(c.rest)
    if (piece === undefined) return this.stop(ReplyCode.BadRequest, 'bad base64')
    this.buf.set(seq, piece)
    while (this.buf.has(this.received)) this.received++
    this.touch()
    this.wait?.()
  }

  async read(): Promise<IteratorResult<Piece, undefined>> {
    for (;;) {
      if (this.buf.has(this.next)) {
        const piece = this.buf.get(this.next)!
        this.buf.delete(this.next++)
        this.grant()
        return { value: piece, done: false }
      }
      if (this.error) throw this.error
      if (this.ended || (this.count >= 0 && this.next >= this.count)) {
        if (!this.credited && this.count >= 0) {
          this.credited = true
          this.grant(true) // the final credit: ack = count, the writer's `delivered`
        }
        return { value: undefined, done: true }
      }
      await new Promise<void>((r) => (this.wait = r))
      this.wait = undefined
    }
  }

  [Symbol.asyncIterator](): AsyncIterator<Piece, undefined> {
    return { next: () => this.read(), return: async () => (this.count < 0 || this.next < this.count ? this.cancel() : undefined, { value: undefined, done: true }) }
  }

  get readable(): ReadableStream<Piece> {
    return (this.rs ??= new ReadableStream<Piece>(
      {
        pull: async (ctl) => {
          const r = await this.read()
          if (r.done) ctl.close()
          else ctl.enqueue(r.value)
        },
        cancel: (reason) => this.cancel(reason),
      },
      { highWaterMark: 0 },
    ))
  }

  cancel(reason?: unknown): void {
    this.stop(ReplyCode.Canceled, reasonOf(reason))
  }

  finish(error?: StreamError): void {
    if (this.ended) return
    this.st.reading--
    this.leave(error)
    this.buf.clear()
    this.wait?.()
  }
}

/**
 * Reads streams of `event` on `channel` (joining it): `fn(reader, meta, req)`; its return value is the writer's
 * `result`. Await the reading in it: a handler that returns early answers, and stops the writer.
 */
export function handleStream<Q = any, S = any>(
  client: SockClient<any>,
  channel: string,
  event: string,
  fn: (reader: SockReader, meta: Q, req: SockRequest<Q>) => S | Promise<S>,
  options: HandleStreamOptions = {},
): Unsubscribe {
  configOf(client)
  if (typeof fn !== 'function') throw new ValidationError('handler', DEV ? `missing stream handler for '${event}': pass a function` : 'missing handler')
  const window = positive(options?.window, 'options.window', 64) || 64
  const idle = positive(options?.idleTimeout, 'options.idleTimeout', 30_000, true) || Infinity
  const most = positive(options?.maxStreams, 'options.maxStreams', 64, true)
  return handle(
    client,
    channel,
    event,
    async (meta: Q, req: SockRequest<Q>) => {
      const st = clientState(client)
      if (st.reading >= most) throw new ReplyError(ReplyCode.Rejected, DEV ? `already reading ${most} streams (maxStreams)` : 'busy')
      const ch = (req as unknown as { ch: Channel }).ch
      const reader = new Reader(ch, stateOf(ch), req.id, req.from, window, idle, st)
      try {
        const out = await fn(reader, meta, req)
        reader.finish()
        return out
      } catch (e) {
        // The stream's own ending (aborted, canceled, timed out, closed, lost) let through the handler is no bug of
        // the application, and the other end knows already: nothing to report, nothing to answer.
        if (e === reader.error) return NO_REPLY as S
        if (!isReplyError(e)) reader.stop(ReplyCode.HandlerError, 'handler failed')
        reader.finish()
        throw e
      }
    },
    {},
    true,
  )
}

/** The streams feature: `new SockClient({ features: [replies, streams] })` (`sock-client` has both). */
export const streams: Feature = { name: 'streams' }

export type { Reply }
