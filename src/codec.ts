/**
 * The codecs feature (`sock-client/codecs`): the `codec` option (the codec a client writes its envelopes with) and
 * a registry by name, so that any receiver that loaded a codec decodes envelopes naming it. msgpack
 * (`sock-client/msgpack`) registers itself here. The core reads and writes JSON only.
 */
import { DEV } from './dev'
import { json, type Codec } from './envelope'
import { ValidationError } from './errors'
import type { Feature } from './feature'

export { json, type Codec }

const KEY = /* @__PURE__ */ Symbol.for('sock-client.codecs')
/** One registry per realm, shared by every bundle of sock-client loaded in it (ESM, CJS, UMD); made on first use. */
function registry(): Map<string, Codec> {
  const g = globalThis as Record<symbol, Map<string, Codec> | undefined>
  return (g[KEY] ??= new Map())
}

/** Makes `codec` available for decoding envelopes that name it. */
export function registerCodec(codec: Codec): Codec {
  if (codec.name !== 'json') registry().set(codec.name, codec)
  return codec
}

export function findCodec(name: string): Codec | undefined {
  return name === 'json' ? json : registry().get(name)
}

/** The codecs feature's option (in `sock-client`'s `SockClientOptions`). */
export interface CodecOptions {
  /** Codec for envelope payloads: JSON (default) or `msgpack()` from `sock-client/msgpack`. */
  codec?: Codec
}

/** The codecs feature: `new SockClient({ features: [codecs], codec: msgpack() })` (`sock-client` has it). */
export const codecs: Feature = {
  name: 'codecs',
  codecs: findCodec,
  init(o: CodecOptions, k: { codec: Codec }) {
    const codec = o.codec ?? json
    if (!codec || typeof codec.name !== 'string' || typeof codec.encode !== 'function' || typeof codec.decode !== 'function') {
      throw new ValidationError('options.codec', DEV ? 'options.codec must be { name, encode, decode }, such as msgpack() from sock-client/msgpack' : 'invalid codec')
    }
    k.codec = registerCodec(codec)
  },
}
