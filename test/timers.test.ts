import { afterEach, describe, expect, it, vi } from 'vitest'
import { sleep, sleepers, unsleep, type Sleeper } from '../src/timers'
import { sleep as pause, waitFor } from './helpers'

// The shared timer behind every connection's wake-up (src/timers.ts), on real timers: what wakes, in which order,
// and what never does. No assertion here depends on how late a timer fires.

const woke: string[] = []
function sleeper(name: string, onWake?: () => void): Sleeper & { name: string } {
  return {
    name,
    due: 0,
    slot: -1,
    wake() {
      woke.push(name)
      onWake?.()
    },
  }
}

afterEach(() => {
  woke.length = 0
  vi.unstubAllGlobals()
})

describe('the shared timer', () => {
  it('wakes every sleeper once, in deadline order, and stops when nobody waits', async () => {
    const delays = Array.from({ length: 60 }, (_, i) => (i * 37) % 41) // 0..40 ms, shuffled, with ties
    const all = delays.map((d, i) => Object.assign(sleeper(`s${i}`), { delay: d }))
    const dueOf = new Map<string, number>()
    for (const s of all) {
      sleep(s, s.delay)
      dueOf.set(s.name, s.due)
    }
    expect(sleepers()).toBe(60)
    await waitFor(() => woke.length === 60, 3000, 'every wake-up')
    await pause(60)
    expect(woke).toHaveLength(60) // once each
    const seen = woke.map((n) => dueOf.get(n)!)
    expect(seen).toEqual([...seen].sort((a, b) => a - b))
    expect(sleepers()).toBe(0)
    expect(all.every((s) => s.slot === -1)).toBe(true)
  })

  it('moves a deadline when a sleeper sleeps again, and never wakes a cancelled one', async () => {
    const a = sleeper('a')
    const b = sleeper('b')
    const c = sleeper('c')
    sleep(a, 5)
    sleep(b, 25)
    sleep(c, 10)
    sleep(a, 50) // later than b now
    unsleep(c)
    unsleep(c) // twice is harmless
    await waitFor(() => woke.length === 2, 3000, 'a and b')
    await pause(30)
    expect(woke).toEqual(['b', 'a'])
    expect(sleepers()).toBe(0)
  })

  it('skips a sleeper that an earlier wake-up of the same batch cancelled, and keeps one it put back to sleep', async () => {
    const b = sleeper('b')
    const d = sleeper('d')
    const a = sleeper('a', () => {
      unsleep(b) // a listener closing another connection
      sleep(d, 30) // or reconnecting one: it sleeps anew instead of waking now
    })
    sleep(a, 0)
    sleep(b, 0)
    sleep(d, 0)
    await waitFor(() => woke.includes('d'), 3000, 'd, later')
    await pause(20)
    expect(woke).toEqual(['a', 'd'])
  })

  it('a sleeper that sleeps again with no delay waits for the next turn instead of spinning', async () => {
    let n = 0
    let turned = true
    const sameTurn: number[] = []
    const s: Sleeper = sleeper('spin', () => {
      if (!turned) sameTurn.push(n) // woken again before the event loop went round
      turned = false
      setImmediate(() => (turned = true))
      if (++n < 5) sleep(s, 0)
    })
    sleep(s, 0)
    await waitFor(() => n === 5, 3000, 'five turns')
    expect(sameTurn).toEqual([])
    expect(sleepers()).toBe(0)
  })

  it('a wake-up that throws does not stop the others; its error is thrown again on its own', async () => {
    const rethrown: (() => void)[] = []
    vi.stubGlobal('queueMicrotask', (fn: () => void) => rethrown.push(fn))
    sleep(
      sleeper('x', () => {
        throw new Error('bug in a listener')
      }),
      0,
    )
    sleep(sleeper('y'), 0)
    await waitFor(() => woke.length === 2, 3000, 'both')
    expect(woke).toEqual(['x', 'y'])
    expect(rethrown).toHaveLength(1)
    expect(rethrown[0]!).toThrow('bug in a listener')
  })
})
