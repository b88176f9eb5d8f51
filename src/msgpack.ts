/**
 * `sock-client/msgpack`: a msgpack codec (msgpackr) that keeps Date, Map, Set, BigInt and Uint8Array intact.
 * Uses msgpackr's no-eval build, so it works under a Content-Security-Policy without 'unsafe-eval'. msgpackr is an
 * optional peer dependency: without it, loading this entry throws `MissingPackageError` in Node (`./msgpackr`) and a
 * bundler fails to resolve it. Loading this entry registers the codec, so any client in the page can decode msgpack envelopes.
 */
import { Packr } from './msgpackr'
import { fromBase64, toBase64 } from './bytes'
import { registerCodec, type Codec } from './codec'

function create(): Codec {
  // Records keep plain objects apart from Maps (mapsAsObjects: false decodes msgpack maps as Map);
  // every message carries its own record definitions, so no state is shared between sender and receiver.
  const packr = new Packr({ useRecords: true, mapsAsObjects: false, moreTypes: true, useBigIntExtension: true, int64AsType: 'bigint' })
  return {
    name: 'msgpack',
    encode: (data) => toBase64(packr.pack(data)),
    decode: (text) => {
      const bytes = fromBase64(text)
      if (!bytes) throw new Error('payload is not base64')
      return packr.unpack(bytes)
    },
  }
}

const shared = registerCodec(create())

/** The msgpack codec: `new SockClient({ codec: msgpack() })`. */
export function msgpack(): Codec {
  return shared
}

export type { Codec }
