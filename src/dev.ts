/**
 * `true` in Node and in development builds: every error carries a long message that names the problem and the fix.
 * Production browser builds (the package's default browser entries and the script-tag bundles) swap this module for
 * `./dev-production`, so each `DEV ? long : short` folds to the short message at build time and the long texts are
 * not shipped. Codes, names and every field of an error are the same in both.
 */
export const DEV: boolean = true
