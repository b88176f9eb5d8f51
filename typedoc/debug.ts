/**
 * The debug feature: the `debug` option (`true` for `console.debug`, or a function that gets each entry).
 * `new SockClient({ features: [debug], debug: true })`.
 * @module sock-client/debug
 */
export * from '../src/entries/debug'
