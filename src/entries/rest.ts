// `sock-client/rest`: instances() and instance() over the REST routes, and the registration check.
export { instance, instances, rest } from '../rest'
export type { Instance, RestFeatureOptions } from '../rest'
