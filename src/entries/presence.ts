// `sock-client/presence`: the live set of instances in a channel, from REST and sock-client peers' announcements.
export { MAX_PRESENCE, PRESENCE_EVENT, Presence, presence, presenceOf } from '../presence'
export type { PresenceEvent, PresenceOptions } from '../presence'
export type { Instance } from '../rest'
