// Types of scripts/runtimes.mjs, for test/runtimes.test.ts.
export declare const RUNTIMES: Record<'node-22' | 'node-latest' | 'bun' | 'deno', { spec: string; bin: string }>
export declare function binOf(name: keyof typeof RUNTIMES): string
export declare function install(options?: { update?: boolean; log?: (line: string) => void }): void
