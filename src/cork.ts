/**
 * Write batching for Node sockets (`ws` keeps its TCP socket in `_socket`; a browser's WebSocket has none and is
 * left alone). The first frame written to a socket in a tick leaves at once, as before; the frames after it in the
 * same tick cork the socket, and one microtask uncorks every corked socket: a burst goes out in one `writev`
 * instead of one system call per frame, and no frame waits longer than the code that wrote it. Browser-safe.
 */
const TICK = Symbol('sock-client tick')

interface Stream {
  cork(): void
  uncork(): void
  writableCorked?: number
  [TICK]?: number
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

/** Call just before writing a frame to `ws`. */
export function batch(ws: object): void {
  const s = (ws as { _socket?: Stream | null })._socket
  if (typeof s?.cork !== 'function') return // no socket (a browser), or one that cannot cork (Bun's ws)
  if (s[TICK] !== tick) {
    s[TICK] = tick
    if (!scheduled) {
      scheduled = true
      queueMicrotask(endTick)
    }
  } else if (!s.writableCorked) {
    s.cork()
    corked.push(s)
  }
}
