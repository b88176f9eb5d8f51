/** Optional peer dependencies (ioredis, msgpackr): telling "not installed" apart from any other failure to load one. */
import { MissingPackageError } from './errors'

/**
 * `error` as a `MissingPackageError` when it says that `name` itself cannot be found (Node's ESM and CJS loaders,
 * Bun and Deno all name it in quotes); any other error, a missing dependency of that package included, unchanged.
 */
export function missingPackage(error: unknown, name: string, feature: string): unknown {
  const code = (error as { code?: unknown } | null)?.code
  const message = String((error as { message?: unknown } | null)?.message ?? '')
  const notFound = code === 'MODULE_NOT_FOUND' || code === 'ERR_MODULE_NOT_FOUND' || /cannot find (module|package)/i.test(message)
  return notFound && new RegExp(`['"]${name}(/[^'"]*)?['"]`).test(message) ? new MissingPackageError(name, feature, { cause: error }) : error
}
