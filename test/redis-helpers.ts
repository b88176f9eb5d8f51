// A real redis-server on loopback for the scale-out tests.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { createServer } from 'node:net'

/** A loopback port that was free a moment ago. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const a = s.address()
      s.close(() => resolve(typeof a === 'object' && a ? a.port : 0))
    })
  })
}

/** A real redis-server on `port` (in memory only); resolves once it accepts connections. */
export function startRedis(port: number, extra: string[] = []): Promise<ChildProcess> {
  if (spawnSync('redis-server', ['--version']).error) {
    throw new Error('redis-server is not installed: these tests need a real one (apt-get install -y redis-server; .ci/run installs it)')
  }
  const p = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', ...extra], { stdio: ['ignore', 'pipe', 'pipe'] })
  return new Promise((resolve, reject) => {
    let out = ''
    p.stdout!.on('data', (d: Buffer) => {
      out += d.toString()
      if (out.includes('Ready to accept connections')) resolve(p)
    })
    p.once('exit', (code) => reject(new Error(`redis-server exited (${code}) before it was ready:\n${out}`)))
  })
}

export function stopRedis(p: ChildProcess): Promise<void> {
  if (p.exitCode !== null || p.signalCode !== null) return Promise.resolve()
  return new Promise((r) => {
    p.once('exit', () => r())
    p.kill('SIGKILL')
  })
}

/** The Redis URLs whose password (SECRET) `sock serve` must never print; `dead` has no Redis, `live` has one. */
export function secretUrls(dead: number, live: number): string[] {
  const S = SECRET
  return [
    `redis://:${S}/x@127.0.0.1:${dead}`, // a '/' in the password: the URL does not parse
    `redis://:p@${S}@127.0.0.1:${dead}`, // an '@'
    `redis://u:${S}:x@127.0.0.1:${dead}`, // a ':'
    `redis://:${S}%zz@127.0.0.1:${dead}`, // a bad escape
    `redis://:${S}%40x@127.0.0.1:${dead}`, // an escaped '@'
    `rediss://:${S}@127.0.0.1:${dead}`,
    `redis://user:${S}@127.0.0.1:${dead}`,
    `redis://${S}@127.0.0.1:${dead}`, // a lone userinfo, which some tools read as the password
    `redis://127.0.0.1:${live}/?password=${S}`, // reaches Redis (it needs no password): the banner
    `redis://127.0.0.1:${dead}/0?db=1&password=${S}`,
    `redis:${S}@127.0.0.1`, // no '//'
    `http://:${S}@127.0.0.1:${dead}?password=${S}`,
    `redis://:${S}@[::1`, // no closing bracket
    `redis://u:1/${S}@127.0.0.1:${dead}`, // parses, with the password read as a port and a path
  ]
}
/** The password in `secretUrls()`: output must not match /hunter2|sEcret/i (any case, any part of it). */
export const SECRET = 'hunter2sEcret'
