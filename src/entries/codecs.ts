// `sock-client/codecs`: the codec option and the registry by name that receivers decode envelopes with.
export { codecs, json, registerCodec } from '../codec'
export type { Codec, CodecOptions } from '../codec'
