/**
 * msgpackr for `sock-client/msgpack` in Node (the package's `#msgpackr` import under the `node` condition):
 * an optional peer dependency, required synchronously so that a missing package is a `MissingPackageError` that
 * names the install command, in ESM and CJS alike. Its CSP-safe build, the one browsers get (`./msgpackr-browser`),
 * so every runtime encodes and decodes the same way.
 */
import { createRequire } from 'node:module'
import { missingPackage } from './peer'

type Msgpackr = typeof import('msgpackr/index-no-eval')

function load(): Msgpackr {
  try {
    return createRequire(import.meta.url)('msgpackr/index-no-eval') as Msgpackr
  } catch (e) {
    throw missingPackage(e, 'msgpackr', 'sock-client/msgpack')
  }
}

export const { Packr } = load()
