// Flow control in a real browser (issue 13): past the high-water mark of the WebSocket's bufferedAmount, sends wait
// in the bounded queue and its overflow policy applies; nothing says `sent` that the socket could not take, and
// what waited is written once the peer reads again. Chromium has no drain event: the client polls bufferedAmount.
import type { Browser, BrowserContext } from 'playwright-core'
import type { Socket } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { WebSocketServer, type WebSocket as WsSocket } from 'ws'
import { connectBrowser, openPage, startPageServer, type PageServer } from './helpers'

let browser: Browser
let pages: PageServer
let context: BrowserContext
let wss: WebSocketServer
let peer: WsSocket | undefined
let received = 0
let connections = 0

beforeAll(async () => {
  browser = await connectBrowser()
  pages = await startPageServer()
  context = await browser.newContext()
  // A peer that answers who-am-I, counts what it reads, and stops reading when the test says so.
  wss = new WebSocketServer({ host: '127.0.0.1', port: 0 })
  await new Promise((r) => wss.once('listening', r))
  wss.on('connection', (ws) => {
    ws.on('error', () => {})
    connections++
    peer = ws
    ws.on('message', (d) => {
      const f = JSON.parse(String(d))
      if ((f.type ?? 0) === 0) ws.send(JSON.stringify({ type: 0, data: 'page', from: 'page' }))
      else if (f.type === 1) received++
    })
  })
})
afterAll(async () => {
  await context?.close()
  await browser?.close()
  await pages?.close()
  for (const c of wss?.clients ?? []) c.terminate()
  await new Promise((r) => wss?.close(r))
})

const tcp = () => (peer as unknown as { _socket: Socket })._socket

describe('flow control in Chromium', () => {
  it('20,000 signals of 1 KB to a peer that stopped reading: bounded, refused beyond the queue, and the rest written once it reads', async () => {
    const page = await openPage(context, `${pages.origin}/pages/umd.html`)
    const address = `127.0.0.1:${(wss.address() as { port: number }).port}`
    await page.evaluate(async (address) => {
      const w = window as any
      w.client = new w.Sock.SockClient()
      w.client.setup(address)
      await w.client.join('flow')
    }, address)
    tcp().pause() // the peer stops reading: TCP's buffers fill, then the browser's WebSocket buffers
    const outcome = await page.evaluate(async () => {
      const w = window as any
      const o = (w.outcome = { sent: 0, rejected: 0, other: 0 })
      const payload = 'p'.repeat(1000) // a 1,020-byte type-1 frame: one frame per signal at the default 1024-byte limit
      for (let i = 0; i < 20_000; i++) {
        w.client.signal('flow', 'message', payload).then(
          () => o.sent++,
          (e: any) => (e.code === 'ERR_QUEUE_FULL' ? o.rejected++ : o.other++),
        )
      }
      await new Promise((r) => setTimeout(r, 500))
      return { ...o, buffered: w.client.connectionsOf('flow')[0].queued }
    })
    // Before: every one of the 20,000 resolved 'sent' into the browser's unbounded buffer.
    expect(outcome.other).toBe(0)
    expect(outcome.rejected, JSON.stringify(outcome)).toBeGreaterThan(5000)
    expect(outcome.sent + outcome.rejected + outcome.buffered).toBe(20_000)
    tcp().resume()
    await page.waitForFunction(
      () => {
        const o = (window as any).outcome
        return o.sent + o.rejected === 20_000
      },
      undefined,
      { timeout: 15_000 },
    )
    const final = await page.evaluate(() => (window as any).outcome)
    await new Promise((r) => setTimeout(r, 300))
    expect(connections).toBe(1)
    expect(received, 'what was written (sent) is what the peer read').toBe(final.sent)
    expect(page.errors).toEqual([])
  })
})
