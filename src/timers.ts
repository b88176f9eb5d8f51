/**
 * One timer for every connection in the process: a binary min-heap of deadlines on the monotonic clock, and one
 * `setTimeout` for the earliest. A Node `Timeout` per connection costs about 180 bytes; a place here costs two
 * small integers and a slot. Browser-safe.
 */

/**
 * Something that sleeps until `due`: `slot` is its place in the heap; -1 when it is not waiting; -2 while it is due
 * and about to be woken (a cancel or a new sleep in the meantime takes that back).
 */
export interface Sleeper {
  due: number
  slot: number
  wake(): void
}

const heap: Sleeper[] = []
let handle: ReturnType<typeof setTimeout> | undefined
/** When the pending `setTimeout` fires; `Infinity` when none is pending. */
let handleDue = Infinity

/** Milliseconds on the monotonic clock, as an integer (a small integer takes no box in a field). */
const now = (): number => Math.ceil(performance.now())

/** Wakes `s` in `delay` ms (rounded up to the millisecond), replacing the wake-up it had. */
export function sleep(s: Sleeper, delay: number): void {
  s.due = now() + (delay > 0 ? Math.ceil(delay) : 0)
  if (s.slot < 0) {
    s.slot = heap.length
    heap.push(s)
  }
  up(s.slot)
  down(s.slot)
  if (heap[0]!.due < handleDue) arm()
}

/** Cancels the wake-up of `s`, if any. The shared timer stops when nobody waits, so Node can exit. */
export function unsleep(s: Sleeper): void {
  const i = s.slot
  s.slot = -1
  if (i < 0) return
  const last = heap.pop()!
  if (last !== s) {
    heap[i] = last
    last.slot = i
    up(i)
    down(last.slot)
  }
  if (!heap.length) {
    clearTimeout(handle)
    handle = undefined
    handleDue = Infinity
  }
  // Otherwise the pending timer stays: if it fires before the new earliest deadline, it is simply set again.
}

function arm(): void {
  clearTimeout(handle)
  handleDue = heap[0]!.due
  handle = setTimeout(fire, Math.max(0, handleDue - performance.now()))
}

function fire(): void {
  handle = undefined
  handleDue = Infinity
  // Timers may fire up to a millisecond before their time: what is due within one is due now. Everyone due is
  // taken out first, so one that sleeps again with no delay waits for the next turn instead of spinning here.
  const t = performance.now() + 1
  const due: Sleeper[] = []
  while (heap.length && heap[0]!.due <= t) {
    const s = heap[0]!
    unsleep(s)
    s.slot = -2
    due.push(s)
  }
  for (const s of due) {
    // An earlier wake-up in this batch may have cancelled this one (a listener closed its client) or set it anew.
    if (s.slot !== -2) continue
    s.slot = -1
    try {
      s.wake()
    } catch (e) {
      // A listener's bug surfaces as an uncaught error, as it would from its own timer, after the others woke.
      queueMicrotask(() => {
        throw e
      })
    }
  }
  if (heap.length && handleDue === Infinity) arm()
}

function up(i: number): void {
  const s = heap[i]!
  while (i > 0) {
    const p = (i - 1) >> 1
    const q = heap[p]!
    if (q.due <= s.due) break
    heap[i] = q
    q.slot = i
    i = p
  }
  heap[i] = s
  s.slot = i
}

function down(i: number): void {
  const s = heap[i]!
  const n = heap.length
  for (;;) {
    let c = 2 * i + 1
    if (c >= n) break
    if (c + 1 < n && heap[c + 1]!.due < heap[c]!.due) c++
    const q = heap[c]!
    if (q.due >= s.due) break
    heap[i] = q
    q.slot = i
    i = c
  }
  heap[i] = s
  s.slot = i
}

/** How many are waiting (for tests). */
export function sleepers(): number {
  return heap.length
}
