/**
 * The etcd key layout of drkit, under a prefix `p`:
 *
 * - `p/v/<name>` — the version of journal stream `<name>` (decimal text);
 * - `p/j/<name>#<last version, 16 digits>` — one append: its records, the time and the appender's id;
 * - `p/s/<name>` — the newest saved snapshot of the stream;
 * - `p/l/<scope>` — the leadership key of a lease scope, attached to the holder's etcd lease.
 *
 * Names are escaped (`%` → `%25`, `#` → `%23`) so that `#` ends a stream name unambiguously, which makes the
 * records of one stream exactly one key range even when another stream's name extends it (`a` and `a/b`).
 * Escaping character by character keeps prefixes: a stream starts with `x` exactly when its escaped name starts
 * with the escaped `x`.
 */

const VERSION_DIGITS = 16

/** Escapes a stream name or scope for use inside a key. */
export function escapeName(name: string): string {
  return name.replace(/[%#]/g, (c) => (c === '%' ? '%25' : '%23'))
}

/** Undoes {@link escapeName}. */
export function unescapeName(escaped: string): string {
  return escaped.replace(/%2[35]/g, (code) => (code === '%23' ? '#' : '%'))
}

/**
 * The part of a stream prefix that can be matched on the server: a prefix may end inside a surrogate pair, which
 * has no UTF-8 form, so the unpaired half is left for the caller to match on the decoded names.
 */
export function serverPrefix(prefix: string): string {
  return /[\ud800-\udbff]$/.test(prefix) ? prefix.slice(0, -1) : prefix
}

/** The smallest key greater than every key that starts with `key` (etcd's `range_end` of a prefix range). */
export function prefixEnd(key: Buffer): Buffer {
  const end = Buffer.from(key)
  for (let i = end.length - 1; i >= 0; i--) {
    const byte = end[i] ?? 0
    if (byte < 0xff) {
      end[i] = byte + 1
      return end.subarray(0, i + 1)
    }
  }
  // A key of only 0xff bytes: every key after it (etcd reads "\0" as "to the end").
  return Buffer.from([0])
}

/** The keys of one drkit installation under its prefix. */
export class EtcdKeys {
  readonly #prefix: string

  constructor(prefix: string) {
    this.#prefix = prefix
  }

  /** `p/v/<stream>`. */
  version(stream: string): Buffer {
    return Buffer.from(`${this.#prefix}/v/${escapeName(stream)}`)
  }

  /** Where version keys of the streams starting with `prefix` begin (a range prefix). */
  versionsFrom(prefix: string): Buffer {
    return Buffer.from(`${this.#prefix}/v/${escapeName(serverPrefix(prefix))}`)
  }

  /** The stream a version key belongs to. */
  streamOfVersionKey(key: Buffer): string {
    return unescapeName(key.toString('utf8').slice(this.#prefix.length + 3))
  }

  /** `p/j/<stream>#<lastVersion>`: the key of the append that ends at `lastVersion`. */
  batch(stream: string, lastVersion: number): Buffer {
    return Buffer.from(`${this.#prefix}/j/${escapeName(stream)}#${String(lastVersion).padStart(VERSION_DIGITS, '0')}`)
  }

  /** The end (exclusive) of the key range of `stream`'s appends. */
  batchesEnd(stream: string): Buffer {
    return Buffer.from(`${this.#prefix}/j/${escapeName(stream)}$`)
  }

  /** The prefix of every append key, of every stream. */
  journal(): Buffer {
    return Buffer.from(`${this.#prefix}/j/`)
  }

  /** The stream and last version an append key names, or undefined for a key that is not one. */
  parseBatch(key: Buffer): { readonly stream: string; readonly lastVersion: number } | undefined {
    const text = key.toString('utf8')
    const head = `${this.#prefix}/j/`
    const hash = text.lastIndexOf('#')
    if (!text.startsWith(head) || hash < head.length) return undefined
    const digits = text.slice(hash + 1)
    if (!/^\d{16}$/.test(digits)) return undefined
    return { stream: unescapeName(text.slice(head.length, hash)), lastVersion: Number(digits) }
  }

  /** `p/s/<stream>`. */
  snapshot(stream: string): Buffer {
    return Buffer.from(`${this.#prefix}/s/${escapeName(stream)}`)
  }

  /** `p/l/<scope>`. */
  lease(scope: string): Buffer {
    return Buffer.from(`${this.#prefix}/l/${escapeName(scope)}`)
  }
}
