// Random HTTP requests and upgrades, byte for byte over raw TCP, at one embedded server in its own process: each
// gets a well-formed status line, the process never throws, and real clients still join and relay after.
import { spawn, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { client, closeAll, waitFor } from './helpers'
import { rawRequest } from './raw-http'

let child: ChildProcess
let port = 0
let stderr = ''

beforeAll(async () => {
  const script = fileURLToPath(new URL('./fixtures/sock-node.mjs', import.meta.url))
  child = spawn(process.execPath, [script, JSON.stringify({ pingWindow: 60_000 })], { stdio: ['ignore', 'pipe', 'pipe'] })
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()))
  port = await new Promise<number>((resolve, reject) => {
    let out = ''
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString()
      if (out.includes('\n')) resolve(JSON.parse(out.split('\n')[0]!).port)
    })
    child.once('exit', (code) => reject(new Error(`server exited (${code}): ${stderr}`)))
  })
})

afterAll(async () => {
  await closeAll()
  child?.kill('SIGKILL')
})

/** Characters a line may hold: anything but CR and LF (a request Node waits on for more is not one it can answer). */
const noLineBreak = (s: string) => s.replace(/[\r\n]/g, '')

const piece = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom('chat', 'room42', 'a', 'chat?id=alice', 'chat?id=bob&token=demo', 'chat/alice', 'chat/') },
  fc.constantFrom(
    '%',
    '%zz',
    '%00',
    '%C0%AF',
    '%E0%A4%A',
    '%2F',
    '%2e%2e',
    '..',
    '/',
    '//',
    '?',
    '&',
    '=',
    '#',
    ';',
    'id=',
    'token=',
    'id=a&id=b',
    'token=demo&token=x',
    'chat',
    'é',
    '\u00ff',
    '\u{1F600}',
    '\u0000',
    '\u0001',
    '\u007f',
    '\u001b',
    '\t',
    ' ',
    '\\',
  ),
  fc.stringMatching(/^[A-Za-z0-9]{1,12}$/),
  fc.string({ unit: 'binary', maxLength: 12 }).map(noLineBreak),
)
const target = fc.oneof(
  {
    weight: 8,
    arbitrary: fc
      .tuple(fc.constantFrom('/', '//', '/channel/', '/channel/', '/api/channel/', '/api/', 'http://127.0.0.1/', 'http://x/channel/', '', '*', 'x'), fc.array(piece, { maxLength: 4 }))
      .map(([p, rest]) => p + rest.join('')),
  },
  { weight: 1, arbitrary: fc.constantFrom('//', '/channel/%', '/channel/chat?id=a&id=a', `/${'a'.repeat(20_000)}`, `/channel/${'a'.repeat(300)}`, `/api/channel/${'%zz'.repeat(1000)}`) },
)
const method = fc.oneof(
  { weight: 12, arbitrary: fc.constantFrom('GET', 'GET', 'GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'OPTIONS', 'PATCH', 'TRACE', 'CONNECT', 'PROPFIND') },
  { weight: 1, arbitrary: fc.stringMatching(/^[A-Z]{1,10}$/) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 8 }).map(noLineBreak) },
)
const header = fc.tuple(
  fc.oneof(
    {
      weight: 8,
      arbitrary: fc.constantFrom(
        'Upgrade',
        'Connection',
        'Sec-WebSocket-Key',
        'Sec-WebSocket-Version',
        'Sec-WebSocket-Protocol',
        'Sec-WebSocket-Extensions',
        'Host',
        'Content-Length',
        'Transfer-Encoding',
        'Expect',
        'Origin',
        'X-Big',
      ),
    },
    { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 10 }).map(noLineBreak) },
  ),
  fc.oneof(
    {
      weight: 8,
      arbitrary: fc.constantFrom(
        'websocket',
        'Upgrade',
        'upgrade, keep-alive',
        '13',
        '8',
        '12',
        '',
        'dGhlIHNhbXBsZSBub25jZQ==',
        'abc',
        'chunked',
        '100-continue',
        '0',
        '-1',
        '99999999999999999999',
        'a'.repeat(20_000),
      ),
    },
    { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 20 }).map(noLineBreak) },
  ),
)
const request = fc.record({
  method,
  target,
  version: fc.oneof({ weight: 12, arbitrary: fc.constant('HTTP/1.1') }, fc.constantFrom('HTTP/1.0', 'HTTP/2.0', 'HTTP/1.1 x', '')),
  upgrade: fc.boolean(),
  headers: fc.array(header, { maxLength: 3 }),
})

/** Near-valid joins and REST calls, so that the routes past the parser (101, 1008, 404, 405) get their share. */
const nearValid = fc.record({
  method: fc.constantFrom('GET', 'GET', 'GET', 'HEAD', 'POST', 'OPTIONS'),
  target: fc
    .tuple(
      fc.constantFrom('/channel/', '/api/channel/'),
      fc.oneof(fc.stringMatching(/^[A-Za-z0-9]{1,8}$/), piece),
      fc.array(fc.oneof(piece, fc.constantFrom('?id=', '&id=', '?token=demo', '&token=', '/')), { maxLength: 3 }),
    )
    .map(([p, name, rest]) => p + name + rest.join('')),
  version: fc.constant('HTTP/1.1'),
  upgrade: fc.boolean(),
  headers: fc.array(header, { maxLength: 1 }),
})
const anyRequest = fc.oneof(request, nearValid)

type Req = typeof request extends fc.Arbitrary<infer T> ? T : never

function bytes(r: Req): Buffer {
  const lines = [`${r.method} ${r.target} ${r.version}`.trimEnd(), 'Host: 127.0.0.1']
  if (r.upgrade) lines.push('Upgrade: websocket', 'Connection: Upgrade', 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==', 'Sec-WebSocket-Version: 13')
  for (const [name, value] of r.headers) lines.push(`${name}: ${value}`)
  return Buffer.from(`${lines.join('\r\n')}\r\n\r\n`)
}

describe('server fuzz: random requests over raw TCP', () => {
  it('answers every request with a well-formed status line, and keeps serving', async () => {
    const statuses = new Map<number, number>()
    await fc.assert(
      fc.asyncProperty(anyRequest, async (r) => {
        const a = await rawRequest(port, bytes(r), { untilHead: true, timeout: 4000 })
        // Every request here is complete, so Node can always answer it (400 at worst): a close without an answer
        // is a silent drop (it found CONNECT, which Node closes unanswered unless the server listens for it).
        if (a.status === undefined || !/^HTTP\/1\.1 [1-5]\d\d [^\r\n]*\r\n/.test(a.text)) throw new Error(`answer ${JSON.stringify(a.text.slice(0, 200))} (closed: ${a.closed})`)
        statuses.set(a.status, (statuses.get(a.status) ?? 0) + 1)
        expect(child.exitCode).toBeNull()
      }),
      { numRuns: 500 },
    )
    console.log('answers:', Object.fromEntries([...statuses].sort()))
    expect(child.exitCode).toBeNull()
    expect(stderr).toBe('')
    // A real client still joins and relays.
    const a = client()
    const b = client()
    a.setup(`127.0.0.1:${port}`)
    b.setup(`127.0.0.1:${port}`)
    const got: string[] = []
    b.on('after', 'message', (text: string) => got.push(text))
    await Promise.all([a.join('after'), b.join('after')])
    await a.signal('after', 'message', 'still serving')
    await waitFor(() => got.includes('still serving'), 5000, 'the relayed message')
  })
})
