// Telling "the optional peer is not installed" apart from any other failure to load it (src/peer.ts), on the errors
// Node's loaders really throw. The packed package's own cases (ESM, CJS, msgpackr, ioredis) are in package.test.ts.
import { createRequire } from 'node:module'
import { describe, expect, it } from 'vitest'
import { isMissingPackageError, isSockError, MissingPackageError } from '../src'
import { missingPackage } from '../src/peer'

const require = createRequire(import.meta.url)
function loadError(name: string): unknown {
  try {
    require(name)
  } catch (e) {
    return e
  }
  throw new Error(`${name} loaded`)
}

describe('missingPackage', () => {
  it('turns "cannot find" the package itself, or one of its files, into a MissingPackageError naming the install command', () => {
    for (const spec of ['sock-no-such-package', 'sock-no-such-package/index-no-eval']) {
      const cause = loadError(spec)
      const e = missingPackage(cause, 'sock-no-such-package', 'sock-client/feature') as MissingPackageError
      expect(e).toBeInstanceOf(MissingPackageError)
      expect(isMissingPackageError(e) && isSockError(e)).toBe(true)
      expect({ code: e.code, packageName: e.packageName, feature: e.feature, install: e.install, cause: e.cause }).toEqual({
        code: 'ERR_MISSING_PACKAGE',
        packageName: 'sock-no-such-package',
        feature: 'sock-client/feature',
        install: 'npm i sock-no-such-package',
        cause,
      })
      expect(e.message).toBe('sock-client/feature needs the sock-no-such-package package, an optional peer dependency of sock-client that is not installed: run npm i sock-no-such-package')
    }
  })

  it("leaves every other error alone: another package missing (the peer's own dependency), a longer name, a failure inside the package", () => {
    const other = loadError('sock-no-such-dependency')
    expect(missingPackage(other, 'sock-no-such-package', 'f')).toBe(other)
    const longer = loadError('sock-no-such-package-plugin')
    expect(missingPackage(longer, 'sock-no-such-package', 'f')).toBe(longer)
    const broken = new SyntaxError("Unexpected token in 'sock-no-such-package'")
    expect(missingPackage(broken, 'sock-no-such-package', 'f')).toBe(broken)
    expect(missingPackage(undefined, 'x', 'f')).toBe(undefined)
    expect(missingPackage('a string', 'x', 'f')).toBe('a string')
  })

  it("reads what Node's ESM loader, Bun and Deno say (their messages, as each printed them here)", () => {
    const notFound = (code: string, message: string) => Object.assign(new Error(message), { code })
    const errors = [
      notFound('ERR_MODULE_NOT_FOUND', "Cannot find package 'ioredis' imported from /app/node_modules/sock-client/dist/chunks/redis-DBHvOtX_.js"), // Node and Bun, import()
      notFound('MODULE_NOT_FOUND', "Cannot find module 'ioredis/built/index.js'"), // Node, Bun and Deno, require()
      notFound('ERR_MODULE_NOT_FOUND', 'Import "ioredis" not a dependency'), // Deno, import()
    ]
    for (const e of errors) expect(missingPackage(e, 'ioredis', 'createSockServer({ redis })')).toBeInstanceOf(MissingPackageError)
    expect(missingPackage(notFound('ERR_MODULE_NOT_FOUND', 'Import "denque" not a dependency'), 'ioredis', 'f')).not.toBeInstanceOf(MissingPackageError)
  })
})
