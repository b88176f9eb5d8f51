// The packed package in a browser app built by each bundler with its usual setup (issue 16): Vite, webpack 5, esbuild
// and Rollup (plugin-node-resolve + commonjs, without `browser: true`). Each output holds no Node code, loads in
// Chromium and exchanges a message both ways with a Node client through the embedded server; `sock-client/server`
// in the same setup fails the build with a message that says what to import instead.
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import { extname, join, normalize, sep } from 'node:path'
import commonjs from '@rollup/plugin-commonjs'
import { nodeResolve } from '@rollup/plugin-node-resolve'
import { build as esbuild } from 'esbuild'
import type { Browser } from 'playwright-core'
import { rollup } from 'rollup'
import { build as vite, type Logger } from 'vite'
import webpack from 'webpack'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { SockClient } from '../src'
import { createSockServer, type SockServer } from '../src/server'
import { filesUnder, packed } from '../test/fixtures/packed'
import { connectBrowser } from './helpers'

// A browser app as a user writes it: its one import is the package's main entry.
const MAIN = `import { SockClient } from 'sock-client'

const q = new URLSearchParams(location.search)
const channel = q.get('channel')
const client = new SockClient({ id: q.get('id'), reconnect: { minDelay: 50, maxDelay: 200 } })
const state = (window.sock = { joined: false, got: [] })
client.setup(q.get('server'))
client.on(channel, 'message', (text, m) => {
  state.got.push(m.from + ': ' + text)
  if (text === 'ping') client.signal(channel, 'message', 'pong')
})
client.join(channel).then(() => (state.joined = true))
`
// The mistake this guards against: the Node-only server in browser code.
const SERVER = `import { createSockServer } from 'sock-client/server'\ncreateSockServer({ port: 0 })\n`
const FIX = /sock-client\/server is the embedded Sock server and runs in Node only; in browser code, import \{ SockClient \} from 'sock-client'/

/** Node code that must not reach a page: a require(), a node: import, a Node built-in, `ws` (its server, its handshake, its browser stub). */
const NODE_CODE = [
  /\brequire\s*\(/,
  /["'`]node:/,
  /\bfrom\s*["'](?:events|http|https|net|tls|crypto|stream|zlib|url|buffer|fs|path|os|util)["']/,
  /WebSocketServer/,
  /Sec-WebSocket-Key/,
  /ws does not work in the browser/,
]

type Entry = 'main' | 'server'
/** Builds `web/<entry>.js` into `out` the way the bundler's documentation does; resolves with the warnings it printed. */
type Bundle = (web: string, entry: Entry, out: string) => Promise<string[]>

const BUNDLERS: Record<string, Bundle> = {
  async vite(web, entry, out) {
    const root = join(web, `vite-${entry}`)
    mkdirSync(root, { recursive: true })
    writeFileSync(join(root, 'index.html'), `<!doctype html>\n<meta charset="utf-8">\n<link rel="icon" href="data:,">\n<script type="module" src="./app.js"></script>\n`)
    writeFileSync(join(root, 'app.js'), entry === 'main' ? MAIN : SERVER)
    const warnings: string[] = []
    const customLogger: Logger = { info() {}, warn: (m) => void warnings.push(m), warnOnce: (m) => void warnings.push(m), error() {}, clearScreen() {}, hasErrorLogged: () => false, hasWarned: false }
    await vite({ root, configFile: false, logLevel: 'warn', customLogger, build: { outDir: out, emptyOutDir: true } })
    return warnings
  },
  webpack(web, entry, out) {
    return new Promise((resolve, reject) =>
      webpack({ mode: 'production', context: web, entry: `./${entry}.js`, output: { path: out, filename: 'app.js' }, infrastructureLogging: { level: 'none' } }, (err, stats) => {
        if (err || !stats) return reject(err ?? new Error('webpack: no stats'))
        const info = stats.toJson({ all: false, errors: true, warnings: true })
        if (stats.hasErrors()) return reject(new Error(info.errors!.map((e) => e.message).join('\n')))
        writeFileSync(join(out, 'index.html'), `<!doctype html>\n<meta charset="utf-8">\n<link rel="icon" href="data:,">\n<script src="./app.js"></script>\n`)
        resolve(info.warnings!.map((w) => w.message))
      }),
    )
  },
  async esbuild(web, entry, out) {
    const r = await esbuild({ entryPoints: [join(web, `${entry}.js`)], bundle: true, minify: true, format: 'esm', outfile: join(out, 'app.js'), logLevel: 'silent' })
    writeFileSync(join(out, 'index.html'), `<!doctype html>\n<meta charset="utf-8">\n<link rel="icon" href="data:,">\n<script type="module" src="./app.js"></script>\n`)
    return r.warnings.map((w) => w.text)
  },
  async rollup(web, entry, out) {
    const warnings: string[] = []
    const bundle = await rollup({ input: join(web, `${entry}.js`), plugins: [nodeResolve(), commonjs()], onwarn: (w) => void warnings.push(w.message) })
    await bundle.write({ file: join(out, 'app.js'), format: 'es' })
    await bundle.close()
    writeFileSync(join(out, 'index.html'), `<!doctype html>\n<meta charset="utf-8">\n<link rel="icon" href="data:,">\n<script type="module" src="./app.js"></script>\n`)
    return warnings
  },
}

let web = ''
let browser: Browser
let server: SockServer
const pages: Server[] = []
const built = new Map<string, Promise<string[]>>()

/** Serves `dir` on a loopback port of its own (another origin than the Sock server). */
async function serve(dir: string): Promise<string> {
  const s = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname
    const file = normalize(join(dir, decodeURIComponent(path.endsWith('/') ? `${path}index.html` : path)))
    if (!file.startsWith(dir + sep)) return void res.writeHead(404).end()
    try {
      const body = readFileSync(file)
      res.writeHead(200, { 'content-type': extname(file) === '.html' ? 'text/html; charset=utf-8' : 'text/javascript' }).end(body)
    } catch {
      res.writeHead(404).end()
    }
  })
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r))
  pages.push(s)
  return `http://127.0.0.1:${(s.address() as { port: number }).port}`
}

beforeAll(async () => {
  const p = await packed()
  web = join(p.app, `web-${process.pid}`) // inside the project, so `sock-client` resolves from its node_modules; this run's own
  rmSync(web, { recursive: true, force: true })
  mkdirSync(web)
  writeFileSync(join(web, 'main.js'), MAIN)
  writeFileSync(join(web, 'server.js'), SERVER)
  // One after the other: the machine has two cores, and each bundler uses both.
  let chain = Promise.resolve()
  for (const [name, bundle] of Object.entries(BUNDLERS)) {
    const out = join(web, 'out', name)
    const result = chain.then(() => bundle(web, 'main', out))
    built.set(name, result)
    chain = result.then(
      () => undefined,
      () => undefined,
    )
  }
  browser = await connectBrowser()
  server = await createSockServer({ port: 0 })
}, 120_000)

afterAll(async () => {
  await browser?.close()
  await server?.close({ abrupt: true })
  for (const s of pages) s.close()
  if (web) rmSync(web, { recursive: true, force: true })
})

describe.each(Object.keys(BUNDLERS))('%s, usual setup', (name) => {
  it('builds the app from the packed package without a warning and without Node code', async () => {
    expect(await built.get(name)).toEqual([])
    const out = join(web, 'out', name)
    const scripts = filesUnder(out).filter((f) => f.endsWith('.js'))
    expect(scripts.length).toBeGreaterThan(0)
    const code = scripts.map((f) => readFileSync(join(out, f), 'utf8')).join('\n')
    expect(code).toContain('ERR_INVALID_ARGUMENT') // sock-client is in it (its error codes are in every build)
    for (const re of NODE_CODE) expect(code, `${name} output matches ${re}`).not.toMatch(re)
    console.log(`${name}: ${scripts.join(', ')}, ${(code.length / 1024).toFixed(1)} KiB`)
  })

  it('runs in Chromium: the page and a Node client exchange a message both ways', async () => {
    await built.get(name)
    const origin = await serve(join(web, 'out', name))
    const channel = `bundle${Object.keys(BUNDLERS).indexOf(name)}`
    const node = new SockClient({ id: 'node' })
    node.setup(server.address)
    const pong = new Promise<string>((r) => node.on(channel, 'message', (text, m) => r(`${m.from}: ${text}`)))
    await node.join(channel)
    const context = await browser.newContext()
    try {
      const page = await context.newPage()
      const errors: string[] = []
      page.on('pageerror', (e) => errors.push(String(e)))
      page.on('console', (m) => m.type() === 'error' && errors.push(m.text()))
      await page.goto(`${origin}/index.html?server=${server.address}&id=page&channel=${channel}`)
      await page.waitForFunction(() => (window as any).sock?.joined, undefined, { timeout: 10_000 })
      await node.signal(channel, 'message', 'ping')
      expect(await pong).toBe('page: pong')
      expect(await page.evaluate(() => (window as any).sock.got)).toEqual(['node: ping'])
      expect(errors).toEqual([])
    } finally {
      await context.close()
      node.close()
    }
  })

  it('fails to build sock-client/server for the browser, with a message that names the fix', async () => {
    await built.get(name)?.catch(() => {})
    const error = await BUNDLERS[name]!(web, 'server', join(web, 'out', `${name}-server`)).then(
      () => new Error('the build succeeded'),
      (e: Error) => e,
    )
    expect(String(error.message)).toMatch(FIX)
  })
})
