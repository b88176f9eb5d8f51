/** The production browser builds' stand-in for `./dev` (rollup.config.mjs swaps it in): short error messages. */
export const DEV: boolean = false
