/**
 * The script-tag bundles' stand-in for `./timers` (rollup.config.mjs swaps it in): a page holds a client or two,
 * so each connection keeps its own browser timer, whose id waits in `slot`, and the shared heap's code stays out.
 * Same contract as `./timers`.
 */
import type { Sleeper } from './timers'

function wakeUp(s: Sleeper): void {
  s.slot = -1
  s.wake()
}

export function sleep(s: Sleeper, delay: number): void {
  clearTimeout(s.slot)
  // biome-ignore lint/complexity/useMathMinMax: a NaN delay must be 0 (Math.max gives NaN)
  s.slot = setTimeout(wakeUp, delay > 0 ? delay : 0, s) as unknown as number
}

export function unsleep(s: Sleeper): void {
  clearTimeout(s.slot)
  s.slot = -1
}
