/**
 * The codecs feature: the `codec` option and the registry by name that receivers decode envelopes with.
 * `new SockClient({ features: [codecs], codec: msgpack() })`.
 * @module sock-client/codecs
 */
export * from '../src/codec'
