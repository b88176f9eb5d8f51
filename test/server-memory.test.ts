// The embedded server's memory under clients that stop reading: one budget per connection, in real bytes, proven
// from the heap of a server in a child process (--expose-gc), not from timings.
import { fork, type ChildProcess } from 'node:child_process'
import { connect, type Socket } from 'node:net'
import { fileURLToPath } from 'node:url'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { closeAll, rawPeer, sleep, startServer, waitFor } from './helpers'
import { clientFrame, rawWebSocket } from './raw-http'

afterEach(closeAll)

const children: ChildProcess[] = []
afterAll(() => {
  for (const c of children) c.kill('SIGKILL')
})

/** A server in a child process run with --expose-gc (test/fixtures/heap-node.mjs): its heap growth on demand. */
async function heapServer(options: object = {}): Promise<{ port: number; heap(): Promise<{ heap: number; connections: number; counted: number }> }> {
  const child = fork(fileURLToPath(new URL('./fixtures/heap-node.mjs', import.meta.url)), [JSON.stringify(options)], { execArgv: ['--expose-gc'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  children.push(child)
  const next = () =>
    new Promise<any>((resolve, reject) => {
      child.once('message', resolve)
      child.once('exit', (code) => reject(new Error(`heap server exited (${code})`)))
    })
  const { port } = await next()
  return { port, heap: () => (child.send('heap'), next()) }
}

/** Writes `frame` as fast as the socket takes it for `ms`, or until the server closes it; the socket reads nothing. */
async function flood(sock: Socket, frame: Buffer, ms: number): Promise<number> {
  const burst = Buffer.concat(Array(1000).fill(frame))
  const end = performance.now() + ms
  let sent = 0
  while (performance.now() < end && !sock.destroyed) {
    if (!sock.write(burst))
      await new Promise((r) => setTimeout(r, 20)) // the server may have stopped reading
    else await new Promise((r) => setImmediate(r))
    sent += 1000
  }
  return sent
}

/** Resumes reading `sock` and resolves with the code of the first close frame the server sent (after its backlog). */
function closeCode(sock: Socket, timeout = 10_000): Promise<number | undefined> {
  return new Promise((resolve) => {
    let buf: Buffer = Buffer.alloc(0)
    const t = setTimeout(() => resolve(undefined), timeout)
    sock.on('data', (d: Buffer) => {
      buf = buf.length ? Buffer.concat([buf, d]) : d
      let at = 0
      for (;;) {
        if (buf.length - at < 2) break
        const op = buf[at]! & 0x0f
        let len = buf[at + 1]! & 0x7f
        let off = 2
        if (len === 126) {
          if (buf.length - at < 4) break
          len = buf.readUInt16BE(at + 2)
          off = 4
        } else if (len === 127) {
          if (buf.length - at < 10) break
          len = Number(buf.readBigUInt64BE(at + 2))
          off = 10
        }
        if (buf.length - at < off + len) break
        if (op === 8) {
          clearTimeout(t)
          return resolve(len >= 2 ? buf.readUInt16BE(at + off) : 1005)
        }
        at += off + len
      }
      buf = buf.subarray(at)
    })
    sock.resume()
  })
}

const MiB = 1 << 20
const BUDGET = 8 * MiB // the default maxBuffered

describe('server: one bounded per-connection budget in real bytes (heap measured in a child process)', () => {
  it.each([
    ['who-am-I frames ({})', '{}'],
    ['invalid frames', 'x'],
  ])('closes a client that sends %s without reading the replies with 1013, its queue bounded by maxBuffered', async (_name, payload) => {
    const s = await heapServer()
    const sock = await rawWebSocket(s.port, '/channel/flood?id=f')
    sock.pause()
    sock.on('error', () => {})
    const sent = await flood(sock, clientFrame(payload), payload === '{}' ? 3000 : 1000)
    const { heap } = await s.heap()
    // Before: +610 MiB after 3 s of {} (2.5 million replies queued), and no 1013.
    console.log(`${payload}: ${sent} frames sent, server heap +${(heap / MiB).toFixed(1)} MiB`)
    expect(heap).toBeLessThan(BUDGET * 1.5)
    expect(await closeCode(sock)).toBe(1013)
    sock.destroy()
  })

  it('closes a slow consumer of tiny relayed frames with 1013 once it holds maxBuffered real bytes (not 5x that)', async () => {
    const s = await heapServer()
    const slow = await rawWebSocket(s.port, '/channel/relay?id=slow')
    slow.pause()
    slow.on('error', () => {})
    const sender = await rawWebSocket(s.port, '/channel/relay?id=sender')
    sender.on('data', () => {})
    // 3 s, as for who-am-I: on a busy machine 1 s sent 213,000 frames, which the socket buffers on loopback absorbed
    // before the server's own queue reached maxBuffered.
    const sent = await flood(sender, clientFrame('{"type":1,"data":""}'), 3000)
    const { heap } = await s.heap()
    console.log(`relay: ${sent} frames sent, server heap +${(heap / MiB).toFixed(1)} MiB`)
    expect(heap).toBeLessThan(BUDGET * 1.5)
    expect(await closeCode(slow)).toBe(1013)
    slow.destroy()
    sender.destroy()
  })

  it.each([
    ['replies to a client that does not read them', 'reply'],
    ['frames relayed to a receiver that does not read them', 'relay'],
  ])('charges what it really holds (within 10%%) for %s', async (_name, kind) => {
    const s = await heapServer({ maxBuffered: 256 * MiB }) // room to hold a lot: what is counted is compared to the heap
    const stuck = await rawWebSocket(s.port, `/channel/real?id=stuck`)
    stuck.pause()
    stuck.on('error', () => {})
    let sender = stuck
    if (kind === 'relay') {
      sender = await rawWebSocket(s.port, '/channel/real?id=sender')
      sender.on('data', () => {})
    }
    // Until the server holds enough to compare (a busy machine floods slower): 500 ms at a time, 8 s at most.
    const frame = clientFrame(kind === 'reply' ? '{}' : '{"type":1,"data":""}')
    for (let i = 0; i < 16 && (await s.heap()).counted < 12 * MiB; i++) await flood(sender, frame, 500)
    await sleep(200)
    const { heap, counted } = await s.heap()
    // Before: the limit counted payload bytes only, 5 to 7 times less than the heap held for these small frames.
    console.log(`${kind}: server heap +${(heap / MiB).toFixed(1)} MiB, charged ${(counted / MiB).toFixed(1)} MiB`)
    expect(counted).toBeGreaterThan(8 * MiB)
    expect(heap).toBeLessThan(counted * 1.1 + 2 * MiB)
    stuck.destroy()
    sender.destroy()
  })

  it('delivers everything, in order and in its opcode, to a receiver that paused and catches up (frames queued behind it)', async () => {
    const s = await startServer({ limit: 200_000, maxBuffered: 128 * MiB })
    const rx = await rawPeer(`${s.url}/channel/catchup?id=rx`)
    const tx = await rawPeer(`${s.url}/channel/catchup?id=tx`)
    const bin = await rawPeer(`${s.url}/channel/catchup?id=bin`, { binary: true })
    const kinds: boolean[] = []
    rx.ws.on('message', (_d, isBinary) => kinds.push(isBinary))
    rx.ws.pause()
    const sent: string[] = []
    const sizes = [0, 1, 90, 125, 126, 1000, 65_535, 65_536, 100_000]
    for (let i = 0; i < 1200; i++) {
      const data = `${i}:${'x'.repeat(sizes[i % sizes.length]!)}`
      sent.push(data)
      ;(i % 7 === 3 ? bin : tx).send({ type: 1, data })
    }
    await sleep(300) // everything is at the server, most of it queued behind rx
    rx.ws.resume()
    await waitFor(() => rx.frames.length === sent.length, 15_000, 'every frame at rx')
    // Per sender, in the order sent; binary frames stay binary.
    expect(rx.frames.filter((f) => f.from === 'tx').map((f) => f.data)).toEqual(sent.filter((_, i) => i % 7 !== 3))
    expect(rx.frames.filter((f) => f.from === 'bin').map((f) => f.data)).toEqual(sent.filter((_, i) => i % 7 === 3))
    expect(kinds.filter((k, i) => k !== (rx.frames[i].from === 'bin'))).toEqual([])
  })

  it('holds pipelined REST requests whose answers are not read to a bounded heap', async () => {
    const s = await heapServer()
    const sock = connect(s.port, '127.0.0.1')
    sock.pause()
    sock.on('error', () => {})
    await new Promise((r) => sock.once('connect', r))
    const sent = await flood(sock, Buffer.from('GET /api/channel/nobody HTTP/1.1\r\nHost: x\r\n\r\n'), 1000)
    const { heap } = await s.heap()
    console.log(`REST: ${sent} requests sent, server heap +${(heap / MiB).toFixed(1)} MiB`)
    expect(heap).toBeLessThan(BUDGET)
    sock.destroy()
  })
})
