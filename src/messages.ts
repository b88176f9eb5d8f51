/**
 * `messages()` (`sock-client/messages`): the messages of a channel as an async iterator, built on `on()` and bounded
 * in count and bytes, so a consumer slower than the peer gets an error instead of this process's memory.
 */
import { currentBytes, positive, type SockClient, type SockMessage } from './client'
import { DEV } from './dev'
import { ConnectionError, type SockError } from './errors'

export interface MessagesOptions {
  /** Ends the iterator. */
  signal?: AbortSignal
  /** Most messages buffered while the consumer is busy (default 10 000); beyond it the iterator throws. */
  maxBuffered?: number
  /** Most bytes buffered (the text of the frames they came in; default 16 MiB); beyond it the iterator throws. */
  maxBufferedBytes?: number
}

/**
 * Messages of `channel` (one `event`, or all) as an async iterator, ended by `options.signal`:
 * `for await (const m of messages(client, 'chat', 'message', { signal })) ...`
 */
export function messages(client: SockClient<any>, channel: string, event: string | undefined, o: MessagesOptions = {}): AsyncIterableIterator<SockMessage> {
  const max = positive(o.maxBuffered, 'options.maxBuffered', 10_000) || 10_000
  const maxBytes = positive(o.maxBufferedBytes, 'options.maxBufferedBytes', 16 << 20) || 16 << 20
  const buffer: SockMessage[] = []
  const sizes: number[] = []
  let bytes = 0
  let wake: (() => void) | undefined
  let ended = false
  let failure: SockError | undefined
  const push = (m: SockMessage) => {
    if (ended) return
    const size = currentBytes()
    if (buffer.length >= max || bytes + size > maxBytes) {
      const what = buffer.length >= max ? `${max} messages` : `${bytes + size} bytes (maxBufferedBytes ${maxBytes})`
      failure = new ConnectionError(
        'ERR_QUEUE_FULL',
        DEV ? `messages() iterator on '${channel}' would buffer ${what} without being read: raise maxBuffered / maxBufferedBytes or read faster` : 'messages() buffer full',
      )
      return end()
    }
    buffer.push(m)
    sizes.push(size)
    bytes += size
    wake?.()
  }
  const off = event !== undefined ? client.on(channel, event, (_d: unknown, m: SockMessage) => push(m)) : client.on(channel, (_e: string, m: SockMessage) => push(m))
  const end = () => {
    ended = true
    off()
    o.signal?.removeEventListener('abort', end)
    wake?.()
  }
  if (o.signal?.aborted) end()
  else o.signal?.addEventListener('abort', end)
  const it: AsyncIterableIterator<SockMessage> = {
    next: async () => {
      while (!buffer.length && !ended) await new Promise<void>((r) => (wake = r))
      wake = undefined
      if (failure) {
        const f = failure
        failure = undefined
        buffer.length = sizes.length = 0
        throw f
      }
      if (ended) {
        buffer.length = sizes.length = 0 // aborted: what was not read yet is not wanted
        return { value: undefined, done: true }
      }
      bytes -= sizes.shift()!
      return { value: buffer.shift()!, done: false }
    },
    return: async () => {
      end()
      return { value: undefined, done: true }
    },
    [Symbol.asyncIterator]: () => it,
  }
  return it
}
