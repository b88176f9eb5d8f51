// The clients under test (bench/run.mjs names them and picks their server), behind one small interface, each
// used the way its README shows:
//   connect(base, onText, { queue? }) -> Promise<{ send(text), close() }>   resolves once the client can send and
//                                                                 receive; `queue`: sock-client's send queue
//   reconnecting(base, policy, on) -> { close() }               calls on.open() at every (re)open, on.retry(info)
// `base` is ws://127.0.0.1:<port>; Sock clients use channel `bench`. Every payload is a string `text`; the
// receiver hands the same string to `onText`.
import WebSocket from 'ws'
import RWSImport from 'reconnecting-websocket'
import PartySocket from 'partysocket/ws'
import { io } from 'socket.io-client'
import { SockClient } from '../dist/index.js'
import { deadline } from './lib.mjs'

const RWS = RWSImport.default ?? RWSImport
const CHANNEL = 'bench'
const OPEN_TIMEOUT = 10_000
const channelUrl = (base) => `${base}/channel/${CHANNEL}`
const plainFrame = (text) => '{"type":1,"data":' + JSON.stringify(text) + '}'

/** Full jitter, as sock-client's backoff: retry n waits random in [0, min(maxDelay, minDelay * factor^(n-1))]. */
export const jitterCap = (attempt, p) => Math.min(p.maxDelay, p.minDelay * p.factor ** (attempt - 1))

function opened(target, event, what) {
  return deadline(new Promise((resolve) => target.addEventListener(event, resolve, { once: true })), OPEN_TIMEOUT, what)
}

/** Raw ws: the floor. Plain Sock frames, JSON.parse on receive, no wrapper; its reconnect loop is a few lines. */
const ws = {
  id: 'ws',
  async connect(base, onText) {
    const sock = new WebSocket(channelUrl(base))
    sock.on('error', () => {})
    sock.on('message', (d) => {
      const f = JSON.parse(d.toString())
      if (f.type === 1) onText(f.data)
    })
    await deadline(
      new Promise((resolve, reject) => {
        sock.once('open', resolve)
        sock.once('close', () => reject(new Error('ws closed before open')))
      }),
      OPEN_TIMEOUT,
      'ws open',
    )
    return { sock, send: (text) => sock.send(plainFrame(text)), close: () => sock.terminate() }
  },
  reconnecting(base, p, on) {
    let attempt = 0
    let closed = false
    let sock
    let timer
    const connect = () => {
      sock = new WebSocket(channelUrl(base))
      sock.on('error', () => {})
      sock.on('open', () => {
        attempt = 0
        on.open()
      })
      sock.on('close', () => {
        if (closed) return
        const cap = jitterCap(++attempt, p)
        const delay = Math.round(Math.random() * cap)
        on.retry({ attempt, cap, delay })
        timer = setTimeout(connect, delay)
      })
    }
    connect()
    return {
      close() {
        closed = true
        clearTimeout(timer)
        sock.terminate()
      },
    }
  },
}

/**
 * Raw ws sending what sock-client's events put on the wire, by hand: a type-7 frame whose data is the envelope
 * `{"i":id,"e":"evt","d":{"t":text}}` (a base-36 counter for the id), read back with two JSON.parse. The baseline
 * for sock-client's event rows: the same bytes and the same two encodings, without a library around them.
 */
const wsEvent = {
  id: 'ws-event',
  async connect(base, onText) {
    const r = await ws.connect(base, () => {})
    const sock = r.sock
    let seq = 0
    sock.removeAllListeners('message')
    sock.on('message', (d) => {
      const f = JSON.parse(d.toString())
      if (f.type !== 7) return
      const env = JSON.parse(f.data)
      if (env.e === 'evt') onText(env.d.t)
    })
    const prefix = Math.random().toString(36).slice(2, 10)
    return {
      send: (text) => sock.send(`{"type":7,"data":${JSON.stringify(`{"i":"${prefix}${(++seq).toString(36)}","e":"evt","d":${JSON.stringify({ t: text })}}`)}}`),
      close: r.close,
    }
  },
}

function sockClient(id, encode) {
  const plain = encode === 'message'
  return {
    id,
    async connect(base, onText, options = {}) {
      const client = new SockClient(options.queue ? { queue: options.queue } : {})
      client.setup(base)
      if (plain) client.on(CHANNEL, 'message', (text) => onText(text))
      else client.on(CHANNEL, 'evt', (d) => onText(d.t))
      await deadline(client.join(CHANNEL), OPEN_TIMEOUT, 'sock-client join')
      return {
        send: plain ? (text) => client.signal(CHANNEL, 'message', text) : (text) => client.signal(CHANNEL, 'evt', { t: text }),
        close: () => client.close(),
      }
    },
    reconnecting(base, p, on) {
      const client = new SockClient({ reconnect: { minDelay: p.minDelay, maxDelay: p.maxDelay, factor: p.factor, minUptime: p.minUptime } })
      client.setup(base)
      client.on('socket', 'open', () => on.open())
      client.on('socket', 'reconnect', (info) => on.retry({ attempt: info.attempt, delay: info.delay, cap: jitterCap(info.attempt, p) }))
      client.join(CHANNEL).catch(() => {})
      return { close: () => client.close() }
    },
  }
}

/** reconnecting-websocket 4.4.0 and partysocket (its maintained fork) over ws, on the same Sock frames. */
function rwsLike(id, Impl) {
  const listen = (rws, onText) =>
    rws.addEventListener('message', (e) => {
      const f = JSON.parse(e.data)
      if (f.type === 1) onText(f.data)
    })
  return {
    id,
    async connect(base, onText) {
      const rws = new Impl(channelUrl(base), [], { WebSocket })
      listen(rws, onText)
      await opened(rws, 'open', `${id} open`)
      return { send: (text) => rws.send(plainFrame(text)), close: () => rws.close() }
    },
    reconnecting(base, p, on) {
      // No jitter in either: retry n waits exactly min(max, min * factor^(n-1)).
      const rws = new Impl(channelUrl(base), [], { WebSocket, minReconnectionDelay: p.minDelay, maxReconnectionDelay: p.maxDelay, reconnectionDelayGrowFactor: p.factor, minUptime: p.minUptime })
      let attempt = 0
      rws.addEventListener('open', () => {
        attempt = 0
        on.open()
      })
      rws.addEventListener('close', () => on.retry({ attempt: ++attempt, cap: jitterCap(attempt, p) }))
      return { close: () => rws.close() }
    },
  }
}

/** socket.io-client over its websocket transport, against a socket.io server that relays 'message'. */
const socketio = {
  id: 'socket.io',
  async connect(base, onText) {
    const s = io(base.replace(/^ws/, 'http'), { transports: ['websocket'], forceNew: true, reconnection: false })
    s.on('message', onText)
    await deadline(
      new Promise((resolve, reject) => {
        s.once('connect', resolve)
        s.once('connect_error', reject)
      }),
      OPEN_TIMEOUT,
      'socket.io connect',
    )
    return { send: (text) => s.emit('message', text), close: () => s.disconnect() }
  },
  reconnecting(base, p, on) {
    // socket.io's own jitter: delay n = min(max, min * factor^(n-1)) * (1 +/- 0.5 * random).
    const s = io(base.replace(/^ws/, 'http'), { transports: ['websocket'], forceNew: true, reconnectionDelay: p.minDelay, reconnectionDelayMax: p.maxDelay })
    s.on('connect', () => on.open())
    s.io.on('reconnect_attempt', (attempt) => on.retry({ attempt, cap: Math.min(p.maxDelay, 1.5 * p.minDelay * p.factor ** (attempt - 1)) }))
    return { close: () => s.disconnect() }
  },
}

export const CLIENTS = [ws, wsEvent, sockClient('sock-message', 'message'), sockClient('sock-event', 'event'), rwsLike('rws', RWS), rwsLike('partysocket', PartySocket), socketio]

export const byId = (id) => {
  const c = CLIENTS.find((x) => x.id === id)
  if (!c) throw new Error(`unknown client ${id}: use one of ${CLIENTS.map((x) => x.id).join(', ')}`)
  return c
}
