/**
 * The chunks feature (`sock-client/chunks`): an envelope that exceeds the server's frame limit travels as
 * `TYPE_CHUNK` (8) frames that each fit, and is reassembled with bounded memory: a cap per message and in total,
 * and a timeout for senders who go quiet. Without it, a client refuses to send such an envelope and reports the
 * chunks it receives as an error naming this feature.
 */
import type { Channel, Tracker } from './channel'
import { positive } from './client'
import type { Connection } from './connection'
import { DEV } from './dev'
import { TYPE_CHUNK } from './envelope'
import { FrameTooLargeError, ProtocolError } from './errors'
import type { Feature } from './feature'
import { encodeFrame } from './protocol'
import { escapedCost } from './escape'

export { escapedCost }

/** Bytes `{"type":8,"data":""}` takes around the chunk data. */
const FRAME_OVERHEAD = 20
/** Room reserved for `:<index>:<count>:<length>:` (up to 9 digits each). */
const HEADER_RESERVE = 4 + 3 * 9

/**
 * Splits `text` into pieces whose chunk frames (`chunkData(id, ...)`) each fit `maxFrameBytes`, never splitting a
 * surrogate pair.
 */
export function splitChunks(id: string, text: string, maxFrameBytes: number): string[] {
  const budget = maxFrameBytes - FRAME_OVERHEAD - HEADER_RESERVE - id.length
  if (budget < 4) throw new FrameTooLargeError(text.length, maxFrameBytes, DEV ? `maxFrameBytes ${maxFrameBytes} is too small to carry chunks of message ${id}` : undefined)
  const pieces: string[] = []
  let start = 0
  let used = 0
  for (let i = 0; i < text.length; ) {
    const [bytes, units] = escapedCost(text, i)
    if (used + bytes > budget) {
      pieces.push(text.slice(start, i))
      start = i
      used = 0
    }
    used += bytes
    i += units
  }
  pieces.push(text.slice(start))
  return pieces
}

/** The `data` of chunk `index` of `count` of a message of `length` UTF-16 units. */
export function chunkData(id: string, index: number, count: number, length: number, piece: string): string {
  return `${id}:${index}:${count}:${length}:${piece}`
}

export interface AssemblyLimits {
  /** Largest single message, in UTF-16 units of its envelope. */
  maxMessageBytes: number
  /** Most memory all partial messages of a channel may hold at once: real bytes, bookkeeping included. */
  maxPendingBytes: number
  /** A partial message with no new chunk for this long (ms) is dropped. */
  timeout: number
}

interface Partial {
  /** The pieces that arrived, by index: nothing is allocated for the ones announced but not yet here. */
  parts: Map<number, string>
  count: number
  length: number
  /** UTF-16 units received, and what they cost in memory (charged against maxPendingBytes). */
  size: number
  cost: number
  from: string
  /** Last chunk, on the monotonic clock. */
  last: number
}

/**
 * What a partial message and a piece cost beyond their text, measured on V8 (Node 20): a message's record, its map
 * of pieces and its entry in the table about 340 bytes; a piece's map entry and string headers about 60.
 */
const PARTIAL_COST = 400
const PIECE_COST = 64
/** Ids of finished messages remembered, so late or repeated chunks do not start them again (ids are at most 64 chars). */
const FINISHED = 4096

const CHUNK_RE = /^([A-Za-z0-9]{1,64}):(\d{1,9}):(\d{1,9}):(\d{1,10}):/
const TWO_BYTE = /[^\x00-\xff]/

export type ChunkResult = { done: string; id: string } | { progress: { id: string; from: string; done: number; total: number } } | { error: ProtocolError } | { ignored: true }

/**
 * Reassembles chunks per message id; a message id whose data was dropped or delivered is not rebuilt again. Every
 * number in a chunk header is checked before anything is allocated for it, and every byte held is charged to
 * maxPendingBytes: a piece holds its whole frame string (a slice keeps its parent alive), at 1 or 2 bytes a unit.
 */
export class Assembler {
  private readonly partial = new Map<string, Partial>()
  private readonly finished = new Set<string>()
  private pending = 0
  private timer: ReturnType<typeof setInterval> | undefined

  constructor(
    private readonly limits: AssemblyLimits,
    private readonly onTimeout: (error: ProtocolError) => void,
  ) {}

  add(data: string, from: string): ChunkResult {
    const m = CHUNK_RE.exec(data)
    if (!m) return { error: new ProtocolError('ERR_PROTOCOL', DEV ? `received a malformed chunk from '${from}'` : 'bad chunk') }
    const id = m[1]!
    // Keyed by sender and id: ids are visible to the whole channel, so another peer's chunk must not claim this one.
    const key = `${from}\0${id}`
    const index = Number(m[2])
    const count = Number(m[3])
    const length = Number(m[4])
    const piece = data.slice(m[0].length)
    if (this.finished.has(key)) return { ignored: true }
    if (length > this.limits.maxMessageBytes) {
      this.finish(key)
      return {
        error: new ProtocolError('ERR_PROTOCOL', DEV ? `dropped message ${id} from '${from}': ${length} bytes exceeds maxMessageBytes (${this.limits.maxMessageBytes})` : 'over maxMessageBytes'),
      }
    }
    // Every piece but an empty message's one carries at least one unit, so a message has at most `length` pieces.
    if (count < 1 || index >= count || count > Math.max(1, length) || piece.length > length) {
      return { error: new ProtocolError('ERR_PROTOCOL', DEV ? `received an inconsistent chunk ${index}/${count} of message ${id} (${length} units) from '${from}'` : 'bad chunk') }
    }
    let p = this.partial.get(key)
    if (p && (p.count !== count || p.length !== length)) {
      return { error: new ProtocolError('ERR_PROTOCOL', DEV ? `received a chunk of message ${id} from '${from}' that disagrees with its earlier chunks` : 'bad chunk') }
    }
    if (p?.parts.has(index)) {
      p.last = now()
      return { ignored: true } // repeated (or the same chunk over another server)
    }
    const cost = PIECE_COST + (p ? 0 : PARTIAL_COST) + data.length * (TWO_BYTE.test(data) ? 2 : 1)
    if (this.pending + cost > this.limits.maxPendingBytes || (p && p.size + piece.length > length)) {
      if (p) this.drop(key, p)
      else this.finish(key)
      return {
        error: new ProtocolError(
          'ERR_PROTOCOL',
          DEV ? `dropped message ${id} from '${from}': partial messages would hold more than maxPendingBytes (${this.limits.maxPendingBytes})` : 'over maxPendingBytes',
        ),
      }
    }
    if (!p) {
      p = { parts: new Map(), count, length, size: 0, cost: 0, from, last: 0 }
      this.partial.set(key, p)
      this.timer ??= setInterval(() => this.sweep(), Math.max(10, this.limits.timeout / 2))
    }
    p.last = now()
    p.parts.set(index, piece)
    p.size += piece.length
    p.cost += cost
    this.pending += cost
    if (p.parts.size < count) return { progress: { id, from, done: p.size, total: length } }
    this.drop(key, p)
    let text = ''
    for (let i = 0; i < count; i++) text += p.parts.get(i)!
    if (text.length !== length)
      return { error: new ProtocolError('ERR_PROTOCOL', DEV ? `reassembled message ${id} from '${from}' has ${text.length} units, not the ${length} announced` : 'bad chunk') }
    return { done: text, id }
  }

  private drop(key: string, p: Partial): void {
    this.pending -= p.cost
    this.partial.delete(key)
    this.finish(key)
    if (!this.partial.size) this.stop()
  }

  /** Remembers (boundedly) that a message (sender and id) needs no more chunks. */
  private finish(key: string): void {
    this.finished.add(key)
    if (this.finished.size > FINISHED) this.finished.delete(this.finished.values().next().value!)
  }

  /** Drops partial messages whose sender went quiet; each drop is reported. Monotonic time: clock steps change nothing. */
  sweep(at = now()): void {
    for (const [key, p] of this.partial) {
      if (at - p.last >= this.limits.timeout) {
        this.drop(key, p)
        const id = key.slice(key.indexOf('\0') + 1)
        this.onTimeout(
          new ProtocolError('ERR_TIMEOUT', DEV ? `dropped message ${id} from '${p.from}': no chunk for ${this.limits.timeout} ms (${p.parts.size} of ${p.count} chunks arrived)` : 'assembly timeout'),
        )
      }
    }
  }

  /** Memory held by partial messages, as charged against maxPendingBytes. */
  get pendingBytes(): number {
    return this.pending
  }

  stop(): void {
    clearInterval(this.timer)
    this.timer = undefined
  }

  clear(): void {
    this.partial.clear()
    this.pending = 0
    this.stop()
  }
}

const now = (): number => performance.now()

/** The chunks feature's options (in `sock-client`'s `SockClientOptions`). */
export interface ChunksOptions {
  /** Most bytes all partial (chunked) messages of a channel may hold at once (default 64 MiB). */
  maxPendingBytes?: number
  /** A chunked message with no new chunk for this long is dropped, with an error event (default 30 000 ms). */
  assemblyTimeout?: number
}

const DEFAULT_LIMITS = { maxPendingBytes: 64 << 20, timeout: 30_000 }
let lastLimits: AssemblyLimits | undefined
/** One reassembler per channel, made on its first chunk. */
const assemblers = /* @__PURE__ */ new WeakMap<Channel, Assembler>()

function assembler(ch: Channel): Assembler {
  let a = assemblers.get(ch)
  if (!a) {
    a = new Assembler(ch.host.k.limits as AssemblyLimits, (error) => ch.fail(ch.connections[0]!, error))
    assemblers.set(ch, a)
  }
  return a
}

/** Reads a chunk: progress while pieces arrive, the envelope once they all did. */
function read(ch: Channel, conn: Connection, f: { data: string; from: string }): void {
  const r = assembler(ch).add(f.data, f.from)
  if ('error' in r) return ch.fail(conn, r.error)
  if ('progress' in r) return ch.host.report(ch, conn, 'progress', { direction: 'receive', ...r.progress })
  if ('done' in r) ch.event(conn, f.from, TYPE_CHUNK, r.done)
}

/**
 * Sends an envelope in chunks, each after the previous one: a connection that drops mid-message queues one chunk,
 * not all. A tracked send (a request) that is abandoned (`track.done`) sends no further chunk.
 */
async function split(ch: Channel, id: string, text: string, onProgress?: (done: number, total: number) => void, track?: Tracker) {
  const max = ch.host.k.maxFrameBytes
  const pieces = splitChunks(id, text, max)
  const total = text.length
  let done = 0
  let report!: Awaited<ReturnType<Channel['send']>>
  for (let i = 0; i < pieces.length; i++) {
    if (track?.done) break
    report = await ch.send(encodeFrame(TYPE_CHUNK, chunkData(id, i, pieces.length, total, pieces[i]!), max), track)
    done += pieces[i]!.length
    ch.host.callback(onProgress, 'onProgress', ch.name, done, total)
    ch.host.report(ch, ch.connections[0]!, 'progress', { direction: 'send', id, from: ch.id ?? '', done, total })
  }
  return report
}

/** The chunks feature: `new SockClient({ features: [chunks] })` (`sock-client` has it). */
export const chunks: Feature = {
  name: 'chunks',
  read: { [TYPE_CHUNK]: read },
  split,
  init(o: ChunksOptions, k: { maxMessageBytes: number; limits?: AssemblyLimits }) {
    const limits = {
      maxMessageBytes: k.maxMessageBytes,
      maxPendingBytes: positive(o.maxPendingBytes, 'options.maxPendingBytes', DEFAULT_LIMITS.maxPendingBytes) || DEFAULT_LIMITS.maxPendingBytes,
      timeout: positive(o.assemblyTimeout, 'options.assemblyTimeout', DEFAULT_LIMITS.timeout) || DEFAULT_LIMITS.timeout,
    }
    const l = lastLimits
    k.limits = l && l.maxMessageBytes === limits.maxMessageBytes && l.maxPendingBytes === limits.maxPendingBytes && l.timeout === limits.timeout ? l : (lastLimits = limits)
  },
  // A channel closed for good drops what it was reassembling (and its sweep timer).
  watch(ch, _conn, state) {
    if (state === 'closed' && ch.connections.every((c) => c.state === 'closed')) assemblers.get(ch)?.clear()
  },
}

/** Bytes held by a channel's partial messages, as charged against maxPendingBytes (for tests). @internal */
export const pendingBytes = (ch: Channel | undefined): number => (ch ? (assemblers.get(ch)?.pendingBytes ?? 0) : 0)
