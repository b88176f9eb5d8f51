// The built package (dist/, made by `npm run build` before vitest runs): size budget, browser bundles free of
// Node code and of msgpackr in the core, clean publint / arethetypeswrong, and the exports map working in Node.
import { execFile } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { promisify } from 'node:util'
import { runInNewContext } from 'node:vm'
import { publint } from 'publint'
import { formatMessage } from 'publint/utils'
import { describe, expect, it } from 'vitest'

const run = promisify(execFile)
const root = resolve(__dirname, '..')
const dist = (f: string) => resolve(root, 'dist', f)
const pkg = JSON.parse(readFileSync(resolve(root, 'package.json'), 'utf8'))

const CORE = 'sock-client.umd.min.js'
const KERNEL = 'sock-client.core.umd.min.js'
const MSGPACK = 'sock-client.msgpack.umd.min.js'
const bundles = [CORE, KERNEL, MSGPACK]

/** Every original file that contributed code to a bundle, from its source map. */
function sourcesOf(file: string): string[] {
  const map = JSON.parse(readFileSync(dist(`${file}.map`), 'utf8')) as { sources: string[] }
  return map.sources.map((s) => s.replace(/^(\.\.\/)+/, ''))
}

describe('browser bundles', () => {
  it('contain no Node code: no ws, no node:*, no server, no require()', () => {
    for (const file of bundles) {
      const sources = sourcesOf(file)
      expect(sources.length, file).toBeGreaterThan(3)
      for (const s of sources) {
        expect(s, file).not.toMatch(/node_modules\/(ws|isomorphic-ws\/node\.js)|^src\/server\/|^node:/)
      }
      // the browser's own WebSocket (src/websocket-browser.ts), never the Node variant that imports ws
      expect(sources, file).toContain('src/websocket-browser.ts')
      expect(sources, file).not.toContain('src/websocket.ts')
      const code = readFileSync(dist(file), 'utf8')
      expect(code, file).not.toMatch(/require\(["'](ws|node:|events|http|crypto|buffer)/)
      expect(code, file).not.toContain('WebSocketServer')
      expect(code, file).not.toContain('process.hrtime')
    }
  })

  it('keep msgpackr out of the core bundle, and in the msgpack one', () => {
    const core = sourcesOf(CORE)
    expect(core.filter((s) => /msgpack/i.test(s))).toEqual([])
    expect(readFileSync(dist(CORE), 'utf8')).not.toMatch(/msgpackr|Packr|unpackr/)
    expect(sourcesOf(MSGPACK).some((s) => s.includes('node_modules/msgpackr/'))).toBe(true)
  })

  it('compile no code at run time (CSP without unsafe-eval)', () => {
    for (const file of bundles) expect(readFileSync(dist(file), 'utf8'), file).not.toMatch(/new Function\s*\(|\beval\s*\(/)
  })

  it('run as a classic script and define window.Sock, the msgpack one with Sock.msgpack()', () => {
    for (const file of bundles) {
      const window: Record<string, any> = { WebSocket: class {}, TextEncoder, TextDecoder, Symbol, setTimeout, clearTimeout, performance }
      window.self = window
      // no require, module, exports or process: what a browser page offers
      runInNewContext(readFileSync(dist(file), 'utf8'), window, { filename: file })
      const Sock = window.Sock
      expect(typeof Sock?.SockClient, file).toBe('function')
      expect(typeof Sock.ValidationError).toBe('function')
      expect(typeof Sock.msgpack).toBe(file === MSGPACK ? 'function' : 'undefined')
    }
  })

  it('are what unpkg and jsdelivr serve', () => {
    expect(pkg.unpkg).toBe(`./dist/${CORE}`)
    expect(pkg.jsdelivr).toBe(`./dist/${CORE}`)
  })
})

describe('the published package', () => {
  it('passes publint with no message at all', async () => {
    const { messages } = await publint({ pkgDir: root, strict: true })
    expect(messages.map((m) => formatMessage(m, pkg))).toEqual([])
  })

  it('passes @arethetypeswrong/cli with no problem, in every resolution mode', async () => {
    const bin = resolve(root, 'node_modules/@arethetypeswrong/cli/dist/index.js')
    const { stdout } = await run(process.execPath, [bin, '--pack', '.', '--format', 'json'], { cwd: root, maxBuffer: 16 << 20 }).catch((e) => e)
    const result = JSON.parse(stdout)
    expect(result.analysis.problems).toEqual([])
    expect(result.problems).toEqual({})
    expect(Object.keys(result.analysis.entrypoints).sort()).toEqual([
      '.',
      './addresses',
      './chunks',
      './codecs',
      './core',
      './debug',
      './files',
      './messages',
      './msgpack',
      './node',
      './package.json',
      './presence',
      './protocol',
      './react',
      './replies',
      './rest',
      './server',
      './streams',
    ])
  }, 60_000)

  // A real round trip in a fresh Node process, resolving `sock-client` through the exports map (self-reference).
  const script = (load: string) => `${load}
    ;(async () => {
      const server = await createSockServer({ port: 0 })
      const a = new SockClient({ id: 'a' }), b = new SockClient({ id: 'b', codec: msgpack() })
      a.setup(server.address); b.setup(server.address)
      const got = new Promise((r) => a.on('chat', 'point', (d, m) => r({ d, from: m.from })))
      await Promise.all([a.join('chat'), b.join('chat')])
      await b.signal('chat', 'point', { at: new Date(0), tags: new Set(['x']) })
      const { d, from } = await got
      console.log(JSON.stringify({ from, at: d.at instanceof Date, set: d.tags instanceof Set }))
      a.close(); b.close(); await server.close()
    })().catch((e) => { console.error(e); process.exit(1) })`

  it('imports the built ESM through the exports map', async () => {
    const load = `import { SockClient } from 'sock-client'; import { msgpack } from 'sock-client/msgpack'; import { createSockServer } from 'sock-client/server'`
    const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script(load)], { cwd: root })
    expect(JSON.parse(stdout)).toEqual({ from: 'b', at: true, set: true })
    const { stdout: where } = await run(process.execPath, ['--input-type=module', '-e', `console.log(import.meta.resolve('sock-client'), import.meta.resolve('sock-client/server'))`], { cwd: root })
    expect(where.trim().split(' ')).toEqual([`file://${dist('index.js')}`, `file://${dist('server.js')}`])
  })

  it('requires the built CJS through the exports map', async () => {
    const load = `const { SockClient } = require('sock-client'); const { msgpack } = require('sock-client/msgpack'); const { createSockServer } = require('sock-client/server')`
    const { stdout } = await run(process.execPath, ['-e', script(load)], { cwd: root })
    expect(JSON.parse(stdout)).toEqual({ from: 'b', at: true, set: true })
    const { stdout: where } = await run(process.execPath, ['-p', `require.resolve('sock-client') + ' ' + require.resolve('sock-client/msgpack')`], { cwd: root })
    expect(where.trim().split(' ')).toEqual([dist('index.cjs'), dist('msgpack.cjs')])
  })
})

describe('npm start', () => {
  it('shows two Node clients talking in the terminal (demo/main.mjs --once)', async () => {
    const { stdout } = await run(process.execPath, ['demo/main.mjs', '--once'], { cwd: root, env: { ...process.env, PORT: '0' } })
    expect(stdout).toContain('alice -> bob > Hi Bob!')
    expect(stdout).toContain('bob -> alice > Hi Alice')
    expect(stdout).toMatch(/instances in 'chat' \(REST\): alice since .*, bob since /)
    expect(stdout).toContain('demo finished')
  })
})
