// The React hooks (issue 17) in Chromium: a small React app, built in this run with Vite 8 from the packed package
// (React from this repository's devDependencies, as an application installs it), rendered under <StrictMode> in
// React's development build, where every effect mounts, unmounts and mounts again. The page and a Node client talk
// through the embedded server: one listener per hook (one reply per ping), the channel open after the double mount,
// the presence list live, and an unmounted component neither hears nor stays in the channel.
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import { tmpdir } from 'node:os'
import { extname, join, normalize, sep } from 'node:path'
import type { Browser, Page } from 'playwright-core'
import { build as vite, type Logger } from 'vite'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { SockClient } from '../src'
import { createSockServer, type SockServer } from '../src/server'
import { filesUnder, packed } from '../test/fixtures/packed'
import { connectBrowser, root } from './helpers'

// The app, as a user writes it without JSX: every hook of sock-client/react, under StrictMode.
const APP = `import { createElement as h, StrictMode, useEffect, useState } from 'react'
import { createRoot } from 'react-dom/client'
import { SockClient } from 'sock-client'
import { SockProvider, useChannel, useConnectionState, usePresence, useSignal } from 'sock-client/react'

const q = new URLSearchParams(location.search)
const channel = q.get('channel')
const client = new SockClient({ id: q.get('id'), reconnect: { minDelay: 50, maxDelay: 200 }, presenceInterval: 300 })
client.setup(q.get('server'))
const state = (window.sock = { got: [], events: [], mounts: 0, client })

function Room() {
  const [got, setGot] = useState([])
  useEffect(() => {
    state.mounts++
  }, [])
  const signal = useChannel(channel, 'message', (text, m) => {
    state.got.push(m.from + ': ' + text)
    setGot((g) => [...g, text])
    if (text === 'ping') signal('message', 'pong')
  })
  useSignal(channel, (event) => state.events.push(event)) // every event of the channel
  const s = useConnectionState(channel)
  const people = usePresence(channel)
  return h('section', null,
    h('p', { id: 'state' }, s ?? 'none'),
    h('ul', { id: 'people' }, people.map((i) => h('li', { key: i.id }, i.id))),
    h('ul', { id: 'got' }, got.map((t, i) => h('li', { key: i }, t))))
}

function App() {
  const [shown, setShown] = useState(true)
  window.toggle = () => setShown((v) => !v)
  return h(SockProvider, { client }, shown ? h(Room) : h('p', { id: 'gone' }, 'unmounted'))
}

createRoot(document.getElementById('root')).render(h(StrictMode, null, h(App)))
`

let dir = ''
let browser: Browser
let server: SockServer
let page: Page
let origin = ''
const http: Server[] = []
const warnings: string[] = []
const errors: string[] = []

/** Serves `out` on a loopback port of its own (another origin than the Sock server). */
async function serve(out: string): Promise<string> {
  const s = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname
    const file = normalize(join(out, decodeURIComponent(path.endsWith('/') ? `${path}index.html` : path)))
    if (!file.startsWith(out + sep)) return void res.writeHead(404).end()
    try {
      res.writeHead(200, { 'content-type': extname(file) === '.html' ? 'text/html; charset=utf-8' : 'text/javascript' }).end(readFileSync(file))
    } catch {
      res.writeHead(404).end()
    }
  })
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r))
  http.push(s)
  return `http://127.0.0.1:${(s.address() as { port: number }).port}`
}

beforeAll(async () => {
  const p = await packed()
  // An application directory: the packed package as npm installed it, and React as the application would install it.
  dir = mkdtempSync(join(tmpdir(), 'sock-react-'))
  mkdirSync(join(dir, 'node_modules'))
  cpSync(join(p.app, 'node_modules', 'sock-client'), join(dir, 'node_modules', 'sock-client'), { recursive: true })
  for (const pkg of ['react', 'react-dom', 'scheduler']) symlinkSync(join(root, 'node_modules', pkg), join(dir, 'node_modules', pkg), 'dir')
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'react-app', private: true, type: 'module' }))
  writeFileSync(join(dir, 'index.html'), `<!doctype html>\n<meta charset="utf-8">\n<link rel="icon" href="data:,">\n<div id="root"></div>\n<script type="module" src="./app.js"></script>\n`)
  writeFileSync(join(dir, 'app.js'), APP)
  const customLogger: Logger = { info() {}, warn: (m) => void warnings.push(m), warnOnce: (m) => void warnings.push(m), error() {}, clearScreen() {}, hasErrorLogged: () => false, hasWarned: false }
  // mode development: React's development build, the one where StrictMode mounts every effect twice.
  await vite({
    root: dir,
    configFile: false,
    mode: 'development',
    logLevel: 'warn',
    customLogger,
    define: { 'process.env.NODE_ENV': '"development"' },
    build: { outDir: join(dir, 'out'), emptyOutDir: true, minify: false },
  })
  origin = await serve(join(dir, 'out'))
  browser = await connectBrowser()
  server = await createSockServer({ port: 0 })
}, 120_000)

afterAll(async () => {
  await page?.context().close()
  await browser?.close()
  await server?.close({ abrupt: true })
  for (const s of http) s.close()
  if (dir) rmSync(dir, { recursive: true, force: true })
})

describe('sock-client/react in a Vite app, under StrictMode', () => {
  it('builds with Vite 8 from the packed package, without a warning, React as a peer the app brings', () => {
    expect(warnings).toEqual([])
    const code = filesUnder(join(dir, 'out'))
      .filter((f) => f.endsWith('.js'))
      .map((f) => readFileSync(join(dir, 'out', f), 'utf8'))
      .join('\n')
    expect(code).toContain('useSyncExternalStore')
    expect(code).toContain('ERR_INVALID_ARGUMENT') // sock-client is in it
    expect(code).toMatch(/react-dom\.development|react\.development/) // React's development build: StrictMode's double mount is on
  })

  it('one listener per hook after the double mount, the channel open, presence live; unmounted, it neither hears nor stays', async () => {
    const channel = 'hooks'
    const node = new SockClient({ id: 'node', presenceInterval: 300 })
    node.setup(server.address)
    const nodePresence = node.presence(channel)
    const seen: string[] = []
    nodePresence.on('join', (i) => seen.push(`join ${i.id}`))
    nodePresence.on('leave', (i) => seen.push(`leave ${i.id}`))
    const pongs: string[] = []
    node.on(channel, 'message', (text, m) => text === 'pong' && pongs.push(m.from))
    await node.join(channel)
    try {
      const context = await browser.newContext()
      page = await context.newPage()
      page.on('pageerror', (e) => errors.push(String(e)))
      page.on('console', (m) => m.type() === 'error' && errors.push(m.text()))
      await page.goto(`${origin}/index.html?server=${server.address}&id=page&channel=${channel}`)
      await page.waitForFunction(() => document.getElementById('state')?.textContent === 'open', undefined, { timeout: 10_000 })
      expect(await page.evaluate(() => (window as any).sock.mounts)).toBe(2) // StrictMode did mount, unmount and mount again
      expect(await page.evaluate(() => (window as any).sock.client.stateOf('hooks'))).toBe('open') // not a closed channel

      await node.signal(channel, 'message', 'ping')
      await expect.poll(() => pongs, { timeout: 5000 }).toEqual(['page'])
      await new Promise((r) => setTimeout(r, 300))
      expect(pongs).toEqual(['page']) // one reply: one listener, not two
      expect(await page.evaluate(() => (window as any).sock.got)).toEqual(['node: ping'])
      expect(await page.evaluate(() => (window as any).sock.events)).toEqual(['message'])
      await expect.poll(() => page.locator('#got li').allTextContents()).toEqual(['ping'])

      // presence: both of us, and a newcomer at once
      await expect
        .poll(
          () =>
            page
              .locator('#people li')
              .allTextContents()
              .then((l) => l.sort()),
          { timeout: 5000 },
        )
        .toEqual(['node', 'page'])
      const other = new SockClient({ id: 'other' })
      other.setup(server.address)
      await other.join(channel)
      await expect
        .poll(
          () =>
            page
              .locator('#people li')
              .allTextContents()
              .then((l) => l.sort()),
          { timeout: 5000 },
        )
        .toEqual(['node', 'other', 'page'])
      other.close()
      await expect
        .poll(
          () =>
            page
              .locator('#people li')
              .allTextContents()
              .then((l) => l.sort()),
          { timeout: 5000 },
        )
        .toEqual(['node', 'page'])

      // unmounted: the hooks joined the channel, so it is left, and nothing more arrives
      await page.evaluate(() => (window as any).toggle())
      await page.waitForSelector('#gone')
      await expect.poll(() => seen.includes('leave page'), { timeout: 5000 }).toBe(true)
      expect(await page.evaluate(() => (window as any).sock.client.stateOf('hooks'))).toBeUndefined()
      await node.signal(channel, 'message', 'are you there')
      await new Promise((r) => setTimeout(r, 300))
      expect(await page.evaluate(() => (window as any).sock.got)).toEqual(['node: ping'])

      // mounted again: back in the channel, one listener again
      await page.evaluate(() => (window as any).toggle())
      await page.waitForFunction(() => document.getElementById('state')?.textContent === 'open', undefined, { timeout: 10_000 })
      await node.signal(channel, 'message', 'ping')
      await expect.poll(() => pongs, { timeout: 5000 }).toEqual(['page', 'page'])
      await new Promise((r) => setTimeout(r, 300))
      expect(pongs).toEqual(['page', 'page'])
      expect(errors).toEqual([])
    } finally {
      node.close()
    }
  })
})
