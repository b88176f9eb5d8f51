// What a bundler keeps of the package: `"sideEffects"` in package.json lets it drop a module imported for its
// effect only. `import 'sock-client/msgpack'` is such an import (it registers the codec, so that every client of
// the page decodes msgpack envelopes), so it must survive: bundled with esbuild for a browser through the exports
// map, then run in a process of its own (the codec registry is one per realm) against the embedded server, the
// page's client decodes what a Node client sent in msgpack.
import { spawn } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import { build } from 'esbuild'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { msgpack } from '../src/msgpack'
import { client, closeAll, startServer } from './helpers'

const root = resolve(__dirname, '..')
const dir = mkdtempSync(join(tmpdir(), 'sock-effects-'))
mkdirSync(join(dir, 'node_modules'))
symlinkSync(root, join(dir, 'node_modules', 'sock-client'), 'dir')
afterAll(() => rmSync(dir, { recursive: true, force: true }))
afterEach(closeAll)

/** The page's side: joins, prints 'joined', then the first event's data as msgpack-typed JSON, or the first error. */
const RUN = (page: string, ws: string) => `
import WebSocket from ${JSON.stringify(ws)}
import { SockClient } from ${JSON.stringify(page)}
const c = new SockClient({ WebSocket })
const done = (line) => { console.log(line); c.close() }
c.on('socket', 'error', (i) => done('error ' + i.error.message))
c.on('codec', 'when', (d) => done(d instanceof Date ? 'date ' + d.toISOString() : 'not a date: ' + JSON.stringify(d)))
c.setup(process.argv[2])
c.join('codec').then(() => console.log('joined'))
setTimeout(() => done('timeout'), 5000).unref()
`

describe("a bundler's production build", () => {
  it("keeps import 'sock-client/msgpack' (imported for its effect only): the page's client decodes msgpack", async () => {
    const code = "import 'sock-client/msgpack'\nexport { SockClient } from 'sock-client'\n"
    const r = await build({ stdin: { contents: code, resolveDir: dir, loader: 'js' }, absWorkingDir: dir, bundle: true, format: 'esm', platform: 'browser', write: false, logLevel: 'silent' })
    writeFileSync(join(dir, 'page.mjs'), r.outputFiles[0]!.contents)
    writeFileSync(join(dir, 'run.mjs'), RUN(pathToFileURL(join(dir, 'page.mjs')).href, pathToFileURL(join(root, 'node_modules/ws/wrapper.mjs')).href))

    const s = await startServer()
    const writer = client({ codec: msgpack() })
    writer.setup(s.address)
    await writer.join('codec')
    const child = spawn(process.execPath, [join(dir, 'run.mjs'), s.address], { stdio: ['ignore', 'pipe', 'inherit'] })
    const lines: string[] = []
    let joined!: () => void
    const isJoined = new Promise<void>((r) => (joined = r))
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      lines.push(...d.trim().split('\n'))
      if (lines.includes('joined')) joined()
    })
    const exited = new Promise((r) => child.on('exit', r))
    await Promise.race([isJoined, exited])
    await writer.signal('codec', 'when', new Date(0))
    await exited
    expect(lines).toEqual(['joined', 'date 1970-01-01T00:00:00.000Z'])
  })
})
