/**
 * Write batching for Node sockets (`ws` keeps its TCP socket in `_socket`; a browser's WebSocket has none and is
 * left alone, and so is a socket without `cork`, as under Bun). The first frame written to a socket in a tick
 * leaves at once; the frames after it in the same tick cork the socket, and one microtask uncorks every corked
 * socket: a burst goes out in a few `writev` calls instead of one system call per frame. A batch is bounded: every
 * `BATCH` bytes it is flushed, so an unpaced burst (thousands of sends in one synchronous loop) streams while the
 * loop runs instead of leaving all at its end. Browser-safe.
 */
const TICK = /* @__PURE__ */ Symbol('sock-client tick')
const BYTES = /* @__PURE__ */ Symbol('sock-client batched')

/**
 * Bytes (UTF-16 units of the frames' text) a batch holds before it is flushed: Linux's default TCP send buffer
 * (`net.ipv4.tcp_wmem`, 16 KiB), so that a batch can leave in one synchronous `writev`. A larger one goes out
 * partly asynchronously, and Node then writes nothing more until the event loop turns: measured on loopback, a
 * 50,000-frame loop made 122 writes while it ran at 16 KiB a batch, and 2 at 32 KiB.
 */
export const BATCH = 16 * 1024

interface Stream {
  cork(): void
  uncork(): void
  writableCorked?: number
  [TICK]?: number
  [BYTES]?: number
}

let tick = 1
let scheduled = false
let corked: Stream[] = []

function endTick(): void {
  tick++
  scheduled = false
  const list = corked
  corked = []
  for (const s of list) s.uncork()
}

/** Call just before writing a frame of `size` to `ws`. */
export function batch(ws: object, size: number): void {
  const s = (ws as { _socket?: Stream | null })._socket
  if (typeof s?.cork !== 'function') return // no socket (a browser), or one that cannot cork (Bun's ws)
  if (s[TICK] !== tick) {
    s[TICK] = tick
    s[BYTES] = 0
    if (!scheduled) {
      scheduled = true
      queueMicrotask(endTick)
    }
  } else if (!s.writableCorked) {
    s.cork()
    corked.push(s)
    s[BYTES] = size
  } else if ((s[BYTES] = s[BYTES]! + size) >= BATCH) {
    // Flush what this batch holds now and go on corking: the frame about to be written starts the next batch.
    s.uncork()
    s.cork()
    s[BYTES] = size
  }
}
