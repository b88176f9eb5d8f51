/** msgpackr for `sock-client/msgpack` in bundles (`#msgpackr` without the `node` condition): a plain import, which a bundler resolves at build time. */
export { Packr } from 'msgpackr/index-no-eval'
