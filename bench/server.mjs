// A benchmark server in its own process: `node bench/server.mjs sock|socketio [port]`.
// sock: the embedded Sock server of this package (dist/server.js), default options (frame limit 1024 bytes).
// socketio: a socket.io server that relays each 'message' to every other socket, as the Sock server relays a frame.
// relay: a plain Sock relay on ws that is not ours and writes every frame separately (the unpaced scenario).
// sock64k: the embedded Sock server with a 64 KiB frame limit. socketio-rpc: a socket.io server that relays each
// 'echo' of a requester to the responder with emitWithAck and passes the reply back (bench/replies.mjs).
// Asked { type: 'cpu' } or { type: 'mem' }, it reports its CPU time so far (µs) or its heap + external and RSS.
// Reports { type: 'listening', port, at } (at: wall-clock ms) to the parent over IPC.
import { createServer } from 'node:http'
import { childSetup, wallNow } from './lib.mjs'

const { report } = childSetup()
// Under `node --cpu-prof` (run.mjs --profile) the orchestrator ends a server with SIGTERM: exit normally so the
// profile is written.
process.on('SIGTERM', () => process.exit(0))
const kind = process.argv[2]
const port = Number(process.argv[3] ?? 0)
process.on('message', (m) => {
  if (m?.type === 'cpu') {
    const u = process.cpuUsage()
    report({ type: 'cpu', us: u.user + u.system })
  } else if (m?.type === 'mem') {
    globalThis.gc?.() // under --expose-gc: what is retained, not what awaits collection
    const u = process.memoryUsage()
    report({ type: 'mem', heap: u.heapUsed + u.external, rss: u.rss })
  }
})

if (kind === 'sock' || kind === 'sock64k') {
  const { createSockServer } = await import('../dist/server.js')
  const server = await createSockServer({ port, host: '127.0.0.1', ...(kind === 'sock64k' ? { limit: 65536 } : {}) })
  report({ type: 'listening', port: server.port, at: wallNow() })
} else if (kind === 'socketio-rpc') {
  const { Server } = await import('socket.io')
  const http = createServer()
  const io = new Server(http, { serveClient: false, perMessageDeflate: false, transports: ['websocket'] })
  let responder
  io.on('connection', (socket) => {
    if (socket.handshake.auth?.role === 'responder') responder = socket
    // The server side needs its own timeout (socket.io #5333, #4559).
    socket.on('echo', async (d, cb) => {
      try {
        cb(await responder.timeout(5000).emitWithAck('echo', d))
      } catch (e) {
        cb({ error: String(e?.message ?? e) })
      }
    })
  })
  http.listen(port, '127.0.0.1', () => report({ type: 'listening', port: http.address().port, at: wallNow() }))
} else if (kind === 'socketio') {
  const { Server } = await import('socket.io')
  const http = createServer()
  const io = new Server(http, { serveClient: false, perMessageDeflate: false, transports: ['websocket', 'polling'] })
  io.on('connection', (socket) => {
    socket.on('message', (data) => socket.broadcast.emit('message', data))
  })
  http.listen(port, '127.0.0.1', () => report({ type: 'listening', port: http.address().port, at: wallNow() }))
} else if (kind === 'relay') {
  // A Sock relay that is not ours, as a reference-style server behaves: every frame written with its own send,
  // no batching; who-am-I answered, pings ignored, anything else relayed to every other instance with `from`.
  const { WebSocketServer } = await import('ws')
  const wss = new WebSocketServer({ host: '127.0.0.1', port, perMessageDeflate: false })
  let next = 0
  wss.on('connection', (ws) => {
    const id = `r${++next}`
    ws.on('error', () => {})
    ws.on('message', (raw) => {
      let f
      try {
        f = JSON.parse(raw.toString())
      } catch {
        return
      }
      const type = f.type ?? 0
      if (type < 0) return
      if (type === 0) return ws.send(`{"type":0,"data":"${id}","from":"${id}"}`)
      const out = `{"type":${type},"data":${JSON.stringify(f.data)},"from":"${id}"}`
      for (const peer of wss.clients) if (peer !== ws && peer.readyState === 1) peer.send(out)
    })
  })
  wss.on('listening', () => report({ type: 'listening', port: wss.address().port, at: wallNow() }))
} else {
  throw new Error(`unknown server kind ${kind}: use sock, socketio or relay`)
}
