/**
 * The debug feature (`sock-client/debug`): `options.debug`, `true` (every entry on `console.debug`, one line each)
 * or a function that gets each entry. The kernel's connections call its log at each step only when this feature set
 * one, so off (or without the feature) each of those places costs one test. Entries carry the time, the channel, the
 * address and the step's figures; never the token, whatever its source (an error's message shows a URL with `token=***`).
 */
import type { Channel, Kernel } from './channel'
import type { Connection, ConnectionState, Log, StateDetail } from './connection'
import { DEV } from './dev'
import { ValidationError, type SockError } from './errors'
import type { Feature } from './feature'

export type DebugEvent = 'connect' | 'open' | 'close' | 'retry' | 'giveup' | 'error' | 'send' | 'queue' | 'drop' | 'probe' | 'receive'

/** One step of the debug log. The figures present depend on the event. */
export interface DebugEntry {
  /** Wall-clock time (`Date.now()`), for display. */
  time: number
  channel: string
  /** The address (`String(address)`): never a token. */
  address: string
  event: DebugEvent
  /** `retry`: retry number (1-based), the delay before it in ms, and why. */
  attempt?: number
  delay?: number
  reason?: string
  /** `close`: the close code and the state it leaves (`reconnecting`, `closed`). */
  code?: number
  state?: ConnectionState
  /** `open`: the id the server gave. `probe`: the who-am-I round trip in ms. */
  id?: string
  rtt?: number
  /** `send`, `queue`, `drop`, `receive`: the frame's length in characters; `receive`: its Sock type. */
  length?: number
  type?: number
  /** `queue`: frames and bytes waiting now. */
  queued?: number
  queuedBytes?: number
  /** `error`, `drop`: the error code, and for `error` its message (redacted like every message). */
  error?: string
  message?: string
  /** `drop`: the oldest waiting frame made room (`overflow: 'drop-oldest'`). */
  oldest?: boolean
}

export interface DebugOptions {
  /**
   * The debug log: `true` prints every entry with `console.debug`, one line each; a function gets each entry
   * (isolated: what it throws is an `ERR_LISTENER` error). Entries: `connect`, `open`, `close`, `retry`, `giveup`,
   * `error`, `send`, `queue`, `drop`, `probe`, `receive`, each with time, channel, address and its figures; never the
   * token. Off (the default), it costs nothing.
   */
  debug?: boolean | ((entry: DebugEntry) => void)
}

/** An entry as one line: `[sock-client] 12:00:00.123 chat 127.0.0.1:3000 open {"id":"alice"}` (UTC time). */
export function debugLine({ time, channel, address, event, ...figures }: DebugEntry): string {
  const json = JSON.stringify(figures)
  return `[sock-client] ${new Date(time).toISOString().slice(11, 23)} ${channel} ${address} ${event}${json === '{}' ? '' : ` ${json}`}`
}

/** The entries for one step: a channel's report (state, error, retry) is named as the log names it. */
function entries(conn: Connection, step: string, d: StateDetail & Record<string, unknown>): [DebugEvent, object][] {
  const error = (e: SockError): [DebugEvent, object] => ['error', { error: e.code, message: e.message }]
  if (step === 'error') return [error(d as unknown as SockError)]
  if (step === 'reconnect') return [['retry', { attempt: d.attempt, delay: d.delay, reason: d.reason }]]
  if (step === 'progress') return []
  if (step !== 'state') return [[step as DebugEvent, d]]
  const s = conn.state
  const out: [DebugEvent, object][] = d.error ? [error(d.error)] : []
  out.push(s === 'connecting' ? ['connect', {}] : s === 'open' ? ['open', { id: conn.id }] : s === 'giveup' ? ['giveup', {}] : ['close', { code: d.code, reason: d.reason, state: s }])
  return out
}

/** The log behind `options.debug`: entries are built only when it is on; the application's function runs isolated. */
function makeLog(out: (entry: DebugEntry) => void): Log {
  return (conn, step, figures = {}) => {
    for (const [event, f] of entries(conn, step, figures as StateDetail & Record<string, unknown>)) {
      const entry: DebugEntry = { time: Date.now(), channel: conn.channel, address: String(conn.address), event, ...f }
      ;(conn.owner as Channel).host.callback(out, 'debug', conn.channel, entry)
    }
  }
}

/** The debug feature: `new SockClient({ features: [debug], debug: true })` (`sock-client` has it). */
export const debug: Feature = {
  name: 'debug',
  init(o: DebugOptions, k: Kernel) {
    const d = o.debug
    if (d === undefined || d === false) return
    if (d !== true && typeof d !== 'function') throw new ValidationError('options.debug', DEV ? 'options.debug must be true, false or a function that takes an entry' : 'invalid debug')
    // A connection options object of its own: clients without the log keep sharing theirs.
    k.conn = { ...k.conn, log: makeLog(d === true ? (e) => console.debug(debugLine(e)) : d) }
  },
}
