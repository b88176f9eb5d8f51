/**
 * Type-9 control frames (docs/protocol-replies.md): `data` is `<op>:<id>:<n>:<rest>`, one grammar for every op,
 * so that a reply without data, a cancel and a stream's pieces and credit need no JSON inside the frame's JSON.
 * Browser-safe; no sockets.
 */
export { TYPE_CONTROL } from './envelope'

/** One lowercase op, an id of letters and digits, a decimal number without leading zeros (at most 2^53 - 1), the rest. */
const CONTROL_RE = /^([a-z]):([A-Za-z0-9]{1,64}):(0|[1-9][0-9]{0,15}):/

export interface Control {
  op: string
  id: string
  n: number
  rest: string
}

/** The parts of a control frame's `data`, or `undefined` when it does not follow the grammar. */
export function parseControl(data: string): Control | undefined {
  const m = CONTROL_RE.exec(data)
  if (!m) return undefined
  const n = Number(m[3])
  return Number.isSafeInteger(n) ? { op: m[1]!, id: m[2]!, n, rest: data.slice(m[0].length) } : undefined
}

/** The `data` of a control frame. */
export const control = (op: string, id: string, n: number, rest = ''): string => `${op}:${id}:${n}:${rest}`
