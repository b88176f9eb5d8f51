// `sock-client/addresses`: every setup() form beyond one address, list('mix' | 'flat'), broadcast with dedupe.
export { addresses, AddressBook, flat, mix, makeAddress, parseAddress } from '../addresses'
export type { Address, AddressList, ListType, Mode, NamedAddress, Port, SetupArgs } from '../address'
