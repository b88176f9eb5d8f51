// `sock-client/messages`: the messages of a channel as an async iterator, bounded in count and bytes.
export { messages } from '../messages'
export type { MessagesOptions } from '../messages'
