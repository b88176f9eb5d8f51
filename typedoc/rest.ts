/**
 * The REST feature: `instances(client, channel)`, `instance(client, channel, id)` and the registration check.
 * `new SockClient({ features: [rest] })`.
 * @module sock-client/rest
 */
export * from '../src/rest'
