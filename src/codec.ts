/**
 * Codecs turn an event payload into the string an envelope carries. JSON is the core default; others (msgpack,
 * from `sock-client/msgpack`) register themselves by name so that any receiver that loaded them can decode.
 */
export interface Codec {
  /** Written into the envelope (`c`), so the receiver knows how to decode. `json` is implied when absent. */
  readonly name: string
  encode(data: unknown): string
  decode(text: string): unknown
}

export const json: Codec = {
  name: 'json',
  encode: (data) => JSON.stringify(data),
  decode: (text) => JSON.parse(text),
}

// One registry per realm, shared by every bundle of sock-client loaded in it (ESM, CJS, UMD).
const KEY = Symbol.for('sock-client.codecs')
const registry: Map<string, Codec> = ((globalThis as Record<symbol, unknown>)[KEY] as Map<string, Codec>) ?? new Map()
;(globalThis as Record<symbol, unknown>)[KEY] = registry

/** Makes `codec` available for decoding envelopes that name it. */
export function registerCodec(codec: Codec): Codec {
  if (codec.name !== 'json') registry.set(codec.name, codec)
  return codec
}

export function findCodec(name: string): Codec | undefined {
  return name === 'json' ? json : registry.get(name)
}
