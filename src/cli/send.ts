/** `sock send <channel> <text>`: one plain Sock text frame (type 1), then exit. */
import { channelArg, CLIENT_HELP, CLIENT_OPTIONS, connect, explain, makeClient, ONE_SHOT, positional, type Command } from './common'

export const send: Command = {
  name: 'send',
  summary: 'send one text message to a channel and exit',
  help: `Usage: sock send <channel> <text> [options]

Sends <text> as a plain Sock message (type 1, as sockc sends it) and exits 0 once it is written.

Options:
${CLIENT_HELP}

Example:
  sock send chat 'hello there'`,
  options: CLIENT_OPTIONS,
  async run(values, positionals) {
    const [ch, text] = positional(send, positionals, ['channel', 'text'])
    const channel = channelArg(ch!)
    const setup = makeClient(values, ONE_SHOT)
    await connect(setup, channel)
    try {
      await setup.client.signal(channel, 'message', text!)
    } catch (e) {
      throw explain(e, setup.address)
    } finally {
      setup.client.close()
    }
    return 0
  },
}
