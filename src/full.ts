/**
 * The full client: the kernel's SockClient with every feature composed in (every `setup()` form with broadcast,
 * failover and dedupe; chunks; files; REST with the registration check; codecs; presence; the debug log), and the methods that use them.
 * This is what `sock-client` exports as `SockClient`.
 */
import { addresses } from './addresses'
import type { SendReport } from './channel'
import { chunks, type ChunksOptions } from './chunks'
import { SockClient as CoreClient, type AnyEvents, type CoreOptions, type EventMap, type SockMessage } from './client'
import { codecs, type CodecOptions } from './codec'
import { debug, type DebugOptions } from './debug'
import type { Feature } from './feature'
import { files, sendFile, type FileInput, type SendFileOptions } from './files'
import { messages, type MessagesOptions } from './messages'
import { presence, presenceOf, type Presence, type PresenceOptions } from './presence'
import { instance, instances, rest, type Instance, type RestFeatureOptions } from './rest'

/** Every feature, in the order their hooks are merged. */
export const ALL_FEATURES: readonly Feature[] = [addresses, chunks, files, rest, codecs, presence, debug]

export interface SockClientOptions extends CoreOptions, ChunksOptions, RestFeatureOptions, CodecOptions, PresenceOptions, DebugOptions {}

export class SockClient<E extends EventMap = AnyEvents> extends CoreClient<E> {
  constructor(options: SockClientOptions = {}) {
    // Bad options (not an object) reach the kernel as they are, which says what is wrong.
    super(options !== null && typeof options === 'object' ? { ...options, features: options.features ? [...ALL_FEATURES, ...options.features] : ALL_FEATURES } : options)
  }

  /**
   * Sends a file. Small ones go out as sockc's type 2 (`name:base64`); larger ones as a chunked `file` envelope
   * with length and CRC-32, checked by the receiver. Receivers get event `file` with `{ name, bytes, size }`.
   */
  sendFile(channel: keyof E & string, name: string, bytes: FileInput, options: SendFileOptions = {}): Promise<SendReport> {
    return sendFile(this, channel, name, bytes, options)
  }

  /**
   * Messages of `channel` (one `event`, or all) as an async iterator, ended by `options.signal`:
   * `for await (const m of client.messages('chat', 'message', { signal })) ...`
   */
  messages<C extends keyof E & string, K extends keyof E[C] & string>(channel: C, event: K, options?: MessagesOptions): AsyncIterableIterator<SockMessage<E[C][K]>>
  messages<C extends keyof E & string>(channel: C, options?: MessagesOptions): AsyncIterableIterator<SockMessage<E[C][keyof E[C] & string]>>
  messages(channel: string, a?: string | MessagesOptions, b?: MessagesOptions): AsyncIterableIterator<SockMessage> {
    return typeof a === 'string' ? messages(this, channel, a, b) : messages(this, channel, undefined, a)
  }

  /** Every instance in `channel`, from every address, merged by id (`[]` when nobody is in it). */
  instances(channel: keyof E & string): Promise<Instance[]> {
    return instances(this, channel)
  }

  /** One instance of `channel`, or `null`. */
  instance(channel: keyof E & string, id: string): Promise<Instance | null> {
    return instance(this, channel, id)
  }

  /**
   * The live set of instances in `channel` (one object per channel): `list()`, `snapshot()`, and `join` / `leave` /
   * `change` events. REST sees everyone (polled while someone listens); sock-client peers announce themselves at once.
   */
  presence(channel: keyof E & string): Presence {
    return presenceOf(this, channel)
  }
}
