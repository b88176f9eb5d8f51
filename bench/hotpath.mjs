#!/usr/bin/env node
// sock-client's own JavaScript cost per message, without network or server: a fake WebSocket that opens at once,
// answers who-am-I and drops what is sent; reconnecting-websocket alone (with JSON.parse / a plain frame) on the
// same fake is the baseline. For checking a hot-path edit (encodeFrame/decodeFrame, Connection.send/onMessage,
// SockClient.receive/emit) in seconds: `npm run build && node bench/hotpath.mjs`. Best of 5 runs, ns per message.
import { EventEmitter } from 'node:events'
import RWSImport from 'reconnecting-websocket'
import { SockClient } from '../dist/index.js'

const RWS = RWSImport.default ?? RWSImport
const sockets = []
class FakeSocket extends EventTarget {
  static CONNECTING = 0
  static OPEN = 1
  static CLOSING = 2
  static CLOSED = 3
  constructor(url) {
    super()
    this.url = url
    this.readyState = 0
    this.binaryType = 'blob'
    sockets.push(this)
    setTimeout(() => {
      this.readyState = 1
      this.dispatchEvent(new Event('open'))
    }, 1)
  }
  send(text) {
    if (text.startsWith('{"type":0')) setTimeout(() => this.deliver('{"type":0,"data":"me","from":"me"}'), 1)
  }
  deliver(data) {
    const e = new Event('message')
    e.data = data
    this.dispatchEvent(e)
  }
  close() {
    this.readyState = 3
  }
}

/** The same fake with ws's Node API (EventEmitter `on`, Buffer payloads), which sock-client uses when it finds it. */
class FakeNodeSocket extends EventEmitter {
  constructor(url) {
    super()
    this.url = url
    this.readyState = 0
    sockets.push(this)
    setTimeout(() => {
      this.readyState = 1
      this.emit('open')
    }, 1)
  }
  send(text) {
    if (text.startsWith('{"type":0')) setTimeout(() => this.deliver('{"type":0,"data":"me","from":"me"}'), 1)
  }
  deliver(data) {
    this.emit('message', typeof data === 'string' ? Buffer.from(data) : data, false)
  }
  ping() {}
  terminate() {}
  close() {
    this.readyState = 3
  }
}

const text = '0000000a' + 'x'.repeat(56) // 64 bytes, as in bench/run.mjs
const plainIn = `{"type":1,"data":${JSON.stringify(text)},"from":"abcdefghijkl"}`
const eventIn = `{"type":7,"data":${JSON.stringify(JSON.stringify({ i: 'abcdefgh1', e: 'evt', d: { t: text } }))},"from":"abcdefghijkl"}`
const plainBuf = Buffer.from(plainIn) // ws hands its listener a Buffer
const eventBuf = Buffer.from(eventIn)
const BATCH = 50_000
const BATCHES = 6

/** ns per call of fn, best of 5; batches yield to the event loop as a real sender does. */
async function measure(fn) {
  let best = Infinity
  for (let r = 0; r < 5; r++) {
    const t0 = process.hrtime.bigint()
    for (let b = 0; b < BATCHES; b++) {
      for (let i = 0; i < BATCH; i++) fn()
      await new Promise((resolve) => setImmediate(resolve))
    }
    best = Math.min(best, Number(process.hrtime.bigint() - t0) / (BATCH * BATCHES))
  }
  return best
}

let got = 0
/** A joined sock-client on fake socket `Fake`, and that socket. */
async function sockOn(Fake) {
  const client = new SockClient({ WebSocket: Fake })
  client.setup('127.0.0.1:1')
  client.on('bench', 'message', () => got++)
  client.on('bench', 'evt', () => got++)
  await client.join('bench')
  return [client, sockets.at(-1)]
}
const [client, sockSocket] = await sockOn(FakeSocket)
const [nodeClient, nodeSocket] = await sockOn(FakeNodeSocket)

const rws = new RWS('ws://127.0.0.1:1/channel/bench', [], { WebSocket: FakeSocket })
await new Promise((resolve) => rws.addEventListener('open', resolve, { once: true }))
rws.addEventListener('message', (e) => {
  const f = JSON.parse(e.data)
  if (f.type === 1) got++
})
const rwsSocket = sockets.at(-1)

const rows = [
  ['send: reconnecting-websocket, plain frame', () => rws.send(`{"type":1,"data":${JSON.stringify(text)}}`)],
  ["send: sock-client signal(ch, 'message', text)", () => client.signal('bench', 'message', text)],
  ["send: sock-client signal(ch, 'evt', { t: text })", () => client.signal('bench', 'evt', { t: text })],
  ['receive: reconnecting-websocket + JSON.parse', () => rwsSocket.deliver(plainIn)],
  ["receive: sock-client 'message'", () => sockSocket.deliver(plainIn)],
  ["receive: sock-client 'evt'", () => sockSocket.deliver(eventIn)],
  ["receive: sock-client 'message', Node ws API", () => nodeSocket.deliver(plainBuf)],
  ["receive: sock-client 'evt', Node ws API", () => nodeSocket.deliver(eventBuf)],
]
for (const [name, fn] of rows) console.log(`${name.padEnd(50)} ${(await measure(fn)).toFixed(0).padStart(6)} ns`)
client.close()
nodeClient.close()
rws.close()
if (!got) throw new Error('no message was delivered: the fake socket no longer fits')
process.exit(0)
