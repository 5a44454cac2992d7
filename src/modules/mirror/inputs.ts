import * as t from 'io-ts'
import { Duration, Name, Size } from '../../kernel/codecs.js'
import { DrError } from '../../kernel/errors.js'

const ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/

/**
 * A relationship id: 1–64 letters, digits, `_` and `-`, starting with a letter or digit (it names snapshots
 * and hold tags on both sites).
 *
 * @public
 */
export const MirrorId = new t.Type<string, string, unknown>(
  'MirrorId (1-64 of [A-Za-z0-9_-], starting with a letter or digit)',
  (u): u is string => typeof u === 'string' && ID_PATTERN.test(u),
  (u, c) => (typeof u === 'string' && ID_PATTERN.test(u) ? t.success(u) : t.failure(u, c)),
  t.identity,
)

const PositiveSize = t.refinement(Size, (n) => n > 0, 'PositiveSize')
const PositiveDuration = t.refinement(Duration, (n) => n > 0, 'PositiveDuration')
const ChunkSize = t.refinement(Size, (n) => n >= 4096 && n <= 64 * 1024 * 1024, 'ChunkSize (4KiB..64MiB)')
const Retries = t.refinement(t.number, (n) => Number.isSafeInteger(n) && n >= 0 && n <= 1000, 'Retries (0..1000)')

/**
 * Options of `mirrors.create`.
 *
 * @public
 */
export const CreateMirrorInput = t.intersection(
  [
    t.type({
      source: t.type({ site: Name, volume: Name }),
      destination: t.intersection([t.type({ site: Name }), t.partial({ volume: Name, overwrite: t.boolean })]),
    }),
    t.partial({
      id: MirrorId,
      start: t.boolean,
      cut: t.partial({ every: PositiveDuration, highWaterMark: PositiveSize, probe: PositiveDuration }),
      playback: t.partial({ every: PositiveDuration, highWaterMark: PositiveSize }),
      transfer: t.partial({ chunkSize: ChunkSize, retries: Retries, stagingMax: PositiveSize, bandwidth: PositiveSize, backlogMax: PositiveSize }),
    }),
  ],
  'CreateMirrorOptions',
)

/**
 * What `mirrors.create` takes: the source volume, the destination site (and volume, default the source's name;
 * `overwrite: true` to replace an existing destination that holds data), and optional cut, playback and
 * transfer policies given as durations and sizes (`"30s"`, `"64MiB"`; `transfer.bandwidth` is bytes per second
 * the source may send, unlimited when absent; `transfer.backlogMax` suspends the source's I/O while that much
 * changed data waits to be played back at the destination).
 *
 * @public
 */
export type CreateMirrorOptions = t.OutputOf<typeof CreateMirrorInput>

/**
 * Options of `mirrors.setBandwidth`: the bytes per second the source may send (a size such as `"10MiB"`), or null
 * to lift the limit.
 *
 * @public
 */
export const MirrorBandwidthInput = t.type({ bandwidth: t.union([PositiveSize, t.null]) }, 'MirrorBandwidthOptions')

/**
 * What `mirrors.setBandwidth` takes.
 *
 * @public
 */
export type MirrorBandwidthOptions = t.OutputOf<typeof MirrorBandwidthInput>

/**
 * Options of `mirrors.failover`: the mode (`sync`: zero loss, both sites up; `default`: apply what was completely
 * received; `now`: promote at once), an optional drain timeout and an abort signal.
 *
 * @public
 */
export const MirrorFailoverInput = t.intersection(
  [t.type({ mode: t.union([t.literal('sync'), t.literal('default'), t.literal('now')]) }), t.partial({ timeout: PositiveDuration })],
  'MirrorFailoverOptions',
)

/**
 * What `mirrors.failover` takes (plus an optional `signal`).
 *
 * @public
 */
export type MirrorFailoverOptions = t.OutputOf<typeof MirrorFailoverInput> & { readonly signal?: AbortSignal }

/**
 * Options of `mirrors.resync`: the writes the old source made after the restart point are undone, so the caller
 * must either acknowledge that loss or ask for a held safety snapshot that keeps them.
 *
 * @public
 */
export const MirrorResyncInput = t.partial({ acknowledgeDataLoss: t.literal(true), safetySnapshot: t.literal(true), timeout: PositiveDuration }, 'MirrorResyncOptions')

/**
 * What `mirrors.resync` takes (plus an optional `signal`).
 *
 * @public
 */
export type MirrorResyncOptions = t.OutputOf<typeof MirrorResyncInput> & { readonly signal?: AbortSignal }

/**
 * Options of `mirrors.failback` and `mirrors.swap`: an optional drain timeout.
 *
 * @public
 */
export const MirrorReverseInput = t.partial({ timeout: PositiveDuration }, 'MirrorReverseOptions')

/**
 * What `mirrors.failback` and `mirrors.swap` take (plus an optional `signal`).
 *
 * @public
 */
export type MirrorReverseOptions = t.OutputOf<typeof MirrorReverseInput> & { readonly signal?: AbortSignal }

/**
 * Options of `mirrors.list`: optionally only the relationships touching one site.
 *
 * @public
 */
export const ListMirrorsInput = t.partial({ site: Name }, 'ListMirrorsOptions')

/**
 * What `mirrors.list` takes.
 *
 * @public
 */
export type ListMirrorsOptions = t.OutputOf<typeof ListMirrorsInput>

/**
 * Splits an optional `signal` off an options object before the rest is decoded; a `signal` that is not an
 * `AbortSignal` is rejected with `E_INVALID_INPUT`.
 */
export function splitSignal(options: unknown, what: string): { rest: unknown; signal: AbortSignal | undefined } {
  if (options === undefined) return { rest: {}, signal: undefined }
  if (options === null || typeof options !== 'object' || Array.isArray(options)) return { rest: options, signal: undefined }
  const { signal, ...rest } = options as { signal?: unknown }
  if (signal === undefined) return { rest, signal: undefined }
  if (signal instanceof AbortSignal) return { rest, signal }
  throw new DrError('E_INVALID_INPUT', `invalid ${what}: field "signal" must be an AbortSignal`, { what, violations: [{ path: 'signal', expected: 'AbortSignal', actual: typeof signal }] })
}
