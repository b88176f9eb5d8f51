/** Retry policy: pure functions, so the schedule is testable without timers. */

export interface ReconnectOptions {
  /** Base delay in ms: the first retry waits a random time in [0, minDelay] (full jitter). */
  minDelay: number
  /** Upper bound of the jitter window in ms. */
  maxDelay: number
  /** Growth of the window per retry. */
  factor: number
  /** Retries before giving up (the `giveup` state); `Infinity` never gives up. */
  maxRetries: number
  /** A connection must stay open this long (ms) before the retry counter resets. */
  minUptime: number
}

export const DEFAULT_RECONNECT: ReconnectOptions = {
  minDelay: 1000,
  maxDelay: 15_000,
  factor: 2,
  maxRetries: Infinity,
  minUptime: 5000,
}

/** The jitter window of retry `attempt` (1-based): `min(maxDelay, minDelay * factor^(attempt - 1))`. */
export function backoffCap(attempt: number, o: ReconnectOptions): number {
  return Math.min(o.maxDelay, o.minDelay * o.factor ** Math.max(0, attempt - 1))
}

/** Full jitter: a uniformly random delay in [0, cap], so clients that lost the same server spread out. */
export function backoffDelay(attempt: number, o: ReconnectOptions, random: () => number = Math.random): number {
  return Math.round(random() * backoffCap(attempt, o))
}
