// Shared helpers of the benchmark: statistics, wall-clock timestamps comparable across processes, and child
// processes that cannot outlive a measurement (every wait has a deadline; every child is killed).
import { fork } from 'node:child_process'

/** Milliseconds since the epoch with sub-millisecond precision, comparable between processes on one machine. */
export const wallNow = () => performance.timeOrigin + performance.now()

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

export function percentile(sorted, p) {
  if (!sorted.length) return NaN
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))
  return sorted[i]
}

/** Median, min and max of the repetitions (the median of an even count is the mean of the middle two). */
export function summarize(values) {
  const xs = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b)
  if (!xs.length) return { median: NaN, min: NaN, max: NaN, n: 0 }
  const m = xs.length >> 1
  const median = xs.length % 2 ? xs[m] : (xs[m - 1] + xs[m]) / 2
  return { median, min: xs[0], max: xs[xs.length - 1], n: xs.length }
}

/** Resolves with `p`, or rejects after `ms` with a message naming what did not happen. */
export function deadline(p, ms, what) {
  let timer
  return Promise.race([
    p,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms)
    }),
  ]).finally(() => clearTimeout(timer))
}

/**
 * A child Node process speaking JSON messages over IPC. `next(type, ms)` waits for the next message of that
 * type (an `error` message or the child's exit rejects it); `kill()` ends it for sure.
 */
export class Child {
  constructor(script, args = [], { execArgv = [], name = script } = {}) {
    this.name = name
    this.inbox = []
    this.waiters = []
    this.exited = false
    this.stderr = ''
    this.proc = fork(script, args.map(String), { execArgv, stdio: ['ignore', 'inherit', 'pipe', 'ipc'], serialization: 'json' })
    this.proc.stderr.on('data', (d) => {
      this.stderr = (this.stderr + d).slice(-4000)
    })
    this.proc.on('message', (m) => this.deliver(m))
    this.proc.on('error', (e) => this.fail(e))
    this.proc.on('exit', (code, signal) => {
      this.exited = true
      this.fail(new Error(`${this.name} exited (${signal ?? code})${this.stderr ? `: ${this.stderr.trim().split('\n').slice(-5).join(' | ')}` : ''}`))
    })
    this.exit = new Promise((r) => this.proc.once('exit', r))
  }

  deliver(m) {
    if (m?.type === 'error') return this.fail(new Error(`${this.name}: ${m.message}`))
    const i = this.waiters.findIndex((w) => w.type === m?.type)
    if (i >= 0) this.waiters.splice(i, 1)[0].resolve(m)
    else this.inbox.push(m)
  }

  fail(e) {
    this.error ??= e
    for (const w of this.waiters.splice(0)) w.reject(this.error)
  }

  next(type, ms) {
    const i = this.inbox.findIndex((m) => m?.type === type)
    if (i >= 0) return Promise.resolve(this.inbox.splice(i, 1)[0])
    if (this.error) return Promise.reject(this.error)
    return deadline(new Promise((resolve, reject) => this.waiters.push({ type, resolve, reject })), ms, `'${type}' from ${this.name}`).catch((e) => {
      this.waiters = this.waiters.filter((w) => w.type !== type)
      throw e
    })
  }

  send(m) {
    if (!this.exited && this.proc.connected) this.proc.send(m)
  }

  async kill(signal = 'SIGKILL') {
    if (!this.exited) {
      this.proc.kill(signal)
      await deadline(this.exit, 5000, `${this.name} to exit`).catch(() => {})
    }
  }
}

/** In a child: report to the parent, and die with it. */
export function childSetup() {
  process.on('disconnect', () => process.exit(0))
  const report = (m) => process.send?.(m)
  const die = (e) => {
    report({ type: 'error', message: e?.stack ?? String(e) })
    setTimeout(() => process.exit(1), 50)
  }
  process.on('uncaughtException', die)
  process.on('unhandledRejection', die)
  /** Waits for the parent's message of `type`. */
  const next = (type, ms = 60_000) =>
    deadline(
      new Promise((resolve) => {
        const on = (m) => {
          if (m?.type === type) {
            process.off('message', on)
            resolve(m)
          }
        }
        process.on('message', on)
      }),
      ms,
      `'${type}' from the parent`,
    )
  return { report, next, die }
}
