// Smoke test of the packed package on every runtime it supports (issue 16): Node 20 (this one), Node 22, the newest
// Node, Bun (also with Bun's ws passed as options.WebSocket), and Deno with --allow-net only. Each runs test/fixtures/smoke.mjs from the project that installed the
// tarball, against the embedded server started here: join, a signal each way, REST instances(), close, and the
// process ends by itself. The runtimes come from npm packages into .runtimes/ (scripts/runtimes.mjs; .ci/run
// installs them, and this file installs the missing ones itself).
import { spawn } from 'node:child_process'
import { copyFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { SockClient } from '../src'
import { createSockServer, type SockServer } from '../src/server'
import { binOf, install } from '../scripts/runtimes.mjs'
import { packed, root, userEnv, type Packed } from './fixtures/packed'

let p: Packed
const script = `smoke-${process.pid}.mjs`
let server: SockServer
let peer: SockClient
const hellos = new Map<string, unknown>()

beforeAll(async () => {
  install({ log: () => {} }) // only what is missing
  p = await packed()
  copyFileSync(join(root, 'test/fixtures/smoke.mjs'), join(p.app, script)) // this run's own: another checkout may share p.app
  server = await createSockServer({ port: 0 })
  peer = new SockClient({ id: 'peer' })
  peer.setup(server.address)
}, 600_000)

afterAll(async () => {
  peer?.close()
  await server?.close({ abrupt: true })
  if (p) rmSync(join(p.app, script), { force: true })
})

interface Run {
  code: number | null
  signal: string | null
  result: any
  stderr: string
  /** From the result line (printed after close()) to the exit of the process. */
  exitAfterMs: number
}

/** Runs the smoke script with `cmd args`; kills it after `limit` ms (a hang fails the test instead of stalling it). */
function smoke(cmd: string, args: string[], limit = 20_000): Promise<Run> {
  return new Promise((done) => {
    const child = spawn(cmd, args, { cwd: p.app, env: userEnv({ NO_COLOR: '1', DENO_NO_UPDATE_CHECK: '1' }), stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    let printedAt = 0
    child.stdout.on('data', (d: Buffer) => {
      stdout += d
      if (!printedAt && stdout.includes('\n')) printedAt = performance.now()
    })
    child.stderr.on('data', (d: Buffer) => (stderr += d))
    const timer = setTimeout(() => child.kill('SIGKILL'), limit)
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      let result
      try {
        result = JSON.parse(stdout.trim().split('\n')[0] ?? '')
      } catch {
        result = undefined
      }
      done({ code, signal, result, stderr: stderr.slice(0, 4000), exitAfterMs: printedAt ? performance.now() - printedAt : Infinity })
    })
  })
}

const RUNTIMES: { name: string; cmd: () => string; args: (script: string[]) => string[]; version: RegExp; uses: 'ws' | 'standard'; pass?: 'ws' }[] = [
  { name: 'Node 20', cmd: () => process.execPath, args: (s) => s, version: /^v20\./, uses: 'ws' },
  { name: 'Node 22', cmd: () => binOf('node-22'), args: (s) => s, version: /^v22\./, uses: 'standard' },
  { name: 'the newest Node', cmd: () => binOf('node-latest'), args: (s) => s, version: /^v(2[3-9]|[3-9]\d)\./, uses: 'standard' },
  { name: 'Bun', cmd: () => binOf('bun'), args: (s) => s, version: /^1\./, uses: 'standard' },
  // Bun's own ws, whose socket cannot cork: the write batching must step aside (join() never resolved).
  { name: 'Bun with options.WebSocket = ws', cmd: () => binOf('bun'), args: (s) => s, version: /^1\./, uses: 'ws', pass: 'ws' },
  // --no-prompt: a permission it lacks is an error, not a question nobody answers.
  { name: 'Deno (--allow-net only)', cmd: () => binOf('deno'), args: (s) => ['run', '--allow-net', '--no-prompt', ...s], version: /^2\./, uses: 'standard' },
]

describe('the packed package on every runtime', () => {
  it.concurrent.each(RUNTIMES)(
    '$name: joins, signals both ways, lists over REST, closes, and the process ends by itself',
    async (rt) => {
      const channel = `smoke${RUNTIMES.indexOf(rt)}`
      const id = `rt${RUNTIMES.indexOf(rt)}`
      peer.on(channel, 'hello', (data, m) => {
        hellos.set(m.from!, data)
        void peer.signal(channel, 'reply', { to: m.from })
      })
      await peer.join(channel)
      const r = await smoke(rt.cmd(), rt.args([script, server.address, id, channel, rt.pass ?? 'default']))
      expect(r.code, `exit ${r.code} ${r.signal ?? ''}\n${r.stderr}`).toBe(0)
      expect(r.result.version).toMatch(rt.version)
      expect(hellos.get(id)).toEqual({ runtime: r.result.runtime }) // their signal reached us
      expect(r.result.got).toEqual({ data: { to: id }, from: 'peer' }) // and ours reached them
      expect(r.result.instances).toEqual(['peer', id].sort())
      // The WebSocket used: the runtime's standard one wherever it has one, ws on Node 20 (or when passed).
      expect(r.result.counts).toEqual(rt.uses === 'ws' ? { standard: 0, ws: 1 } : { standard: 1, ws: 0 })
      expect(r.exitAfterMs, 'the process kept running after close()').toBeLessThan(5000)
      console.log(`${rt.name}: ${r.result.runtime} ${r.result.version}, ${rt.uses === 'ws' ? 'ws' : 'the standard WebSocket'}, exited ${Math.round(r.exitAfterMs)} ms after close()`)
    },
    30_000,
  )
})
