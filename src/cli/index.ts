/**
 * `sock`: the sock-client command line (Node only; built to dist/cli.js, the package's `bin`).
 * Every failure is one line on stderr that names the fix, with a non-zero exit code (see EXIT), never a stack.
 */
import { createRequire } from 'node:module'
import { chat } from './chat'
import { CliError, EXIT, type Command, parse } from './common'
import { file } from './file'
import { list } from './list'
import { listen } from './listen'
import { request } from './request'
import { send } from './send'
import { serve } from './serve'

const COMMANDS: Command[] = [serve, chat, send, request, file, listen, list]

const HELP = `Usage: sock <command> [options]

Commands:
${COMMANDS.map((c) => `  ${c.name.padEnd(8)}${c.summary}`).join('\n')}

Clients connect to ${'127.0.0.1:3000'} unless given --url host:port (or a ws:// / wss:// URL);
the token comes from --token or SOCK_TOKEN. 'sock <command> --help' tells more.

Exit codes: 0 done, 1 failed (e.g. no server), 2 bad arguments, 3 rejected by the server.

Examples:
  sock serve                       # a server on 127.0.0.1:3000
  sock listen chat --json          # print chat's messages as JSON lines
  sock send chat 'hello'           # send one message
  sock request jobs ping           # send a request, print its reply
  sock chat chat --id alice        # chat interactively`

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    const topic = name === 'help' ? COMMANDS.find((c) => c.name === rest[0]) : undefined
    if (name === undefined) {
      process.stderr.write(`${HELP}\n`)
      return EXIT.usage
    }
    process.stdout.write(`${topic ? topic.help : HELP}\n`)
    return 0
  }
  if (name === '--version' || name === '-v') {
    process.stdout.write(`${version()}\n`)
    return 0
  }
  const cmd = COMMANDS.find((c) => c.name === name)
  if (!cmd) throw new CliError(`unknown command '${name.replace(/[^\x20-\x7e]/g, '?')}': use one of ${COMMANDS.map((c) => c.name).join(', ')} (see 'sock --help')`, EXIT.usage)
  const { values, positionals, help } = parse(cmd, rest)
  if (help) {
    process.stdout.write(`${cmd.help}\n`)
    return 0
  }
  return cmd.run(values, positionals)
}

/** The package version, from the package.json above the built file (dist/ or dist/chunks/). */
function version(): string {
  const require = createRequire(import.meta.url)
  for (const path of ['../package.json', '../../package.json']) {
    try {
      const pkg = require(path) as { name?: string; version?: string }
      if (pkg.name === 'sock-client' && pkg.version) return pkg.version
    } catch {}
  }
  return 'unknown'
}

/** Prints a failure as one line; the token never appears in it. */
function fail(e: unknown, command: string | undefined): void {
  const err = e instanceof CliError ? e : new CliError(`unexpected error: ${(e as Error)?.message ?? String(e)}`)
  let msg = err.message
  for (const t of [process.env.SOCK_TOKEN, tokenArg()]) if (t && t.length >= 3) msg = msg.split(t).join('***')
  process.stderr.write(`sock${command && COMMANDS.some((c) => c.name === command) ? ` ${command}` : ''}: ${msg.replace(/\s*\n\s*/g, ' ')}\n`)
  if (process.env.SOCK_DEBUG && !(e instanceof CliError)) process.stderr.write(`${(e as Error)?.stack}\n`)
  process.exitCode = err.exitCode
}

function tokenArg(): string | undefined {
  const a = process.argv
  for (let i = 0; i < a.length; i++) {
    if (a[i] === '--token' || a[i] === '-t') return a[i + 1]
    if (a[i]!.startsWith('--token=')) return a[i]!.slice(8)
  }
  return undefined
}

const argv = process.argv.slice(2)
process.on('uncaughtException', (e) => {
  fail(e, argv[0])
  process.exit()
})
process.on('unhandledRejection', (e) => {
  fail(e, argv[0])
  process.exit()
})
main(argv).then(
  (code) => {
    process.exitCode = code
    // Everything is closed by now; should a socket linger, do not let it hold the process.
    setTimeout(() => process.exit(), 2000).unref()
  },
  (e) => {
    fail(e, argv[0])
    setTimeout(() => process.exit(), 2000).unref()
  },
)
