/**
 * What every `sock` command shares: argument parsing with one-line errors, the client options (`--url`, `--token`,
 * `SOCK_TOKEN`, `--id`, `--limit`), connecting with a clear failure, and safe terminal output.
 */
import { parseArgs } from 'node:util'
import { parseAddress, type Address } from '../address'
import type { LifecycleInfo } from '../client'
import { debugLine, type DebugEntry } from '../debug'
import { SockClient, type SockClientOptions } from '../full'
import { isSockError, type SockError } from '../errors'
import { checkChannel } from '../protocol'

/** Exit codes, documented in README.md. */
export const EXIT = { ok: 0, failure: 1, usage: 2, rejected: 3 } as const

/** An error the command line reports as one line (never with a stack), with its exit code. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number = EXIT.failure,
  ) {
    super(message)
  }
}

export const usageError = (message: string) => new CliError(message, EXIT.usage)

type OptionSpec = { type: 'string' | 'boolean'; short?: string; multiple?: false }
export type Options = Record<string, OptionSpec>

export interface Command {
  name: string
  /** One line for `sock --help`. */
  summary: string
  /** The full text for `sock <name> --help`. */
  help: string
  options: Options
  run(values: Record<string, string | boolean | undefined>, positionals: string[]): Promise<number>
}

/** Parses `args` for `cmd`; bad options become a one-line usage error that names `--help`. */
export function parse(cmd: Command, args: string[]): { values: Record<string, string | boolean | undefined>; positionals: string[]; help: boolean } {
  try {
    const { values, positionals } = parseArgs({ args, options: { ...cmd.options, help: { type: 'boolean', short: 'h' } }, allowPositionals: true, strict: true })
    return { values: values as Record<string, string | boolean | undefined>, positionals, help: values.help === true }
  } catch (e) {
    const msg = String((e as Error)?.message ?? e)
    // node:util messages run to several sentences; the first one says what is wrong.
    const first = msg.split(/\.\s/)[0]!.replace(/\.$/, '')
    throw usageError(`${first}: see 'sock ${cmd.name} --help'`)
  }
}

/** Exactly `names.length` positionals, else a usage error naming the missing one. */
export function positional(cmd: Command, positionals: string[], names: string[]): string[] {
  if (positionals.length < names.length) throw usageError(`missing <${names[positionals.length]}>: usage: sock ${cmd.name} ${names.map((n) => `<${n}>`).join(' ')} (see 'sock ${cmd.name} --help')`)
  if (positionals.length > names.length) {
    throw usageError(
      `unexpected argument '${clean(positionals[names.length]!)}': usage: sock ${cmd.name} ${names.map((n) => `<${n}>`).join(' ')}${names.includes('text') ? " (quote text with spaces: sock send chat 'hello there')" : ''}`,
    )
  }
  return positionals
}

export function channelArg(v: string): string {
  try {
    return checkChannel(v)
  } catch (e) {
    throw usageError((e as Error).message)
  }
}

export const DEFAULT_URL = '127.0.0.1:3000'

/** The client options every client command takes. */
export const CLIENT_OPTIONS: Options = {
  url: { type: 'string', short: 'u' },
  token: { type: 'string', short: 't' },
  id: { type: 'string' },
  limit: { type: 'string' },
  verbose: { type: 'boolean' },
}

export const CLIENT_HELP = `  -u, --url <addr>     server: host:port or a ws:// / wss:// URL (default ${DEFAULT_URL})
  -t, --token <token>  server token (default: $SOCK_TOKEN, else the server's default)
      --id <id>        instance id to join with, letters and digits (default: the server picks one)
      --limit <bytes>  the server's frame limit (default 1024)
      --verbose        the client's debug log on stderr: connect, open, send, retries, ... (never the token)
  -h, --help           this help`

/** One-shot commands give up quickly: a script must not hang on a dead server. */
export const ONE_SHOT: SockClientOptions = { connectTimeout: 3000, probeTimeout: 3000, restTimeout: 3000, reconnect: { maxRetries: 0 } }

export interface ClientSetup {
  client: SockClient
  address: Address
  token: string | undefined
}

/** An integer option within bounds, or a usage error. */
export function intOption(name: string, v: string | boolean | undefined, min: number, max = Number.MAX_SAFE_INTEGER): number | undefined {
  if (v === undefined) return undefined
  const n = typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : NaN
  if (!Number.isSafeInteger(n) || n < min || n > max) throw usageError(`invalid --${name} '${clean(String(v))}': use an integer from ${min} to ${max}`)
  return n
}

/** Builds a client on `--url` (or the default) with `--token` / `SOCK_TOKEN`, `--id`, `--limit`. */
export function makeClient(values: Record<string, string | boolean | undefined>, extra: SockClientOptions = {}): ClientSetup {
  const url = (values.url as string | undefined) ?? DEFAULT_URL
  let address: Address
  try {
    address = parseAddress(url)
  } catch {
    throw usageError(`invalid --url '${clean(url)}': use host:port (as in ${DEFAULT_URL}) or a ws:// or wss:// URL`)
  }
  const token = (values.token as string | undefined) ?? (process.env.SOCK_TOKEN || undefined)
  if (token === '') throw usageError(`empty --token: pass the server's token, or omit --token to use the server's default`)
  const id = values.id as string | undefined
  if (id !== undefined && !/^[A-Za-z0-9]+$/.test(id)) throw usageError(`invalid --id '${clean(id)}': an instance id is ASCII letters and digits only; omit --id to let the server pick one`)
  const maxFrameBytes = intOption('limit', values.limit, 128)
  const debug = values.verbose === true ? (e: DebugEntry) => process.stderr.write(`${clean(debugLine(e).replace('[sock-client]', 'sock:'))}\n`) : undefined
  const client = new SockClient({ id, token, maxFrameBytes, debug, ...extra })
  client.setup(address.url)
  return { client, address, token }
}

/**
 * Joins `channel` and resolves once the server answered. Fails fast: the first network error or connect timeout
 * before the channel opened closes the client and throws "cannot reach"; a rejection (close 1008) throws with
 * the reason and the fix.
 */
export async function connect(setup: ClientSetup, channel: string): Promise<void> {
  const { client, address } = setup
  let fail: ((e: unknown) => void) | undefined
  const failed = new Promise<never>((_, reject) => (fail = reject))
  failed.catch(() => {})
  const off = client.on('socket', 'error', (info: LifecycleInfo) => {
    if (info.channel === channel && info.error?.code === 'ERR_NETWORK') fail!(info.error)
  })
  try {
    await Promise.race([client.join(channel), failed])
  } catch (e) {
    client.close()
    throw explain(e, address)
  } finally {
    off()
  }
}

/** Turns an error of the SDK into a one-line CliError that names the fix. */
export function explain(e: unknown, address: Address): CliError {
  if (e instanceof CliError) return e
  if (!isSockError(e)) return new CliError(String((e as Error)?.message ?? e))
  const err = e as SockError
  switch (err.code) {
    case 'ERR_INVALID_ARGUMENT':
    case 'ERR_ADDRESS':
    case 'ERR_FRAME_TOO_LARGE':
      return usageError(err.message)
    case 'ERR_REJECTED': {
      const reason = err.message
      const fix = /token/i.test(reason)
        ? "pass the server's token with --token or SOCK_TOKEN"
        : /duplicate id/i.test(reason)
          ? 'pick another --id, or omit it to let the server choose'
          : 'check the channel, --id and --token'
      return new CliError(`${reason}: ${fix}`, EXIT.rejected)
    }
    case 'ERR_NETWORK':
    case 'ERR_TIMEOUT':
    case 'ERR_GAVE_UP':
    case 'ERR_HTTP': {
      const cause = (err.cause as { cause?: { code?: string; message?: string } } | undefined)?.cause
      const detail = cause?.message || cause?.code || err.message.replace(/^.*?: /, '')
      return new CliError(`cannot reach a Sock server at ${address} (${detail}): start one with 'sock serve' or pass --url host:port`)
    }
    default:
      return new CliError(err.message)
  }
}

/** Escapes control characters (a peer must not drive our terminal) and keeps a message on one line. */
export function clean(s: string): string {
  return s.replace(/[\x00-\x1f\x7f\u2028\u2029]/g, (c) => (c === '\n' ? '\\n' : c === '\r' ? '\\r' : c === '\t' ? '\\t' : `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`))
}

/** A lifecycle event as a status line, or `undefined` when it says nothing new. */
export function describe(event: string, info: LifecycleInfo, id: string | undefined): string | undefined {
  switch (event) {
    case 'connecting':
      return `connecting to ${info.address}`
    case 'open':
      return `connected to ${info.address} on channel '${info.channel}'${id ? ` as ${id}` : ''}`
    case 'close':
      if (info.state === 'closed') return undefined
      return `connection lost${info.code ? ` (close ${info.code}${info.reason ? `: ${clean(info.reason)}` : ''})` : ''}`
    case 'reconnect':
      return `reconnecting in ${((info.delay ?? 0) / 1000).toFixed(1)} s (attempt ${info.attempt})`
    case 'giveup':
      return `gave up on ${info.address}`
    case 'error':
      return info.error && info.error.code !== 'ERR_NETWORK' ? `error: ${clean(info.error.message)}` : undefined
    default:
      return undefined
  }
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`
  return `${(n / 1024 / 1024).toFixed(1)} MiB`
}
