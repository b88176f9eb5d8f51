/** `sock chat <channel>`: an interactive Sock client that reconnects instead of exiting. */
import { createInterface } from 'node:readline'
import type { SockFile, SockMessage } from '../client'
import { channelArg, clean, CLIENT_HELP, CLIENT_OPTIONS, connect, describe, EXIT, explain, makeClient, positional, type Command } from './common'
import { readFile, sendFile } from './file'

const COMMANDS = `commands: message <text> (or any line), file <path>, list, help, quit`

export const chat: Command = {
  name: 'chat',
  summary: 'chat on a channel interactively (reconnects on its own)',
  help: `Usage: sock chat <channel> [options]

Joins <channel> and reads lines from stdin:
  <text> or message <text>   send a text message
  file <path>                send a file
  list                       show who is in the channel
  help                       show these commands
  quit                       leave (so does Ctrl-D or Ctrl-C)
Incoming messages print as '<from>: <text>'. A lost connection is retried with
backoff, and every state change is shown.

Options:
${CLIENT_HELP}`,
  options: CLIENT_OPTIONS,
  async run(values, positionals) {
    const [ch] = positional(chat, positionals, ['channel'])
    const channel = channelArg(ch!)
    const setup = makeClient(values)
    const { client, address } = setup
    const tty = process.stdin.isTTY === true && process.stdout.isTTY === true
    const rl = createInterface({ input: process.stdin, output: tty ? process.stdout : undefined, terminal: tty })
    rl.setPrompt(`${channel}> `)

    // Print above the prompt without mangling what the user is typing.
    const print = (stream: NodeJS.WriteStream, line: string) => {
      if (tty) {
        stream.write('\r\x1b[K')
        stream.write(`${line}\n`)
        rl.prompt(true)
      } else stream.write(`${line}\n`)
    }
    const out = (line: string) => print(process.stdout, line)
    const status = (line: string) => print(process.stderr, `* ${line}`)

    client.on(channel, (event: string, m: SockMessage) => {
      if (event === 'message' && typeof m.data === 'string') out(`${clean(m.from)}: ${clean(m.data)}`)
      else if (event === 'file') {
        const f = m.data as SockFile
        out(`${clean(m.from)} sent file ${clean(String(f?.name))} (${f?.size} bytes)`)
      } else out(`${clean(m.from)} ${clean(event)}: ${clean(JSON.stringify(m.data) ?? 'null')}`)
    })

    // Input is handled from the start: what is typed while connecting waits in the client's queue.
    let done!: (code: number) => void
    const finished = new Promise<number>((resolve) => (done = resolve))
    const pending = new Set<Promise<unknown>>()
    let joined = false
    let ending = false
    const track = (p: Promise<unknown>, what: string, ok?: string) => {
      const q = p.then(
        () => ok && status(ok),
        (e) => joined && status(`${what} failed: ${explain(e, address).message}`),
      )
      pending.add(q)
      void q.finally(() => pending.delete(q))
    }
    let connecting: Promise<void> = Promise.resolve()
    const finish = async (code: number) => {
      if (ending) return
      ending = true
      rl.close()
      if (code === 0) {
        // Quitting while connecting waits for the outcome: a server that cannot be reached still fails.
        await connecting.catch(() => {})
        // Whatever was typed before quitting is still sent (it waits in the queue while reconnecting).
        await Promise.allSettled([...pending])
      }
      client.close()
      done(code)
    }

    client.on('socket', (event, info) => {
      if (!joined) return // connect() reports what happens before the channel opened
      if (event === 'error' && info.error?.code === 'ERR_REJECTED') {
        status(explain(info.error, address).message)
        return void finish(EXIT.rejected)
      }
      const s = event === 'open' ? `connected again as ${client.idOf(channel)}` : describe(event, info, client.idOf(channel))
      if (s) status(s)
    })

    rl.on('line', (raw) => {
      const line = raw.trim()
      const [word, ...rest] = line.split(/\s+/)
      const arg = line.slice(word!.length).trim()
      if (line === '') {
        // nothing
      } else if (word === 'quit' && !rest.length) {
        return void finish(0)
      } else if (word === 'help' && !rest.length) {
        status(COMMANDS)
      } else if (word === 'list' && !rest.length) {
        track(
          client.instances(channel).then((all) => {
            const me = client.idOf(channel)
            status(`in '${channel}': ${all.map((i) => (i.id === me ? `${clean(i.id)} (you)` : clean(i.id))).join(', ') || 'nobody'}`)
          }),
          'list',
        )
      } else if (word === 'file') {
        if (!arg) status('usage: file <path>')
        else {
          try {
            const { name, bytes } = readFile(arg)
            track(
              sendFile(client, channel, name, bytes, () => {}),
              `sending ${clean(name)}`,
              `sent file ${clean(name)} (${bytes.length} bytes)`,
            )
          } catch (e) {
            status((e as Error).message)
          }
        }
      } else if (word === 'message') {
        if (!arg) status('usage: message <text>')
        else track(client.signal(channel, 'message', arg), 'message')
      } else {
        track(client.signal(channel, 'message', raw), 'message')
      }
      if (tty && !ending) rl.prompt()
    })
    rl.on('close', () => void finish(0)) // end of input (Ctrl-D, or the pipe closed)
    rl.on('SIGINT', () => void finish(0))
    process.once('SIGINT', () => void finish(0))
    process.once('SIGTERM', () => void finish(0))

    status(`connecting to ${address} ...`)
    connecting = connect(setup, channel)
    try {
      await connecting
    } catch (e) {
      ending = true
      rl.close() // stdin must not hold the process
      throw e
    }
    joined = true
    status(`joined channel '${channel}' as ${client.idOf(channel)}; ${COMMANDS}`)
    return finished
  },
}
