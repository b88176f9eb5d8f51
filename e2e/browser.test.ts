// sock-client in real headless Chromium: the UMD bundle and the npm ESM build, two pages chatting through the
// embedded server (on another origin than the pages), a server restart, REST with CORS, a strict CSP with the
// msgpack codec, and going offline and back online.
import type { Browser, BrowserContext, Page } from 'playwright-core'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { createSockServer, type SockServer } from '../src/server'
import { connectBrowser, openPage, startPageServer, type PageServer } from './helpers'

let browser: Browser
let pages: PageServer
const servers: SockServer[] = []
const contexts: BrowserContext[] = []

beforeAll(async () => {
  browser = await connectBrowser()
  pages = await startPageServer()
})
afterAll(async () => {
  await browser?.close()
  await pages?.close()
})
afterEach(async () => {
  for (const c of contexts.splice(0)) await c.close()
  for (const s of servers.splice(0)) await s.close({ abrupt: true })
})

async function sockServer(port = 0): Promise<SockServer> {
  const s = await createSockServer({ port })
  servers.push(s)
  return s
}

async function context(): Promise<BrowserContext> {
  const c = await browser.newContext()
  contexts.push(c)
  return c
}

/** Creates `window.client` as `id` on `address`, records messages and lifecycle events, joins `chat`. */
async function joinChat(page: Page, address: string, id: string, reconnect: object = { minDelay: 50, maxDelay: 300 }): Promise<void> {
  await page.evaluate(
    async ({ address, id, reconnect }) => {
      const w = window as any
      const client = new w.Sock.SockClient({ id, reconnect })
      w.client = client
      w.got = []
      w.events = []
      client.setup(address)
      client.on('chat', 'message', (text: string, m: any) => w.got.push(`${m.from}: ${text}`))
      client.on('socket', (event: string) => w.events.push(event))
      await client.join('chat')
    },
    { address, id, reconnect },
  )
}

const say = (page: Page, text: string) => page.evaluate((text) => (window as any).client.signal('chat', 'message', text), text)
const got = (page: Page) => page.evaluate(() => (window as any).got as string[])
const events = (page: Page) => page.evaluate(() => (window as any).events as string[])
const state = (page: Page) => page.evaluate(() => (window as any).client.stateOf('chat') as string)

for (const build of ['umd', 'esm'] as const) {
  describe(`the ${build === 'umd' ? 'UMD bundle (script tag)' : 'npm ESM build (module + import map)'}`, () => {
    it('lets two pages chat, and both reconnect and continue after the server restarts on the same port', async () => {
      const server = await sockServer()
      const ctx = await context()
      const [alice, bob] = await Promise.all([openPage(ctx, `${pages.origin}/pages/${build}.html`), openPage(ctx, `${pages.origin}/pages/${build}.html`)])
      await joinChat(alice, server.address, 'alice')
      await joinChat(bob, server.address, 'bob')
      expect(await alice.evaluate(() => (window as any).client.idOf('chat'))).toBe('alice')

      await say(alice, 'hi bob')
      await say(bob, 'hi alice, caf\u00e9 \u{1F600}')
      await expect.poll(() => got(bob)).toEqual(['alice: hi bob'])
      await expect.poll(() => got(alice)).toEqual(['bob: hi alice, caf\u00e9 \u{1F600}'])

      // The server goes away (every socket dropped, as in a crash) and comes back on the same port.
      const port = server.port
      await server.close({ abrupt: true })
      await expect.poll(() => state(alice)).not.toBe('open')
      await expect.poll(() => state(bob)).not.toBe('open')
      const again = await sockServer(port)
      await expect.poll(() => state(alice), { timeout: 10_000 }).toBe('open')
      await expect.poll(() => state(bob), { timeout: 10_000 }).toBe('open')
      const listed = async () => ((await fetch(`${again.httpUrl}/api/channel/chat`).then((r) => r.json())) as { id: string }[]).map?.((i) => i.id).sort()
      await expect.poll(listed).toEqual(['alice', 'bob'])
      expect(await events(alice)).toEqual(expect.arrayContaining(['open', 'close', 'reconnect']))

      await say(bob, 'still there?')
      await say(alice, 'yes')
      await expect.poll(() => got(alice)).toEqual(['bob: hi alice, caf\u00e9 \u{1F600}', 'bob: still there?'])
      await expect.poll(() => got(bob)).toEqual(['alice: hi bob', 'alice: yes'])
      expect([...alice.errors, ...bob.errors].filter((e) => !/WebSocket|ERR_CONNECTION_REFUSED/.test(e))).toEqual([])
    })
  })
}

describe('in the browser', () => {
  it('lists the instances of a channel over REST from a page on another origin (CORS)', async () => {
    const server = await sockServer()
    const ctx = await context()
    const [alice, bob] = await Promise.all([openPage(ctx, `${pages.origin}/pages/umd.html`), openPage(ctx, `${pages.origin}/pages/umd.html`)])
    await joinChat(alice, server.address, 'alice')
    await joinChat(bob, server.address, 'bob')
    expect(new URL(alice.url()).origin).not.toBe(server.httpUrl)
    const listed = await alice.evaluate(async () => {
      const list = await (window as any).client.instances('chat')
      return list.map((i: any) => ({ id: i.id, channel: i.channel, isDate: i.createdAt instanceof Date }))
    })
    expect(listed.sort((a: any, b: any) => a.id.localeCompare(b.id))).toEqual([
      { id: 'alice', channel: 'chat', isDate: true },
      { id: 'bob', channel: 'chat', isDate: true },
    ])
    const one = await bob.evaluate(async () => (await (window as any).client.instance('chat', 'alice'))?.id)
    expect(one).toBe('alice')
  })

  it('refuses REST from another origin when the server sends no CORS headers (what the test above relies on)', async () => {
    const server = await createSockServer({ port: 0, cors: false })
    servers.push(server)
    const ctx = await context()
    const page = await openPage(ctx, `${pages.origin}/pages/umd.html`)
    await joinChat(page, server.address, 'alice')
    const outcome = await page.evaluate(() =>
      (window as any).client.instances('chat').then(
        () => 'listed',
        (e: any) => e.name,
      ),
    )
    expect(outcome).toBe('RestError')
  })

  it('exchanges msgpack payloads under a strict Content-Security-Policy without unsafe-eval', async () => {
    const server = await sockServer()
    const strict = await startPageServer({
      csp: `default-src 'none'; script-src 'self'; connect-src ${server.url} ${server.httpUrl}; base-uri 'none'; form-action 'none'`,
    })
    try {
      const ctx = await context()
      const page = await ctx.newPage()
      const headers = (await page.goto(`${strict.origin}/pages/csp.html?sock=${server.address}`))!.headers()
      expect(headers['content-security-policy']).not.toContain('unsafe-eval')
      const result = await (await page.waitForFunction(() => (window as any).result, undefined, { timeout: 10_000 })).jsonValue()
      expect(result).toEqual({
        evalBlocked: true,
        from: 'alice',
        at: '1970-01-02T00:00:00.000Z',
        tags: ['a', 'b'],
        big: String(2n ** 70n),
        bytes: [0, 1, 255],
        map: [[1, 'one']],
        violations: ['script-src: eval'],
      })
    } finally {
      await strict.close()
    }
  })

  it('reconnects as soon as the page is back online, not when the backoff says', async () => {
    const server = await sockServer()
    const ctx = await context()
    const page = await openPage(ctx, `${pages.origin}/pages/umd.html`)
    // A backoff of up to an hour: only the `online` event can bring the client back within the test.
    await joinChat(page, server.address, 'alice', { minDelay: 3_600_000, maxDelay: 3_600_000 })
    const port = server.port
    await ctx.setOffline(true)
    expect(await page.evaluate(() => navigator.onLine)).toBe(false)
    await server.close({ abrupt: true })
    await expect.poll(() => state(page)).toBe('reconnecting')
    await sockServer(port)
    await page.waitForTimeout(300)
    expect(await state(page)).toBe('reconnecting') // still waiting out its backoff
    await ctx.setOffline(false)
    await expect.poll(() => state(page), { timeout: 5000 }).toBe('open')
  })

  it('pipes a Blob.stream() into a SockWriter to a Node reader, and answers a request from Node (the UMD bundle)', async () => {
    const { SockClient } = await import('../src')
    const server = await sockServer()
    const node = new SockClient({ id: 'node' })
    node.setup(server.address)
    let size = 0
    let sum = 0
    node.handleStream('chat', 'upload', async (reader, meta: { name: string }) => {
      for await (const p of reader) for (const b of p as Uint8Array) size++, (sum = (sum + b) % 65521)
      return { name: meta.name, size }
    })
    await node.join('chat')
    const ctx = await context()
    const page = await openPage(ctx, `${pages.origin}/pages/umd.html`)
    await joinChat(page, server.address, 'page')
    await page.evaluate(() => (window as any).client.handle('chat', 'whoami', () => ({ agent: navigator.userAgent.includes('Chrome') ? 'chromium' : 'other' })))
    const result = await page.evaluate(async () => {
      const bytes = new Uint8Array(300_000).map((_, i) => (i * 31) % 251)
      let sum = 0
      for (const b of bytes) sum = (sum + b) % 65521
      const w = (window as any).client.stream('chat', 'upload', { name: 'blob.bin' }, { to: 'node' })
      await new Blob([bytes]).stream().pipeTo(w.writable)
      return { result: await w.result, sum }
    })
    expect(result.result).toEqual({ name: 'blob.bin', size: 300_000 })
    expect(sum).toBe(result.sum)
    expect(await node.request('chat', 'whoami', undefined, { to: 'page' })).toEqual({ agent: 'chromium' })
    node.close()
  })
})
