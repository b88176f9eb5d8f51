/**
 * The addresses feature: every pocketsocket `setup()` form beyond one address, `list('mix' | 'flat')`, and several
 * servers at once (broadcast, with each message delivered once). `new SockClient({ features: [addresses] })`.
 * @module sock-client/addresses
 */
export * from '../src/addresses'
