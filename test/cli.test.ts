// The `sock` command line, driven as a subprocess (the rollup-built dist/cli.js) against real servers on loopback.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { ReplyCode, ReplyError, SockClient } from '../src'
import { createSockServer } from '../src/server'
import { closeAll, rawPeer, startServer, waitFor } from './helpers'
import { freePort, secretUrls, startRedis, stopRedis } from './redis-helpers'

const CLI = fileURLToPath(new URL('../dist/cli.js', import.meta.url))
const WAIT = 15_000

interface Proc {
  child: ChildProcessWithoutNullStreams
  out: string
  err: string
  exit: Promise<number | null>
  /** Resolves with the first match of `re` in stdout (or stderr). */
  waitOut(re: RegExp): Promise<RegExpMatchArray>
  waitErr(re: RegExp): Promise<RegExpMatchArray>
  write(line: string): void
}

const procs = new Set<Proc>()
const clients: SockClient[] = []
let tmp: string

/** Starts `sock <args>`; SOCK_TOKEN is not inherited unless `env` sets it. */
function start(args: string[], env: Record<string, string> = {}): Proc {
  const e = { ...process.env, ...env }
  if (!('SOCK_TOKEN' in env)) delete e.SOCK_TOKEN
  const child = spawn(process.execPath, [CLI, ...args], { env: e })
  const p: Proc = {
    child,
    out: '',
    err: '',
    exit: new Promise((resolve) => child.on('close', (code) => resolve(code))),
    waitOut: (re) => waitFor(() => p.out.match(re), WAIT, `stdout ${re} (stdout: ${JSON.stringify(p.out)}, stderr: ${JSON.stringify(p.err)})`),
    waitErr: (re) => waitFor(() => p.err.match(re), WAIT, `stderr ${re} (stdout: ${JSON.stringify(p.out)}, stderr: ${JSON.stringify(p.err)})`),
    write: (line) => child.stdin.write(`${line}\n`),
  }
  child.stdout.setEncoding('utf8').on('data', (d: string) => (p.out += d))
  child.stderr.setEncoding('utf8').on('data', (d: string) => (p.err += d))
  procs.add(p)
  void p.exit.then(() => procs.delete(p))
  return p
}

/** Runs `sock <args>` to completion (stdin closed, or fed `input`). */
async function run(args: string[], env: Record<string, string> = {}, input?: string): Promise<{ code: number | null; out: string; err: string }> {
  const p = start(args, env)
  p.child.stdin.end(input)
  const code = await p.exit
  return { code, out: p.out, err: p.err }
}

/** A frame a sock-client sent for the application: not its presence announcement (docs/protocol-presence.md). */
const sent = (f: any) => !(f?.type === 7 && String(f.data).includes('"sock:presence"'))

/** A failure: exactly one line on stderr, no stack trace, nothing on stdout. */
function oneLine(r: { out: string; err: string }): string {
  expect(r.err.endsWith('\n')).toBe(true)
  expect(r.err.trimEnd().split('\n')).toHaveLength(1)
  expect(r.err).not.toMatch(/\n\s+at /)
  expect(r.out).toBe('')
  return r.err
}

function peer(url: string, id?: string): SockClient {
  const c = new SockClient({ id })
  c.setup(url)
  clients.push(c)
  return c
}

/** A loopback port nothing listens on. */
async function deadPort(): Promise<number> {
  const s = await createSockServer({ port: 0 })
  const port = s.port
  await s.close()
  return port
}

beforeAll(() => {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run 'npm run build' first (npm test does)`)
  tmp = mkdtempSync(join(tmpdir(), 'sock-cli-'))
})

afterAll(() => rmSync(tmp, { recursive: true, force: true }))

afterEach(async () => {
  for (const c of clients.splice(0)) c.close()
  for (const p of procs) p.child.kill('SIGKILL')
  await Promise.all([...procs].map((p) => p.exit))
  await closeAll()
})

describe('sock: package and help', () => {
  it('is an executable ESM file with a shebang, the package bin, and stays out of the core bundles', () => {
    const src = readFileSync(CLI, 'utf8')
    expect(src.startsWith('#!/usr/bin/env node\n')).toBe(true)
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'))
    expect(pkg.bin).toEqual({ sock: 'dist/cli.js' }) // the form npm publish keeps (it drops './dist/cli.js' as invalid)
    for (const f of ['index.js', 'index.cjs', 'server.js', 'sock-client.umd.min.js']) {
      const core = readFileSync(new URL(`../dist/${f}`, import.meta.url), 'utf8')
      expect(core).not.toContain('node:readline')
      expect(core).not.toContain('sock serve')
    }
  })

  it('prints help for sock and for every command, exit 0; no command prints usage with exit 2', async () => {
    const cmds = ['serve', 'chat', 'send', 'request', 'file', 'listen', 'list']
    const [top, none, version, ...each] = await Promise.all([run(['--help']), run([]), run(['--version']), ...cmds.map((c) => run([c, '--help']))])
    expect(top.code).toBe(0)
    for (const c of cmds) expect(top.out).toContain(`  ${c} `)
    expect(top.out).toContain('SOCK_TOKEN')
    expect(none.code).toBe(2)
    expect(none.err).toContain('Usage: sock <command>')
    expect(version.out.trim()).toBe(JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')).version)
    each.forEach((r, i) => {
      expect(r.code).toBe(0)
      expect(r.out).toContain(`Usage: sock ${cmds[i]}`)
    })
    expect(each[0]!.out).toContain('--no-cors')
    expect(each[1]!.out).toContain('file <path>')
  })
})

describe('sock serve', () => {
  it('prints its real address for --port 0, logs connects, disconnects and rejections without the token, stops on SIGTERM', async () => {
    const serve = start(['serve', '--port', '0', '--token', 's3cretTok'])
    const [, address] = await serve.waitOut(/listening on ws:\/\/(127\.0\.0\.1:\d+)/)
    expect(address).not.toMatch(/:0$/)
    const sent = await run(['send', 'chat', 'hi', '--url', address!, '--id', 'bob', '--token', 's3cretTok'])
    expect(sent.code).toBe(0)
    await serve.waitOut(/connect chat\/bob\n/)
    await serve.waitOut(/disconnect chat\/bob \(1000\)/)
    const bad = await run(['send', 'chat', 'hi', '--url', address!], { SOCK_TOKEN: 'wrongTok' })
    expect(bad.code).toBe(3)
    await serve.waitOut(/reject chat: invalid token/)
    // A REST route answers with CORS headers by default.
    const res = await fetch(`http://${address}/api/channel/chat`)
    expect(res.headers.get('access-control-allow-origin')).toBe('*')
    serve.child.kill('SIGTERM')
    expect(await serve.exit).toBe(0)
    expect(serve.out).toMatch(/SIGTERM: closing\nclosed\n$/)
    expect(serve.out + serve.err).not.toContain('s3cretTok')
    expect(serve.err).toBe('')
  })

  it('closes connected clients on SIGINT, honours --no-cors and --host', async () => {
    const serve = start(['serve', '-p', '0', '--host', '127.0.0.1', '--no-cors', '--ping-window', '30s'])
    const [, address] = await serve.waitOut(/listening on ws:\/\/(127\.0\.0\.1:\d+)/)
    const res = await fetch(`http://${address}/api/channel/chat`)
    expect(res.status).toBe(404)
    expect(res.headers.get('access-control-allow-origin')).toBeNull()
    const raw = await rawPeer(`ws://${address}/channel/chat?id=dave`)
    await serve.waitOut(/connect chat\/dave/)
    serve.child.kill('SIGINT')
    expect((await raw.closed).code).toBe(1001)
    expect(await serve.exit).toBe(0)
    expect(serve.out).toMatch(/disconnect chat\/dave \(1001\)/)
  })

  it('logs an id taken over from a stale instance, and a long refused channel name cut short', async () => {
    const serve = start(['serve', '--port', '0', '--ping-window', '300ms'])
    const [, address] = await serve.waitOut(/listening on ws:\/\/(127\.0\.0\.1:\d+)/)
    await rawPeer(`ws://${address}/channel/chat?id=zed`) // never pings: stale after 300 ms
    await new Promise((r) => setTimeout(r, 700))
    const again = await rawPeer(`ws://${address}/channel/chat?id=zed`)
    await serve.waitOut(/replace chat\/zed \(stale\)\n/)
    again.close()
    await rawPeer(`ws://${address}/channel/${'x-'.repeat(5000)}`)
    const [line] = await serve.waitOut(/reject x-x-[^\n]*\n/)
    expect(line!.length).toBeLessThan(200)
  })

  it('fails with one line for bad options, a port in use and an unreachable Redis (password hidden)', async () => {
    const busy = await startServer()
    const results = await Promise.all([
      run(['serve', '--port', 'abc']),
      run(['serve', '--port', '70000']),
      run(['serve', '--cors', '--no-cors']),
      run(['serve', '--ping-window', 'soon']),
      run(['serve', '--limit', '10']),
      run(['serve', 'extra']),
      run(['serve', '--redis', 'http://x']),
      run(['serve', '--port', String(busy.port)]),
      run(['serve', '--port', '0', '--redis', `redis://:hunter22@127.0.0.1:${await deadPort()}`]),
    ])
    const [port, range, cors, ping, limit, extra, redisUrl, inUse, redisDown] = results
    for (const r of results.slice(0, 7)) expect(r.code).toBe(2)
    expect(oneLine(redisUrl!)).toContain('invalid --redis')
    expect(redisDown!.code).toBe(1)
    expect(oneLine(redisDown!)).toMatch(/^sock serve: cannot reach Redis at redis:\/\/:\*\*\*@127\.0\.0\.1:\d+/)
    expect(oneLine(port!)).toMatch(/^sock serve: invalid --port 'abc': use an integer from 0 to 65535/)
    expect(oneLine(range!)).toContain('invalid --port')
    expect(oneLine(cors!)).toContain('--cors and --no-cors')
    expect(oneLine(ping!)).toContain('use a duration such as 60s')
    expect(oneLine(limit!)).toContain('invalid --limit')
    expect(oneLine(extra!)).toContain("unexpected argument 'extra'")
    expect(inUse.code).toBe(1)
    expect(oneLine(inUse)).toMatch(/is in use: pick another port/)
  })
})

describe('sock serve: secrets', () => {
  it('prints no Redis password (nor the token) in a banner, a log line or an error, whatever the URL (flag or SOCK_REDIS_URL)', async () => {
    const live = await freePort()
    const redis = await startRedis(live)
    try {
      const urls = secretUrls(await deadPort(), live)
      // Every URL as --redis; every other one through SOCK_REDIS_URL too (the same code path after the first line).
      const runs = urls.flatMap((url, i) => [
        { url, args: ['serve', '--port', '0', '--token', 'tokHunter2', '--redis', url], env: {} as Record<string, string> },
        ...(i % 2 ? [] : [{ url, args: ['serve', '--port', '0'], env: { SOCK_REDIS_URL: url, SOCK_TOKEN: 'envHunter2' } }]),
      ])
      const outputs: { url: string; out: string; code: number | null }[] = []
      for (let i = 0; i < runs.length; i += 11) {
        outputs.push(
          ...(await Promise.all(
            runs.slice(i, i + 11).map(async ({ url, args, env }) => {
              const p = start(args, env)
              // It either refuses the URL and exits, or listens: then it is stopped.
              const up = setInterval(() => p.out.includes('listening on') && p.child.kill('SIGTERM'), 20)
              const code = await p.exit
              clearInterval(up)
              return { url, out: p.out + p.err, code }
            }),
          )),
        )
      }
      // Before: 6 of these 14 showed the password: a lone userinfo, `?password=` (banner and error), no '//', a wrong
      // scheme with a query, the password read as a port and a path.
      expect(outputs.filter((o) => /hunter2|sEcret/i.test(o.out)).map((o) => `${o.url} -> ${o.out.trim()}`)).toEqual([])
      // Every one of them said something: a banner or one error line naming the URL, redacted.
      for (const { url, out } of outputs) expect(out, url).toMatch(/listening on .*token required, sharing channels through redis:\/\/127\.0\.0\.1:\d+\/\?password=\*\*\*|^sock serve: /)
      expect(outputs.filter((o) => o.out.includes('listening on'))).toHaveLength(runs.filter((r) => r.url.includes(`:${live}/`)).length)
    } finally {
      await stopRedis(redis)
    }
  })
})

describe('sock request', () => {
  it('prints the reply as JSON (nothing for a fast reply); a failure reply, a timeout, no server and bad arguments exit 1 or 2 with one line', async () => {
    const s = await startServer()
    const bob = peer(s.address, 'bob')
    bob.handle('jobs', 'resize', (d: { w: number }) => {
      if (d.w > 100) throw new ReplyError(ReplyCode.BadRequest, 'too wide')
      return { url: `/${d.w}.png`, note: 'é "q"' }
    })
    bob.handle('jobs', 'ping', () => {})
    await bob.join('jobs')
    const ok = await run(['request', 'jobs', 'resize', '{"w":2}', '--to', 'bob', '--url', s.address])
    expect(ok).toEqual({ code: 0, out: `${JSON.stringify({ url: '/2.png', note: 'é "q"' })}\n`, err: '' })
    expect(await run(['request', 'jobs', 'ping', '--url', s.address])).toEqual({ code: 0, out: '', err: '' })
    const failed = await run(['request', 'jobs', 'resize', '{"w":200}', '--url', s.address])
    expect(failed.code).toBe(1)
    expect(oneLine(failed)).toMatch(/^sock request: bob answered with code 4 \(BadRequest\): too wide\n$/)
    const none = await run(['request', 'jobs', 'nothing', '--to', 'bob', '--url', s.address])
    expect(oneLine(none)).toMatch(/code 2 \(NoHandler\)/)
    const slow = await run(['request', 'jobs', 'nobody', '--timeout', '300ms', '--url', s.address])
    expect(slow.code).toBe(1)
    expect(oneLine(slow)).toMatch(/no reply to 'nobody' on 'jobs' within 300 ms/)
    const dead = await run(['request', 'jobs', 'ping', '--url', `127.0.0.1:${await deadPort()}`])
    expect(dead.code).toBe(1)
    expect(oneLine(dead)).toMatch(/cannot reach a Sock server/)
    for (const [args, re] of [
      [['request', 'jobs', 'x', '{bad'], /invalid \[json\]/],
      [['request', 'jobs', 'x', '--timeout', 'soon'], /invalid --timeout 'soon'/],
      [['request', 'jobs'], /missing <event>/],
      [['request', 'jobs', 'x', '1', 'extra'], /unexpected argument 'extra'/],
      [['request', 'jobs', 'x', '--to', 'no-id'], /invalid --to/],
    ] as [string[], RegExp][]) {
      const r = await run(args)
      expect(r.code, args.join(' ')).toBe(2)
      expect(oneLine(r)).toMatch(re)
    }
  })
})

describe('sock send / listen', () => {
  it('listen --json prints one JSON line per message, events included; send exits 0 once written', async () => {
    const s = await startServer()
    const listen = start(['listen', 'chat', '--url', s.address, '--json', '--id', 'lou'])
    await listen.waitErr(/listening on channel 'chat' as lou at 127\.0\.0\.1:\d+/)
    const a = await run(['send', 'chat', 'hello "there"\nline 2 \u00e9', '--url', s.address, '--id', 'bob'])
    expect(a).toEqual({ code: 0, out: '', err: '' })
    const b = await run(['send', 'chat', 'second', '--url', `ws://${s.address}`])
    expect(b.code).toBe(0)
    const sdk = peer(s.address, 'eve')
    await sdk.join('chat')
    await sdk.signal('chat', 'cursor', { x: 1, y: [2, 3] })
    await listen.waitOut(/cursor.*\n/)
    const lines = listen.out
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l))
    expect(lines[0]).toEqual({ channel: 'chat', event: 'message', from: 'bob', data: 'hello "there"\nline 2 \u00e9' })
    expect(lines[1]).toMatchObject({ channel: 'chat', event: 'message', data: 'second' })
    expect(lines[1].from).toMatch(/^[A-Za-z0-9]{12}$/)
    expect(lines[2]).toEqual({ channel: 'chat', event: 'cursor', from: 'eve', data: { x: 1, y: [2, 3] } })
    expect(lines).toHaveLength(3)
    listen.child.kill('SIGINT')
    expect(await listen.exit).toBe(0)
  })

  it('listen prints plain lines with control characters escaped, and files by name and size', async () => {
    const s = await startServer()
    const listen = start(['listen', 'room1', '-u', s.address])
    await listen.waitErr(/listening on channel 'room1'/)
    const raw = await rawPeer(`${s.url}/channel/room1?id=mal`)
    raw.send({ type: 1, data: 'two\nlines \u001b[31mred' })
    raw.send({ type: 2, data: `a.txt:${Buffer.from('abc').toString('base64')}` })
    await listen.waitOut(/a\.txt/)
    expect(listen.out).toBe('mal: two\\nlines \\u001b[31mred\nmal sent file a.txt (3 bytes)\n')
  })

  it('send of a long text goes through (chunked beyond one frame)', async () => {
    const s = await startServer()
    const listen = start(['listen', 'chat', '--url', s.address, '--json'])
    await listen.waitErr(/listening on/)
    const text = 'x'.repeat(5000)
    expect((await run(['send', 'chat', text, '--url', s.address])).code).toBe(0)
    const [line] = await listen.waitOut(/.*\n/)
    expect(JSON.parse(line!).data).toBe(text)
  })
})

describe('sock --verbose', () => {
  it('prints the debug log on stderr, one clean line per step, never the token; stdout keeps only messages', async () => {
    const s = await startServer({ token: 'verboseTok' })
    const listen = start(['listen', 'chat', '--url', s.address, '--json', '--verbose', '--token', 'verboseTok'])
    await listen.waitErr(/listening on channel 'chat'/)
    const a = await run(['send', 'chat', 'hello', '--url', s.address, '--verbose'], { SOCK_TOKEN: 'verboseTok' })
    expect(a.code).toBe(0)
    expect(a.out).toBe('')
    const lines = a.err.trimEnd().split('\n')
    for (const l of lines) expect(l).toMatch(/^sock: \d\d:\d\d:\d\d\.\d{3} chat 127\.0\.0\.1:\d+ (connect|probe|open|send|close)\b/)
    const steps = lines.map((l) => l.split(' ')[4])
    expect(steps.slice(0, 3)).toEqual(['connect', 'probe', 'open'])
    expect(steps.at(-1)).toBe('close')
    expect(steps.slice(3, -1)).toEqual(['send', 'send', 'send']) // the presence announcement, the message, the leave announcement
    const [line] = await listen.waitOut(/.*\n/)
    expect(JSON.parse(line!)).toMatchObject({ event: 'message', data: 'hello' }) // stdout: the message alone
    await listen.waitErr(/ receive \{"type":1/)
    expect(listen.err).toMatch(/ chat 127\.0\.0\.1:\d+ open \{"id":"[A-Za-z0-9]+"\}/)
    expect(a.err + listen.err + listen.out).not.toContain('verboseTok')
    listen.child.kill('SIGINT')
    expect(await listen.exit).toBe(0)
    // without --verbose, none of it
    const quiet = await run(['send', 'chat', 'again', '--url', s.address, '--token', 'verboseTok'])
    expect(quiet).toEqual({ code: 0, out: '', err: '' })
  })
})

describe('sock list', () => {
  it('prints the instances as a table and as JSON; an empty channel prints [] or nothing', async () => {
    const s = await startServer()
    const a = peer(s.address, 'alice')
    const b = peer(s.address, 'bob')
    await a.join('chat')
    await b.join('chat')
    const [table, json, empty, emptyTable] = await Promise.all([
      run(['list', 'chat', '--url', s.address]),
      run(['list', 'chat', '--url', s.address, '--json']),
      run(['list', 'nobody', '--url', s.address, '--json']),
      run(['list', 'nobody', '--url', s.address]),
    ])
    expect(table.code).toBe(0)
    const rows = table.out.trimEnd().split('\n')
    expect(rows[0]).toMatch(/^ID\s+CREATED$/)
    expect(
      rows
        .slice(1)
        .map((r) => r.split(/\s+/)[0])
        .sort(),
    ).toEqual(['alice', 'bob'])
    for (const r of rows.slice(1)) expect(r).toMatch(/^\w+\s+\d{4}-\d\d-\d\dT[\d:.]+Z$/)
    const list = JSON.parse(json.out)
    expect(list.map((i: any) => i.id).sort()).toEqual(['alice', 'bob'])
    for (const i of list) {
      expect(Object.keys(i)).toEqual(['channel', 'id', 'created_at'])
      expect(i.channel).toBe('chat')
      expect(Number.isNaN(Date.parse(i.created_at))).toBe(false)
    }
    expect(empty).toEqual({ code: 0, out: '[]\n', err: '' })
    expect(emptyTable.code).toBe(0)
    expect(emptyTable.out).toBe('')
    expect(emptyTable.err).toContain("nobody is in channel 'nobody'")
  })
})

describe('sock file', () => {
  it('sends small (type 2, as sockc) and large (chunked) files that listen --out saves byte-identical', async () => {
    const s = await startServer()
    const out = join(tmp, 'recv')
    const listen = start(['listen', 'files', '--url', s.address, '--out', out, '--json'])
    await listen.waitErr(/listening on/)
    const sockc = await rawPeer(`${s.url}/channel/files?id=sockc`)
    const small = join(tmp, 'small.txt')
    const big = join(tmp, 'big.bin')
    writeFileSync(small, 'hello file\n')
    writeFileSync(big, randomBytes(200_000))
    const r1 = await run(['file', 'files', small, '--url', s.address])
    expect(r1).toEqual({ code: 0, out: "sent small.txt (11 bytes) to channel 'files'\n", err: '' }) // piped: no progress bar
    expect(await sockc.next((f) => f.type === 2, WAIT)).toMatchObject({ type: 2, data: `small.txt:${Buffer.from('hello file\n').toString('base64')}` })
    const r2 = await run(['file', 'files', big, '--url', s.address])
    expect(r2.code).toBe(0)
    expect(r2.err).toBe('')
    // The same name again is saved next to the first, never over it.
    expect((await run(['file', 'files', small, '--url', s.address])).code).toBe(0)
    await listen.waitOut(/(.*\n){3}/)
    const lines = listen.out
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l))
    expect(lines.map((l) => [l.event, l.data.name, l.data.size])).toEqual([
      ['file', 'small.txt', 11],
      ['file', 'big.bin', 200_000],
      ['file', 'small.txt', 11],
    ])
    expect(lines[0].data.path).toBe(join(out, 'small.txt'))
    expect(lines[2].data.path).toBe(join(out, 'small-1.txt'))
    expect(readFileSync(join(out, 'small.txt')).equals(readFileSync(small))).toBe(true)
    expect(readFileSync(join(out, 'small-1.txt')).equals(readFileSync(small))).toBe(true)
    expect(readFileSync(lines[1].data.path).equals(readFileSync(big))).toBe(true)
  })
})

describe('sock file on a terminal', () => {
  it('draws a progress bar on a TTY (run under script(1), a pseudo-terminal)', async () => {
    const s = await startServer()
    const big = join(tmp, 'tty.bin')
    writeFileSync(big, randomBytes(60_000))
    const child = spawn('script', ['-qec', `'${process.execPath}' '${CLI}' file chat '${big}' --url ${s.address}`, '/dev/null'])
    let out = ''
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d))
    const code = await new Promise((resolve) => child.on('close', resolve))
    expect(code).toBe(0)
    const frames = out.split('\r').filter((f) => f.startsWith('tty.bin ['))
    expect(frames.length).toBeGreaterThan(2)
    expect(frames[0]).toMatch(/^tty\.bin \[-{30}\]\s+0% 0 B \/ 58\.6 KiB/)
    expect(frames.at(-1)).toMatch(/^tty\.bin \[#{30}\] 100% 58\.6 KiB \/ 58\.6 KiB/)
    expect(out).toContain("sent tty.bin (60000 bytes) to channel 'chat'")
  })

  it('chat on a TTY prompts, prints incoming messages above the prompt and quits', async () => {
    const s = await startServer()
    const other = await rawPeer(`${s.url}/channel/room?id=alice`)
    const child = spawn('script', ['-qec', `'${process.execPath}' '${CLI}' chat room --id carol --url ${s.address}`, '/dev/null'])
    let out = ''
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d))
    const closed = new Promise((resolve) => child.on('close', resolve))
    await waitFor(() => out.includes('room> '), WAIT, 'the prompt')
    child.stdin.write('typed line\r')
    expect(await other.next(sent, WAIT)).toEqual({ type: 1, data: 'typed line', from: 'carol' })
    other.send({ type: 1, data: 'hi carol' })
    // The line is cleared, the message printed, and the prompt drawn again.
    await waitFor(() => /\r\x1b\[Kalice: hi carol\r?\n.*room> /.test(out), WAIT, `the message above the prompt in ${JSON.stringify(out)}`)
    child.stdin.write('quit\r')
    expect(await closed).toBe(0)
  })
})

describe('sock chat', () => {
  it('sends lines and commands from stdin, prints incoming messages with their sender, lists, quits', async () => {
    const s = await startServer()
    const other = await rawPeer(`${s.url}/channel/chat?id=alice`)
    const chat = start(['chat', 'chat', '--url', s.address, '--id', 'carol'])
    await chat.waitErr(/joined channel 'chat' as carol/)
    chat.write('hello everyone')
    expect(await other.next(sent, WAIT)).toEqual({ type: 1, data: 'hello everyone', from: 'carol' })
    chat.write('message   yo there')
    expect(await other.next(sent, WAIT)).toEqual({ type: 1, data: 'yo there', from: 'carol' })
    const path = join(tmp, 'note.txt')
    writeFileSync(path, 'a note')
    chat.write(`file ${path}`)
    expect(await other.next(sent, WAIT)).toEqual({ type: 2, data: `note.txt:${Buffer.from('a note').toString('base64')}`, from: 'carol' })
    await chat.waitErr(/sent file note\.txt \(6 bytes\)/)
    other.send({ type: 1, data: 'hi carol' })
    await chat.waitOut(/^alice: hi carol$/m)
    chat.write('list')
    await chat.waitErr(/in 'chat': (alice, carol \(you\)|carol \(you\), alice)/)
    chat.write('file /no/such/file')
    await chat.waitErr(/cannot read file '\/no\/such\/file': ENOENT/)
    chat.write('quit')
    expect(await chat.exit).toBe(0)
    expect(chat.out).toBe('alice: hi carol\n')
  })

  it('sends lines piped in before it connected, then exits 0 at the end of input', async () => {
    const s = await startServer()
    const other = await rawPeer(`${s.url}/channel/chat?id=alice`)
    const r = await run(['chat', 'chat', '--url', s.address], {}, 'one\nmessage two\n')
    expect(r.code).toBe(0)
    expect(r.out).toBe('')
    expect(await other.next(sent, WAIT)).toMatchObject({ type: 1, data: 'one' })
    expect(await other.next(sent, WAIT)).toMatchObject({ type: 1, data: 'two' })
  })

  it('reconnects after the server goes away and comes back, showing the state; end of input sends what was typed', async () => {
    const s = await startServer()
    const port = s.port
    const chat = start(['chat', 'chat', '--url', s.address, '--id', 'carol'])
    await chat.waitErr(/joined channel 'chat' as carol/)
    await s.close({ abrupt: true })
    await chat.waitErr(/connection lost/)
    await chat.waitErr(/reconnecting in [\d.]+ s \(attempt 1\)/)
    const s2 = await startServer({ port })
    await chat.waitErr(/connected again as carol/)
    const other = await rawPeer(`${s2.url}/channel/chat?id=alice`)
    chat.write('back again')
    chat.child.stdin.end()
    expect(await other.next(sent, WAIT)).toEqual({ type: 1, data: 'back again', from: 'carol' })
    expect(await chat.exit).toBe(0)
  })
})

describe('sock: every error path is one line with its exit code', () => {
  it('bad arguments exit 2', async () => {
    const file = join(tmp, 'x.txt')
    writeFileSync(file, 'x')
    const cases: [string[], RegExp][] = [
      [['bogus'], /^sock: unknown command 'bogus': use one of serve, chat, send, request, file, listen, list/],
      [['send', 'chat'], /^sock send: missing <text>: usage: sock send <channel> <text>/],
      [['send'], /^sock send: missing <channel>/],
      [['send', 'chat', 'a', 'b'], /^sock send: unexpected argument 'b'.*quote text/],
      [['send', 'bad-name', 'x'], /^sock send: invalid channel "bad-name": .*letters and digits/],
      [['send', 'chat', 'x', '--bogus'], /^sock send: Unknown option '--bogus': see 'sock send --help'/],
      [['send', 'chat', 'x', '--url'], /^sock send: Option '-u, --url <value>' argument missing: see 'sock send --help'/],
      [['list', 'chat', '--url', 'nope:x'], /^sock list: invalid --url 'nope:x': use host:port/],
      [['listen', 'chat', '--id', 'a b'], /^sock listen: invalid --id 'a b': .*letters and digits/],
      [['listen', 'chat', '--out', file], /^sock listen: cannot use --out '.*x\.txt': \w+; pass a writable directory/],
      [['file', 'chat', join(tmp, 'missing.bin')], /^sock file: cannot read file '.*missing\.bin': ENOENT; pass the path of a readable file/],
      [['file', 'chat', tmp], /^sock file: cannot read file .*: not a regular file/],
      [['chat'], /^sock chat: missing <channel>/],
      [['list', 'chat', '--id', 'me'], /^sock list: Unknown option '--id': see 'sock list --help'/],
      [['send', 'chat', 'x', '--limit', '5'], /^sock send: invalid --limit '5'/],
    ]
    const results = await Promise.all(cases.map(([args]) => run(args)))
    results.forEach((r, i) => {
      expect(r.code, cases[i]![0].join(' ')).toBe(2)
      expect(oneLine(r)).toMatch(cases[i]![1])
    })
  })

  it('an unreachable server exits 1 at once for send, file, list, listen and chat', async () => {
    const url = `127.0.0.1:${await deadPort()}`
    const file = join(tmp, 'y.txt')
    writeFileSync(file, 'y')
    const results = await Promise.all([
      run(['send', 'chat', 'hi', '--url', url]),
      run(['file', 'chat', file, '--url', url]),
      run(['list', 'chat', '--url', url]),
      run(['listen', 'chat', '--url', url]),
      run(['chat', 'chat', '--url', url]),
    ])
    for (const r of results) {
      expect(r.code).toBe(1)
      const line = r.err.trimEnd().split('\n').at(-1)!
      expect(line).toMatch(new RegExp(`^sock \\w+: cannot reach a Sock server at ${url.replace(/\./g, '\\.')} \\(.*ECONNREFUSED.*\\): start one with 'sock serve' or pass --url host:port$`))
      expect(r.err).not.toMatch(/\n\s+at /)
    }
    for (const r of results.slice(0, 4)) oneLine(r)
  })

  it('a rejected token exits 3 naming --token, and never shows the token', async () => {
    const s = await startServer({ token: 'rightTok' })
    const file = join(tmp, 'z.txt')
    writeFileSync(file, 'z')
    const results = await Promise.all([
      run(['send', 'chat', 'hi', '--url', s.address, '--token', 'wrongTok1']),
      run(['file', 'chat', file, '--url', s.address], { SOCK_TOKEN: 'wrongTok2' }),
      run(['listen', 'chat', '--url', s.address, '-t', 'wrongTok3']),
      run(['chat', 'chat', '--url', s.address], { SOCK_TOKEN: 'wrongTok4' }),
      run(['send', 'chat', 'hi', '--url', s.address]),
    ])
    results.forEach((r, i) => {
      expect(r.code).toBe(3)
      const line = r.err.trimEnd().split('\n').at(-1)!
      expect(line).toMatch(/^sock \w+: 127\.0\.0\.1:\d+ rejected channel 'chat': invalid token \(close 1008\): pass the server's token with --token or SOCK_TOKEN$/)
      expect(r.out + r.err).not.toContain(`wrongTok${i + 1}`)
    })
    // With the right token from the environment it works.
    expect((await run(['send', 'chat', 'hi', '--url', s.address], { SOCK_TOKEN: 'rightTok' })).code).toBe(0)
  })

  it('a duplicate id exits 3 naming --id', async () => {
    const s = await startServer()
    await rawPeer(`${s.url}/channel/chat?id=taken`)
    const r = await run(['send', 'chat', 'hi', '--url', s.address, '--id', 'taken'])
    expect(r.code).toBe(3)
    expect(oneLine(r)).toMatch(/duplicate id.*: pick another --id, or omit it/)
  })
})
