import { decode } from '../../kernel/decode.js'
import { Name } from '../../kernel/codecs.js'
import { FenceGuard, type FenceToken } from '../../kernel/fencing.js'
import type { IdentityRegistry } from '../../ports/network.js'
import { NonEmptyText } from './network-codecs.js'

/**
 * An in-memory registry of network identity: which site holds each virtual address, and name records
 * pointing at addresses. Writes are checked against fence tokens; claims and releases are idempotent, and a
 * site cannot release an address another site holds. One is shared by every port of a memory network fabric;
 * it can also be used on its own.
 *
 * @public
 */
export class MemoryIdentityRegistry implements IdentityRegistry {
  readonly #guard = new FenceGuard('memory.identity')
  readonly #owners = new Map<string, string>()
  readonly #records = new Map<string, string>()

  async claimAddress(address: string, site: string, token: FenceToken): Promise<void> {
    const key = decode(NonEmptyText, address, 'address')
    const owner = decode(Name, site, 'site')
    this.#guard.check(token, 'claimAddress')
    this.#owners.set(key, owner)
  }

  async releaseAddress(address: string, site: string, token: FenceToken): Promise<void> {
    const key = decode(NonEmptyText, address, 'address')
    const owner = decode(Name, site, 'site')
    this.#guard.check(token, 'releaseAddress')
    if (this.#owners.get(key) === owner) this.#owners.delete(key)
  }

  async presentToken(token: FenceToken): Promise<void> {
    this.#guard.check(token, 'presentToken')
  }

  async addressOwner(address: string): Promise<string | undefined> {
    return this.#owners.get(decode(NonEmptyText, address, 'address'))
  }

  async setNameRecord(name: string, address: string, token: FenceToken): Promise<void> {
    const key = decode(NonEmptyText, name, 'name record')
    const value = decode(NonEmptyText, address, 'address')
    this.#guard.check(token, 'setNameRecord')
    this.#records.set(key, value)
  }

  async getNameRecord(name: string): Promise<string | undefined> {
    return this.#records.get(decode(NonEmptyText, name, 'name record'))
  }

  async deleteNameRecord(name: string, token: FenceToken): Promise<void> {
    const key = decode(NonEmptyText, name, 'name record')
    this.#guard.check(token, 'deleteNameRecord')
    this.#records.delete(key)
  }
}
