/**
 * The presence feature: `presenceOf(client, channel)` (the full client's `client.presence(channel)`), the live set of
 * instances in a channel from every address's REST routes and the announcements of sock-client peers.
 * `new SockClient({ features: [presence] })`.
 * @module sock-client/presence
 */
export * from '../src/entries/presence'
