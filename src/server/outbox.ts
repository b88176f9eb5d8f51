/**
 * One budget per connection, in real bytes, for everything the server queues to it: frames relayed to it and
 * replies to its own frames (who-am-I, `Invalid json format`).
 *
 * `ws.bufferedAmount` counts payload bytes only, but every frame queued through `ws.send()` also holds a header
 * Buffer, two write requests in the socket's queue and their bookkeeping: measured on Node 20 at about 370 bytes
 * per frame (heap plus external memory of a server process under `--expose-gc`, for a receiver that reads nothing),
 * so a flood of 30-byte frames held 6 to 7 times what the old limit counted. So:
 *
 * - While the socket keeps up, a frame goes through `ws.send()` as before, charged its payload plus FRAME_OVERHEAD.
 * - Once the socket's own queue is full (`writableNeedDrain`), frames are appended, already framed, to 16 KiB
 *   chunks that go to the socket on `drain`: a frame queued behind a slow reader then costs its bytes and nothing
 *   else, so the budget bounds what is held, and a burst of small frames is not charged many times its size.
 * - Payloads are Buffers of their exact size (`encode`): a string would be held twice while the socket writes it
 *   (the string and its UTF-8 copy), and a slice of Node's 8 KiB Buffer pool keeps the whole slab alive.
 *
 * A frame that would take the connection past its budget calls `over()` instead (the server closes it with 1013).
 */
import type { Socket } from 'node:net'
import { WebSocket } from 'ws'
import { batch } from '../cork'

/** Bytes charged per frame queued through `ws.send()` beyond its payload: the measured ~370, with a margin. */
export const FRAME_OVERHEAD = 512

const CHUNK = 16 * 1024
const TEXT = { binary: false }
const BINARY = { binary: true }

/** `text` as UTF-8 in a Buffer of its own (not a slice of the shared pool, which would keep 8 KiB alive). */
export function encode(text: string): Buffer {
  const b = Buffer.allocUnsafeSlow(Buffer.byteLength(text))
  b.write(text)
  return b
}

export class Outbox {
  /** Frames handed to `ws.send()` whose write has not completed yet. */
  private queued = 0
  private readonly written = () => void this.queued--
  /** Frames waiting for `drain`, back to back as they go on the wire; chunk `i` is filled up to `lengths[i]`. */
  private chunks: Buffer[] = []
  private lengths: number[] = []
  private capacity = 0
  private waiting = false

  constructor(
    private readonly ws: WebSocket,
    private readonly budget: number,
    private readonly over: () => void,
  ) {}

  /** What this connection holds now, in bytes. */
  get bytes(): number {
    return this.ws.bufferedAmount + this.queued * FRAME_OVERHEAD + this.capacity
  }

  /** Queues one frame, or calls `over()` if it does not fit the budget (once: a socket that is not open takes nothing). */
  send(payload: Buffer, binary: boolean): void {
    const ws = this.ws
    if (ws.readyState !== WebSocket.OPEN) return
    const socket = (ws as unknown as { _socket?: Socket | null })._socket
    const behind = !!socket && (this.chunks.length > 0 || socket.writableNeedDrain)
    const len = payload.length
    const need = (len < 126 ? 2 : len < 65536 ? 4 : 10) + len
    const last = this.chunks.length - 1
    const fits = last >= 0 && this.chunks[last]!.length - this.lengths[last]! >= need
    const cost = !behind ? len + FRAME_OVERHEAD : fits ? 0 : Math.max(CHUNK, need)
    if (this.bytes + cost > this.budget) return this.over()
    if (!behind) {
      this.queued++
      batch(ws, len)
      ws.send(payload, binary ? BINARY : TEXT, this.written)
      return
    }
    if (!fits) {
      this.chunks.push(Buffer.allocUnsafeSlow(Math.max(CHUNK, need)))
      this.lengths.push(0)
      this.capacity += Math.max(CHUNK, need)
    }
    const i = this.chunks.length - 1
    const c = this.chunks[i]!
    let at = this.lengths[i]!
    c[at++] = binary ? 0x82 : 0x81 // FIN and the opcode: one complete message (server frames are not masked)
    if (len < 126) c[at++] = len
    else if (len < 65536) {
      c[at++] = 126
      at = c.writeUInt16BE(len, at)
    } else {
      c[at++] = 127
      at = c.writeBigUInt64BE(BigInt(len), at)
    }
    this.lengths[i] = at + payload.copy(c, at)
    if (!this.waiting) {
      this.waiting = true
      socket!.once('drain', this.flush)
    }
  }

  /** The socket drained: hand it everything waiting (the last chunk copied down to what it holds). */
  private readonly flush = () => {
    this.waiting = false
    const { chunks, lengths } = this
    this.drop()
    const socket = (this.ws as unknown as { _socket?: Socket | null })._socket
    if (!socket || socket.destroyed || this.ws.readyState !== WebSocket.OPEN) return
    for (let i = 0; i < chunks.length; i++) {
      const c = chunks[i]!
      const n = lengths[i]!
      if (n === c.length) socket.write(c)
      else if (i < chunks.length - 1) socket.write(c.subarray(0, n))
      else {
        const exact = Buffer.allocUnsafeSlow(n) // the last chunk is mostly empty: do not keep all of it
        c.copy(exact, 0, 0, n)
        socket.write(exact)
      }
    }
  }

  /** Before a close frame: frames still waiting go first (a close frame is the last thing on the wire). */
  end(): void {
    if (this.chunks.length) this.flush()
  }

  /** Drops what is waiting (the connection is being closed for taking too much). */
  drop(): void {
    this.chunks = []
    this.lengths = []
    this.capacity = 0
  }
}
