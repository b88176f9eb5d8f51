/**
 * `messages(client, channel, event?, options)`: a channel's messages as a bounded async iterator.
 * @module sock-client/messages
 */
export * from '../src/messages'
