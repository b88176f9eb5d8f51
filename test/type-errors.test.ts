// What tsc prints for a typed client used wrongly: the compile error names the valid channels and events, not an
// internal type (it said `Events<AppEvents, "chat">`). The snippet is compiled in memory with the project's compiler
// options, against src/ and against the built types in dist/ (what users compile against; `npm test` builds first);
// test/types.check.ts proves that each of these lines is an error at all.
import { resolve } from 'node:path'
import ts from 'typescript'
import { beforeAll, describe, expect, it } from 'vitest'

const root = resolve(__dirname, '..')
const file = resolve(root, 'test', '__type-errors__.ts')

/** One line per case, each an error on purpose, after the HEAD lines of imports and declarations. */
const CASES = [
  ["signal('chat', 'nope', 'x')", 'unknown event'],
  ["signal('lobby', 'message', 'x')", 'unknown channel'],
  ["signal('chat', 'score', 1)", 'event of another channel'],
  ["on('chat', 'nope', () => {})", 'on, unknown event'],
  ["on('lobby', () => {})", 'on, unknown channel'],
  ["once('game', 'nope', () => {})", 'once, unknown event'],
  ["join('lobby')", 'join, unknown channel'],
  ["messages('game', 'nope')", 'messages, unknown event'],
  ["connection.on('chat', 'nope', () => {})", 'connection.on, unknown event'],
  ["core.signal('chat', 'nope', 'x')", 'the kernel, unknown event'],
  ["sendFile('lobby', 'a.txt', new Uint8Array(1))", 'sendFile, unknown channel'],
  ["instances('lobby')", 'instances, unknown channel'],
  ["signal('chat', 'message', 42)", 'wrong payload'],
] as const
const head = (from: string) => [
  `import { SockClient } from '${from}'`,
  `import { SockClient as CoreClient } from '${from}/core'`,
  'type AppEvents = { chat: { message: string; typing: { who: string } }; game: { move: { x: number }; score: number } }',
  'declare const c: SockClient<AppEvents>',
  'declare const core: CoreClient<AppEvents>',
]
const HEAD = head('../src').length
const source = (from: string) => [...head(from), ...CASES.map(([code]) => (code.startsWith('core.') ? code : `c.${code}`))].join('\n')

/** tsc's messages for the snippet importing `from`, by line. */
function compile(from: string): Map<number, string> {
  const text = source(from)
  const config = ts.getParsedCommandLineOfConfigFile(resolve(root, 'tsconfig.json'), {}, { ...ts.sys, onUnRecoverableConfigFileDiagnostic: () => {} })!
  const host = ts.createCompilerHost(config.options)
  const { getSourceFile, fileExists, readFile } = host
  host.getSourceFile = (name, lang, ...rest) => (resolve(name) === file ? ts.createSourceFile(name, text, lang) : getSourceFile.call(host, name, lang, ...rest))
  host.fileExists = (name) => resolve(name) === file || fileExists.call(host, name)
  host.readFile = (name) => (resolve(name) === file ? text : readFile.call(host, name))
  const program = ts.createProgram([file], { ...config.options, noEmit: true }, host)
  const messages = new Map<number, string>()
  for (const d of ts.getPreEmitDiagnostics(program)) {
    if (d.file && resolve(d.file.fileName) === file && d.start !== undefined) {
      const line = d.file.getLineAndCharacterOfPosition(d.start).line
      messages.set(line, (messages.get(line) ?? '') + ts.flattenDiagnosticMessageText(d.messageText, '\n'))
    }
  }
  return messages
}

describe.each([
  ['src', '../src'],
  ['dist (the published types)', '../dist'],
])('a typed client used wrongly, against %s: the compile error names the valid ones', (where, from) => {
  let messages: Map<number, string>
  beforeAll(() => {
    messages = compile(from)
  }, 60_000)

  it('has an error on every case line and nowhere else', () => {
    expect([...messages.keys()].sort((a, b) => a - b)).toEqual(CASES.map((_, i) => HEAD + i))
  })

  it.each(CASES.map(([code, what], i) => [what, code, i] as const))('%s: %s', (_what, code, i) => {
    const text = messages.get(HEAD + i)!
    if (where === 'src')
      console.log(
        `${code}\n  ${text
          .split('\n')
          .filter((l) => !/'"socket"'/.test(l))
          .join('\n  ')}`,
      )
    const valid = /, 42\)/.test(code) ? 'string' : /'lobby'/.test(code) ? '"chat" | "game"' : /'game'/.test(code) ? '"move" | "score"' : '"message" | "typing"'
    expect(text).toContain(`type '${valid}'`)
    expect(text).not.toMatch(/\b(Events|Channels)<|AppEvents\[/)
  })
})
