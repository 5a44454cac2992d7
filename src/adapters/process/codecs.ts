import * as t from 'io-ts'
import { Name, NonNegativeInt, PositiveInt, implementing } from '../../kernel/codecs.js'
import type { Clock } from '../../kernel/clock.js'
import { HostDefinitionCodec } from '../../ports/host-codecs.js'
import type { StoragePort } from '../../ports/storage.js'

/** A string with at least one character. */
const NonEmptyString = new t.Type<string, string, unknown>(
  'non-empty string',
  (u): u is string => typeof u === 'string' && u.length > 0,
  (u, c) => (typeof u === 'string' && u.length > 0 ? t.success(u) : t.failure(u, c)),
  t.identity,
)

/** An absolute path. */
export const AbsolutePath = new t.Type<string, string, unknown>(
  'absolute path',
  (u): u is string => typeof u === 'string' && u.startsWith('/'),
  (u, c) => (typeof u === 'string' && u.startsWith('/') ? t.success(u) : t.failure(u, c)),
  t.identity,
)

/** A guest command as the options name it. */
const GuestCommandCodec = t.type({ command: NonEmptyString, args: t.array(t.string) }, 'GuestCommand')

/** The options of `processHost`. */
export const ProcessHostOptionsCodec = t.intersection(
  [
    t.type({ workDir: NonEmptyString }),
    t.partial({
      hosts: t.array(HostDefinitionCodec),
      guest: GuestCommandCodec,
      rootDir: NonEmptyString,
      hookShell: NonEmptyString,
      stopGraceMs: NonNegativeInt,
      controlTimeoutMs: PositiveInt,
      clock: implementing<Clock>('Clock', ['now', 'setTimer', 'sleep']),
      freezeMechanism: t.keyof({ stop: null, 'lowest-priority': null }),
      disks: t.type({ storage: implementing<StoragePort>('StoragePort', ['read', 'write', 'trim', 'volumeInfo']) }),
    }),
  ],
  'ProcessHostOptions',
)

/** The options of `startActor`. */
export const ProcessActorOptionsCodec = t.intersection(
  [
    t.type({ id: Name, command: NonEmptyString, args: t.array(t.string), volumes: t.array(t.string) }),
    t.partial({ env: t.record(t.string, t.string), cwd: NonEmptyString }),
  ],
  'ProcessActorOptions',
)
