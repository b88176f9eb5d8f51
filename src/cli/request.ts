/** `sock request <channel> <event> [json]`: one request, its reply printed as JSON, then exit. */
import { isReplyError, ReplyCode } from '../replies'
import { channelArg, clean, CLIENT_HELP, CLIENT_OPTIONS, CliError, connect, explain, makeClient, ONE_SHOT, usageError, type Command } from './common'

const CODES = Object.fromEntries(Object.entries(ReplyCode).map(([k, v]) => [v, k])) as Record<number, string>

/** `5s`, `500ms`, `1m`, or a bare number of ms. */
function duration(v: string | boolean | undefined): number {
  if (v === undefined) return 5000
  const m = typeof v === 'string' ? /^(\d+)(ms|s|m)?$/.exec(v) : null
  const n = m ? Number(m[1]) * (m[2] === 's' ? 1000 : m[2] === 'm' ? 60_000 : 1) : NaN
  if (!Number.isSafeInteger(n) || n < 1) throw usageError(`invalid --timeout '${clean(String(v))}': use a duration such as 5s, 500ms or 1m`)
  return n
}

export const request: Command = {
  name: 'request',
  summary: 'send one request, print its reply and exit',
  help: `Usage: sock request <channel> <event> [json] [options]

Sends a request for <event> with [json] as its data (absent: none) to the instances of <channel> that handle it,
and prints the first final reply's data as one line of JSON (nothing for a reply without data). Exits 0 on a
success, 1 on a failure reply (its code and message on stderr), a timeout or no server, 2 on bad arguments.

Options:
      --to <id>        only this instance answers (an instance without a handler answers at once: code 2)
      --timeout <dur>  how long to wait: 5s, 500ms, 1m (default 5s)
${CLIENT_HELP}

Examples:
  sock request jobs resize '{"w":100,"h":80}' --to worker1
  sock request jobs ping --timeout 1s`,
  options: { ...CLIENT_OPTIONS, to: { type: 'string' }, timeout: { type: 'string' } },
  async run(values, positionals) {
    if (positionals.length < 2) throw usageError(`missing <${positionals.length ? 'event' : 'channel'}>: usage: sock request <channel> <event> [json] (see 'sock request --help')`)
    if (positionals.length > 3) throw usageError(`unexpected argument '${clean(positionals[3]!)}': usage: sock request <channel> <event> [json] (quote JSON with spaces: '{"a": 1}')`)
    const [ch, event, json] = positionals as [string, string, string | undefined]
    const channel = channelArg(ch)
    let data: unknown
    if (json !== undefined) {
      try {
        data = JSON.parse(json)
      } catch {
        throw usageError(`invalid [json] '${clean(json.slice(0, 80))}': give JSON, as in '{"w":100}' or '"text"' (quoted for the shell)`)
      }
    }
    const timeout = duration(values.timeout)
    const to = values.to as string | undefined
    if (to !== undefined && !/^[A-Za-z0-9]+$/.test(to)) throw usageError(`invalid --to '${clean(to)}': an instance id is ASCII letters and digits only`)
    const setup = makeClient(values, ONE_SHOT)
    await connect(setup, channel)
    try {
      const reply = await setup.client.request(channel, event, data, { to, timeout })
      if (reply !== undefined) process.stdout.write(`${JSON.stringify(reply)}\n`)
    } catch (e) {
      if (isReplyError(e)) {
        const name = CODES[e.replyCode]
        throw new CliError(`${e.from ?? 'the responder'} answered with code ${e.replyCode}${name ? ` (${name})` : ''}: ${clean(e.message)}`)
      }
      if ((e as { code?: string })?.code === 'ERR_TIMEOUT')
        throw new CliError(`no reply to '${clean(event)}' on '${channel}'${to ? ` from ${to}` : ''} within ${timeout} ms: is an instance handling it? (--timeout waits longer)`)
      throw explain(e, setup.address)
    } finally {
      setup.client.close()
    }
    return 0
  },
}
