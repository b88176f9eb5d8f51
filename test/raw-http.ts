// Raw TCP helpers for server tests: requests no HTTP client library would send, byte for byte.
import { randomBytes } from 'node:crypto'
import { connect, createServer, type Server, type Socket } from 'node:net'

export interface RawAnswer {
  /** Everything the server sent before it closed (or before `timeout`). */
  text: string
  /** The status code of the first status line, if the answer starts with one. */
  status?: number
  /** Lower-cased header names of the first response head. */
  headers: Record<string, string>
  /** The server closed the connection (FIN or RST) before `timeout`. */
  closed: boolean
}

const STATUS_LINE = /^HTTP\/1\.1 ([1-5]\d\d) [^\r\n]*\r\n/

/**
 * Sends `bytes` on a fresh loopback connection and collects the answer: until the server closes, until the first
 * response head is complete (`untilHead`, for keep-alive answers), until `until(text)` holds, or `timeout` ms.
 */
export function rawRequest(port: number, bytes: string | Buffer, opts: { timeout?: number; untilHead?: boolean; until?: (text: string) => boolean } = {}): Promise<RawAnswer> {
  const timeout = opts.timeout ?? 3000
  return new Promise((resolve) => {
    const sock = connect(port, '127.0.0.1')
    let buf = Buffer.alloc(0)
    let done = false
    const finish = (closed: boolean) => {
      if (done) return
      done = true
      clearTimeout(timer)
      sock.destroy()
      const text = buf.toString('latin1')
      const m = STATUS_LINE.exec(text)
      const headers: Record<string, string> = {}
      const head = text.split('\r\n\r\n')[0]!
      for (const line of head.split('\r\n').slice(1)) {
        const i = line.indexOf(':')
        if (i > 0) headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim()
      }
      resolve({ text, status: m ? Number(m[1]) : undefined, headers, closed })
    }
    const timer = setTimeout(() => finish(false), timeout)
    sock.on('error', () => finish(true))
    sock.on('close', () => finish(true))
    sock.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d])
      if ((opts.untilHead && buf.includes('\r\n\r\n')) || opts.until?.(buf.toString('latin1'))) finish(false)
    })
    sock.on('connect', () => sock.write(bytes))
  })
}

/** A WebSocket upgrade request head for `target`, with `extra` header lines (each `Name: value`). */
export function upgradeRequest(target: string, extra: string[] = [], method = 'GET'): string {
  const lines = [
    `${method} ${target} HTTP/1.1`,
    'Host: 127.0.0.1',
    'Upgrade: websocket',
    'Connection: Upgrade',
    `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}`,
    'Sec-WebSocket-Version: 13',
  ]
  for (const e of extra) {
    const name = e.slice(0, e.indexOf(':')).toLowerCase()
    const i = lines.findIndex((l) => l.toLowerCase().startsWith(`${name}:`))
    if (i >= 0) lines.splice(i, 1)
    if (e.slice(e.indexOf(':') + 1).trim() !== '-') lines.push(e) // `Name: -` removes a default header
  }
  return `${lines.join('\r\n')}\r\n\r\n`
}

/** One masked client frame (text unless `opcode` says otherwise). */
export function clientFrame(payload: string | Buffer, opcode = 1): Buffer {
  const data = typeof payload === 'string' ? Buffer.from(payload) : payload
  const mask = randomBytes(4)
  const len = data.length
  const head = len < 126 ? Buffer.from([0x80 | opcode, 0x80 | len]) : len < 65536 ? Buffer.from([0x80 | opcode, 0x80 | 126, len >> 8, len & 255]) : undefined
  if (!head) throw new Error('clientFrame: payload too large for this helper')
  const out = Buffer.alloc(len)
  for (let i = 0; i < len; i++) out[i] = data[i]! ^ mask[i & 3]!
  return Buffer.concat([head, mask, out])
}

/** Completes a WebSocket handshake over a raw socket and hands it back (nothing read after the 101 head). */
export function rawWebSocket(port: number, target: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const sock = connect(port, '127.0.0.1', () => sock.write(upgradeRequest(target)))
    let buf = Buffer.alloc(0)
    const onData = (d: Buffer) => {
      buf = Buffer.concat([buf, d])
      const end = buf.indexOf('\r\n\r\n')
      if (end < 0) return
      sock.off('data', onData)
      if (!buf.toString('latin1').startsWith('HTTP/1.1 101')) return reject(new Error(`handshake refused: ${buf.toString('latin1', 0, end)}`))
      const rest = buf.subarray(end + 4)
      if (rest.length) sock.unshift(rest)
      resolve(sock)
    }
    sock.on('data', onData)
    sock.once('error', reject)
  })
}

/**
 * A black-hole TCP proxy on loopback: forwards both ways to `port` until `dark()`, then silently swallows
 * everything in both directions: no FIN, no RST, both connections stay open, as after a network black hole.
 */
export async function blackHoleProxy(port: number): Promise<{ port: number; dark(): void; close(): Promise<void> }> {
  let isDark = false
  const pairs: Socket[] = []
  // allowHalfOpen: a FIN from one side is not answered by one from the proxy either.
  const server: Server = createServer({ allowHalfOpen: true }, (down) => {
    const up = connect({ port, host: '127.0.0.1', allowHalfOpen: true })
    pairs.push(down, up)
    for (const s of [down, up]) s.on('error', () => {})
    down.on('data', (d) => void (isDark || up.write(d)))
    up.on('data', (d) => void (isDark || down.write(d)))
    // Even the ends of the connections are swallowed once dark: a black hole forwards nothing.
    down.on('end', () => void (isDark || up.end()))
    up.on('end', () => void (isDark || down.end()))
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const a = server.address()
  return {
    port: typeof a === 'object' && a ? a.port : 0,
    dark: () => void (isDark = true),
    close: () =>
      new Promise<void>((r) => {
        for (const s of pairs) s.destroy()
        server.close(() => r())
      }),
  }
}
