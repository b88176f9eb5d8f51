/** `sock serve`: the embedded Sock server, logging connects and disconnects (never the token). */
import { createSockServer } from '../server/index'
import { redactRedisUrl, redactSecrets } from '../server/redis-url'
import { clean, CliError, intOption, usageError, type Command } from './common'

export const serve: Command = {
  name: 'serve',
  summary: 'run the embedded Sock server',
  help: `Usage: sock serve [options]

Runs a Sock server and prints its address, then one line per connect, disconnect,
rejected connection and id taken over from a dead instance. Ctrl-C (SIGINT) or SIGTERM closes it cleanly.

Options:
  -p, --port <port>        TCP port, 0 for any free one (default 3000)
      --host <host>        interface to bind (default 127.0.0.1)
  -t, --token <token>      the token clients must present (default: $SOCK_TOKEN, else 'demo')
      --limit <bytes>      read limit for a whole frame (default 1024)
      --ping-window <dur>  keep-alive window: 60s, 1m, 500ms; a bare number is ms (default 60s)
      --cors / --no-cors   CORS headers on the REST routes (default on)
      --redis <url>        share channels with other servers through Redis (redis://host:6379;
                           default: $SOCK_REDIS_URL, else none); its password is never printed
  -q, --quiet              print only the address
  -h, --help               this help`,
  options: {
    port: { type: 'string', short: 'p' },
    host: { type: 'string' },
    token: { type: 'string', short: 't' },
    limit: { type: 'string' },
    'ping-window': { type: 'string' },
    cors: { type: 'boolean' },
    'no-cors': { type: 'boolean' },
    quiet: { type: 'boolean', short: 'q' },
    redis: { type: 'string' },
  },
  async run(values, positionals) {
    if (positionals.length) throw usageError(`unexpected argument '${clean(positionals[0]!)}': sock serve takes only options (see 'sock serve --help')`)
    if (values.cors && values['no-cors']) throw usageError(`--cors and --no-cors contradict each other: pass one of them`)
    const token = (values.token as string | undefined) ?? (process.env.SOCK_TOKEN || undefined)
    if (token === '') throw usageError(`empty --token: pass a token, or omit --token for the default ('demo')`)
    const host = (values.host as string | undefined) ?? '127.0.0.1'
    if (host === '') throw usageError(`empty --host: pass an interface such as 127.0.0.1`)
    const options = {
      port: intOption('port', values.port, 0, 65535) ?? 3000,
      host,
      token,
      limit: intOption('limit', values.limit, 64),
      pingWindow: duration(values['ping-window'] as string | undefined),
      cors: !values['no-cors'],
      redis: (values.redis as string | undefined) ?? (process.env.SOCK_REDIS_URL || undefined),
    }
    if (options.redis !== undefined && !/^rediss?:\/\/[^/]/.test(options.redis)) {
      throw usageError(`invalid --redis ${redactRedisUrl(options.redis)}: use a URL like redis://127.0.0.1:6379`)
    }
    let server
    try {
      server = await createSockServer(Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)))
    } catch (e) {
      const msg = (e as Error).message.replace(/^createSockServer: /, '')
      throw new CliError(options.redis ? redactSecrets(msg, options.redis) : msg)
    }
    const quiet = values.quiet === true
    const log = (line: string) => {
      if (!quiet) process.stdout.write(`${new Date().toISOString().slice(11, 19)} ${line}\n`)
    }
    process.stdout.write(
      `sock server listening on ${server.url} (${token ? 'token required' : "default token 'demo'"}${options.redis ? `, sharing channels through ${redactRedisUrl(options.redis)}` : ''})\n`,
    )
    server.on('connect', ({ channel, id }) => log(`connect ${channel}/${id}`))
    server.on('disconnect', ({ channel, id, code }) => log(`disconnect ${channel}/${id} (${code})`))
    server.on('redis', ({ state, error }) => log(`redis ${state}${error ? `: ${clean(error.message)}` : ''}`))
    server.on('replace', ({ channel, id, why }) => log(`replace ${channel}/${id} (${why})`))
    // A refused channel name is whatever the request said, up to Node's header limit: one readable line of it.
    server.on('reject', ({ channel, reason }) => log(`reject ${clean(channel.length > 64 ? `${channel.slice(0, 64)}...` : channel) || '(no channel)'}: ${reason}`))

    return new Promise<number>((done) => {
      let stopping = false
      const stop = (signal: string) => {
        if (stopping) return
        stopping = true
        process.stdout.write(`${signal}: closing\n`)
        server.close().then(
          () => {
            process.stdout.write('closed\n')
            done(0)
          },
          (e: Error) => {
            process.stderr.write(`sock serve: could not close cleanly: ${e.message}\n`)
            done(1)
          },
        )
      }
      process.on('SIGINT', () => stop('SIGINT'))
      process.on('SIGTERM', () => stop('SIGTERM'))
    })
  },
}

/** `60s`, `1m`, `500ms`, or a bare number of ms. */
function duration(v: string | undefined): number | undefined {
  if (v === undefined) return undefined
  const m = /^(\d+)(ms|s|m)?$/.exec(v)
  const n = m ? Number(m[1]) * (m[2] === 's' ? 1000 : m[2] === 'm' ? 60_000 : 1) : NaN
  if (!Number.isSafeInteger(n) || n < 1) throw usageError(`invalid --ping-window '${clean(v)}': use a duration such as 60s, 1m or 500ms`)
  return n
}
