/** `sock listen <channel> [--json] [--out DIR]`: one line per message on stdout, for piping into other tools. */
import { mkdirSync, statSync, writeFileSync } from 'node:fs'
import { basename, extname, join, resolve } from 'node:path'
import type { SockFile, SockMessage } from '../client'
import { channelArg, clean, CLIENT_HELP, CLIENT_OPTIONS, CliError, connect, describe, EXIT, makeClient, positional, usageError, type Command } from './common'

export const listen: Command = {
  name: 'listen',
  summary: 'print every message of a channel, one per line (--json for JSON lines)',
  help: `Usage: sock listen <channel> [--json] [--out DIR] [options]

Joins <channel> and prints one line per message on stdout until interrupted:
  <from>: <text>                          a text message
  <from> sent file <name> (<size> bytes)  a file (saved into DIR with --out)
  <from> <event>: <json>                  any other event
With --json every line is {"channel","event","from","data"}; a file's data is
{"name","size"} plus "path" once saved. Connection changes go to stderr; after a
lost connection it reconnects.

Options:
      --json           print JSON lines
  -o, --out <dir>      save received files into <dir> (created if missing; never overwrites)
${CLIENT_HELP}`,
  options: { ...CLIENT_OPTIONS, json: { type: 'boolean' }, out: { type: 'string', short: 'o' } },
  async run(values, positionals) {
    const [ch] = positional(listen, positionals, ['channel'])
    const channel = channelArg(ch!)
    const out = values.out === undefined ? undefined : outDir(values.out as string)
    const json = values.json === true
    const setup = makeClient(values)
    const { client } = setup
    const status = (line: string) => process.stderr.write(`${line}\n`)

    client.on(channel, (event: string, m: SockMessage) => {
      let data: unknown = m.data
      let line: string
      if (event === 'file' && isFile(m.data)) {
        const f = m.data
        const info: { name: string; size: number; path?: string } = { name: f.name, size: f.size }
        if (out) {
          try {
            info.path = save(out, f)
          } catch (e) {
            status(`could not save file '${clean(f.name)}' from ${clean(m.from)}: ${(e as Error).message}`)
          }
        }
        data = info
        line = `${clean(m.from)} sent file ${clean(f.name)} (${f.size} bytes)${info.path ? ` saved as ${clean(info.path)}` : ''}`
      } else if (event === 'message' && typeof m.data === 'string') {
        line = `${clean(m.from)}: ${clean(m.data)}`
      } else {
        line = `${clean(m.from)} ${clean(event)}: ${clean(JSON.stringify(m.data) ?? 'null')}`
      }
      process.stdout.write(`${json ? JSON.stringify({ channel: m.channel, event, from: m.from, data }) : line}\n`)
    })

    await connect(setup, channel)
    status(`listening on channel '${channel}' as ${client.idOf(channel)} at ${setup.address}`)

    return new Promise<number>((done) => {
      const stop = (code: number) => {
        client.close()
        done(code)
      }
      client.on('socket', (event, info) => {
        if (event === 'error' && info.error?.code === 'ERR_REJECTED') {
          status(`sock listen: ${info.error.message}`)
          return stop(EXIT.rejected)
        }
        const s = describe(event, info, client.idOf(channel))
        if (s) status(s)
      })
      process.once('SIGINT', () => stop(0))
      process.once('SIGTERM', () => stop(0))
      process.stdout.on('error', () => stop(0)) // the reader went away (| head): done
    })
  },
}

function isFile(v: unknown): v is SockFile {
  const f = v as SockFile | null
  return !!f && typeof f.name === 'string' && f.bytes instanceof Uint8Array
}

function outDir(dir: string): string {
  const abs = resolve(dir)
  try {
    mkdirSync(abs, { recursive: true })
    if (!statSync(abs).isDirectory()) throw new Error('not a directory')
  } catch (e) {
    throw usageError(`cannot use --out '${clean(dir)}': ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}; pass a writable directory`)
  }
  return abs
}

/** Saves a received file under its base name inside `dir`, never outside it and never over an existing file. */
function save(dir: string, f: SockFile): string {
  let name = basename(f.name.replace(/\\/g, '/')).replace(/[\x00-\x1f\x7f]/g, '_')
  if (name === '' || name === '.' || name === '..') name = 'file'
  const ext = extname(name)
  const stem = name.slice(0, name.length - ext.length) || name
  for (let n = 0; ; n++) {
    const path = join(dir, n === 0 ? name : `${stem}-${n}${ext}`)
    try {
      writeFileSync(path, f.bytes, { flag: 'wx' })
      return path
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST' || n > 1000) throw new CliError((e as Error).message)
    }
  }
}
