/** `sock file <channel> <path>`: sends a file (event `file`), with a progress bar on a terminal. */
import { readFileSync, statSync } from 'node:fs'
import { basename } from 'node:path'
import type { SockClient } from '../full'
import { channelArg, clean, CLIENT_HELP, CLIENT_OPTIONS, connect, explain, formatBytes, makeClient, ONE_SHOT, positional, usageError, type Command } from './common'

export const file: Command = {
  name: 'file',
  summary: 'send a file to a channel and exit',
  help: `Usage: sock file <channel> <path> [options]

Sends the file at <path> to <channel>; receivers get event 'file' with its name and
bytes ('sock listen <channel> --out DIR' saves it). Shows a progress bar on a
terminal and one line when piped; exits 0 once the whole file is written.

Options:
${CLIENT_HELP}`,
  options: CLIENT_OPTIONS,
  async run(values, positionals) {
    const [ch, path] = positional(file, positionals, ['channel', 'path'])
    const channel = channelArg(ch!)
    const { name, bytes } = readFile(path!)
    const setup = makeClient(values, ONE_SHOT)
    await connect(setup, channel)
    const bar = progressBar(name, bytes.length)
    try {
      await sendFile(setup.client, channel, name, bytes, bar.update)
    } catch (e) {
      throw explain(e, setup.address)
    } finally {
      bar.done()
      setup.client.close()
    }
    process.stdout.write(`sent ${clean(name)} (${bytes.length} bytes) to channel '${channel}'\n`)
    return 0
  },
}

/** Reads the whole file; a missing or unreadable path is a usage error. */
export function readFile(path: string): { name: string; bytes: Uint8Array } {
  try {
    if (!statSync(path).isFile()) throw Object.assign(new Error('not a file'), { code: 'not a regular file' })
    // Sock's type-2 format splits on the first ':', so a name carries none.
    return { name: basename(path).replace(/[:\\]/g, '_'), bytes: readFileSync(path) }
  } catch (e) {
    throw usageError(`cannot read file '${clean(path)}': ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}; pass the path of a readable file`)
  }
}

/**
 * Sends a file with `client.sendFile`: sockc's type 2 when it fits one frame, else chunks. `progress` gets the
 * fraction done (0..1) as chunks are written.
 */
export async function sendFile(client: SockClient, channel: string, name: string, bytes: Uint8Array, progress: (fraction: number) => void): Promise<void> {
  progress(0)
  await client.sendFile(channel, name, bytes, { onProgress: (done, total) => progress(total ? done / total : 1) })
  progress(1)
}

/** A progress bar on stderr when it is a terminal; nothing otherwise. */
function progressBar(name: string, total: number): { update(fraction: number): void; done(): void } {
  const tty = process.stderr.isTTY === true
  let drawn = false
  let shown = -1
  return {
    update(fraction) {
      if (!tty) return
      const width = 30
      const frac = Math.max(0, Math.min(1, fraction))
      const percent = Math.floor(frac * 100)
      if (percent === shown) return // redraw only when the number moves
      shown = percent
      const sent = Math.round(frac * total)
      const full = Math.round(frac * width)
      process.stderr.write(`\r${clean(name)} [${'#'.repeat(full)}${'-'.repeat(width - full)}] ${String(percent).padStart(3)}% ${formatBytes(sent)} / ${formatBytes(total)}\x1b[K`)
      drawn = true
    },
    done() {
      if (drawn) process.stderr.write('\n')
    },
  }
}
