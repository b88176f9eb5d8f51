/**
 * The full client: the kernel's SockClient with every feature composed in (every `setup()` form with broadcast,
 * failover and dedupe; chunks; files; REST with the registration check; codecs; requests, replies and streams; presence;
 * the debug log), and the methods that use them.
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
import {
  handle,
  replies,
  request,
  requestAll,
  type AnyRequests,
  type HandleOptions,
  type RepliesOptions,
  type Reply,
  type ReqArgs,
  type Req,
  type RequestAllOptions,
  type RequestMap,
  type RequestOptions,
  type Res,
  type SockRequest,
  type NO_REPLY,
} from './replies'
import { presence, presenceOf, type Presence, type PresenceOptions } from './presence'
import { instance, instances, rest, type Instance, type RestFeatureOptions } from './rest'
import { handleStream, stream, streams, type HandleStreamOptions, type SockReader, type SockWriter, type StreamOptions } from './streams'
import type { Unsubscribe } from './client'

/** Every feature, in the order their hooks are merged. */
export const ALL_FEATURES: readonly Feature[] = [addresses, chunks, files, rest, codecs, replies, streams, presence, debug]

export interface SockClientOptions extends CoreOptions, ChunksOptions, RestFeatureOptions, CodecOptions, RepliesOptions, PresenceOptions, DebugOptions {}

/** `E`: channel -> event -> payload (what `signal` and `on` take); `R`: channel -> event -> [request, response]. */
export class SockClient<E extends EventMap = AnyEvents, R extends RequestMap = AnyRequests> extends CoreClient<E> {
  constructor(options: SockClientOptions = {}) {
    // Bad options (not an object) reach the kernel as they are, which says what is wrong.
    super(
      options !== null && typeof options === 'object'
        ? { ...options, features: Array.isArray(options.features) ? [...ALL_FEATURES, ...options.features] : (options.features ?? ALL_FEATURES) }
        : options,
    )
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
   * Sends a request on `channel` (joining it) and resolves with the first final successful reply's data (`undefined`
   * for a fast reply). A failure reply rejects with `ReplyError`; no reply with `RequestError`: `ERR_TIMEOUT`,
   * `ERR_ABORTED`, `ERR_DISCONNECTED`, `ERR_CLOSED`, `ERR_GAVE_UP`, `ERR_REJECTED`, `ERR_QUEUE_FULL`.
   */
  request<C extends keyof R & string, K extends keyof R[C] & string>(channel: C, event: K, ...args: ReqArgs<Req<R, C, K>, RequestOptions<Res<R, C, K>>>): Promise<Res<R, C, K>> {
    return request(this, channel, event, args[0], args[1])
  }

  /** Sends a request to every instance of `channel` and yields each reply until `timeout`, `max` final replies or `signal`. */
  requestAll<C extends keyof R & string, K extends keyof R[C] & string>(channel: C, event: K, ...args: ReqArgs<Req<R, C, K>, RequestAllOptions>): AsyncIterableIterator<Reply<Res<R, C, K>>> {
    return requestAll(this, channel, event, args[0], args[1])
  }

  /**
   * Answers requests for `event` on `channel` (joining it): the value returned is the reply, `undefined` a fast reply,
   * a thrown `ReplyError` its code, any other throw code 5 (HandlerError), `NO_REPLY` nothing. One per channel and event.
   */
  handle<C extends keyof R & string, K extends keyof R[C] & string>(
    channel: C,
    event: K,
    handler: (data: Req<R, C, K>, req: SockRequest<Req<R, C, K>>) => Res<R, C, K> | typeof NO_REPLY | Promise<Res<R, C, K> | typeof NO_REPLY>,
    options?: HandleOptions,
  ): Unsubscribe {
    return handle(this, channel, event, handler as never, options)
  }

  /**
   * Opens a stream of `event` on `channel` to the instance `options.to` (required), with `meta` for its handler, and
   * returns the writer at once: `await blob.stream().pipeTo(w.writable); await w.result`.
   */
  stream<C extends keyof R & string, K extends keyof R[C] & string>(channel: C, event: K, meta: Req<R, C, K>, options: StreamOptions): SockWriter<Res<R, C, K>> {
    return stream(this, channel, event, meta, options)
  }

  /** Reads streams of `event` on `channel` (joining it): `handler(reader, meta, req)`, whose value is the writer's `result`. */
  handleStream<C extends keyof R & string, K extends keyof R[C] & string>(
    channel: C,
    event: K,
    handler: (reader: SockReader, meta: Req<R, C, K>, req: SockRequest<Req<R, C, K>>) => Res<R, C, K> | Promise<Res<R, C, K>>,
    options?: HandleStreamOptions,
  ): Unsubscribe {
    return handleStream(this, channel, event, handler, options)
  }

  /**
   * The live set of instances in `channel` (one object per channel): `list()`, `snapshot()`, and `join` / `leave` /
   * `change` events. REST sees everyone (polled while someone listens); sock-client peers announce themselves at once.
   */
  presence(channel: keyof E & string): Presence {
    return presenceOf(this, channel)
  }
}
