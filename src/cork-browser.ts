/** The script-tag bundles' stand-in for `./cork` (rollup.config.mjs swaps it in): a browser's WebSocket has no TCP socket to cork. */
export function batch(_ws: object, _size: number): void {}
