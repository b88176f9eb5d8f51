// A benchmark server in its own process: `node bench/server.mjs sock|socketio [port]`.
// sock: the embedded Sock server of this package (dist/server.js), default options (frame limit 1024 bytes).
// socketio: a socket.io server that relays each 'message' to every other socket, as the Sock server relays a frame.
// Reports { type: 'listening', port, at } (at: wall-clock ms) to the parent over IPC.
import { createServer } from 'node:http'
import { childSetup, wallNow } from './lib.mjs'

const { report } = childSetup()
// Under `node --cpu-prof` (run.mjs --profile) the orchestrator ends a server with SIGTERM: exit normally so the
// profile is written.
process.on('SIGTERM', () => process.exit(0))
const kind = process.argv[2]
const port = Number(process.argv[3] ?? 0)

if (kind === 'sock') {
  const { createSockServer } = await import('../dist/server.js')
  const server = await createSockServer({ port, host: '127.0.0.1' })
  report({ type: 'listening', port: server.port, at: wallNow() })
} else if (kind === 'socketio') {
  const { Server } = await import('socket.io')
  const http = createServer()
  const io = new Server(http, { serveClient: false, perMessageDeflate: false, transports: ['websocket', 'polling'] })
  io.on('connection', (socket) => {
    socket.on('message', (data) => socket.broadcast.emit('message', data))
  })
  http.listen(port, '127.0.0.1', () => report({ type: 'listening', port: http.address().port, at: wallNow() }))
} else {
  throw new Error(`unknown server kind ${kind}: use sock or socketio`)
}
