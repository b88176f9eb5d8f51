/** `sock list <channel> [--json]`: the instances in a channel (REST), as a table or JSON. */
import { channelArg, clean, CLIENT_HELP, CLIENT_OPTIONS, explain, makeClient, ONE_SHOT, positional, type Command } from './common'

export const list: Command = {
  name: 'list',
  summary: 'list the instances in a channel (table or --json)',
  help: `Usage: sock list <channel> [--json] [options]

Prints the instances connected to <channel> as a table, or with --json as
[{"channel","id","created_at"}] (an empty channel prints nothing, or [] with --json).

Options:
      --json           print JSON instead of a table
${CLIENT_HELP.split('\n')
  .filter((l) => !l.includes('--id'))
  .join('\n')}`,
  options: { ...without(CLIENT_OPTIONS, 'id'), json: { type: 'boolean' } },
  async run(values, positionals) {
    const [ch] = positional(list, positionals, ['channel'])
    const channel = channelArg(ch!)
    const setup = makeClient(values, ONE_SHOT)
    let rows
    try {
      rows = (await setup.client.instances(channel)).map((i) => ({ channel: i.channel, id: i.id, created_at: i.createdAt.toISOString() }))
    } catch (e) {
      throw explain(e, setup.address)
    } finally {
      setup.client.close()
    }
    rows.sort((a, b) => a.created_at.localeCompare(b.created_at) || a.id.localeCompare(b.id))
    if (values.json) {
      process.stdout.write(`${JSON.stringify(rows)}\n`)
    } else if (rows.length === 0) {
      process.stderr.write(`nobody is in channel '${channel}'\n`)
    } else {
      process.stdout.write(
        table(
          ['ID', 'CREATED'],
          rows.map((r) => [clean(r.id), r.created_at]),
        ),
      )
    }
    return 0
  },
}

function without<T extends object>(o: T, key: keyof T): T {
  const copy = { ...o }
  delete copy[key]
  return copy
}

/** Left-aligned columns separated by two spaces. */
export function table(head: string[], rows: string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)))
  const line = (r: string[]) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ')
  return [head, ...rows].map(line).join('\n') + '\n'
}
