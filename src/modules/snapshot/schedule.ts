import * as t from 'io-ts'
import { Duration } from '../../kernel/codecs.js'

const TIME_OF_DAY = /^([01]\d|2[0-3]):([0-5]\d)$/
const WEEKDAYS = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'] as const

/**
 * A day of the week, as schedules name it.
 *
 * @public
 */
export type Weekday = (typeof WEEKDAYS)[number]

const TimeOfDay = new t.Type<string, string, unknown>(
  'TimeOfDay ("HH:MM", UTC)',
  (u): u is string => typeof u === 'string' && TIME_OF_DAY.test(u),
  (u, c) => (typeof u === 'string' && TIME_OF_DAY.test(u) ? t.success(u) : t.failure(u, c)),
  t.identity,
)

const MIN_INTERVAL_MS = 1_000

const Interval = new t.Type<number, string | number, unknown>(
  'Interval (a duration of at least 1s)',
  (u): u is number => typeof u === 'number' && u >= MIN_INTERVAL_MS,
  (u, c) => {
    const decoded = Duration.validate(u, c)
    return decoded._tag === 'Right' && decoded.right >= MIN_INTERVAL_MS ? decoded : t.failure(u, c)
  },
  (ms) => ms,
)

/**
 * When a schedule fires: every N milliseconds (given as `"30s"`, `"15m"`, `"1h"`, aligned to the epoch), daily at
 * a UTC time of day, or weekly on a day at a UTC time.
 *
 * @public
 */
export const ScheduleSpecCodec = t.union(
  [
    t.type({ every: Interval }),
    t.type({ daily: TimeOfDay }),
    t.type({ weekly: t.type({ day: t.keyof({ sun: null, mon: null, tue: null, wed: null, thu: null, fri: null, sat: null }), at: TimeOfDay }) }),
  ],
  'ScheduleSpec',
)

/**
 * A decoded schedule specification.
 *
 * @public
 */
export type ScheduleSpec = t.TypeOf<typeof ScheduleSpecCodec>

const DAY_MS = 86_400_000

function minutesOf(timeOfDay: string): number {
  const [hours, minutes] = timeOfDay.split(':').map(Number)
  return (hours ?? 0) * 60 + (minutes ?? 0)
}

/**
 * The first time strictly after `after` (ms since the epoch) at which `spec` fires. Pure.
 *
 * @public
 */
export function nextRun(spec: ScheduleSpec, after: number): number {
  if ('every' in spec) return (Math.floor(after / spec.every) + 1) * spec.every
  const dayStart = Math.floor(after / DAY_MS) * DAY_MS
  if ('daily' in spec) {
    const today = dayStart + minutesOf(spec.daily) * 60_000
    return today > after ? today : today + DAY_MS
  }
  const targetDay = WEEKDAYS.indexOf(spec.weekly.day)
  const currentDay = new Date(dayStart).getUTCDay()
  const at = minutesOf(spec.weekly.at) * 60_000
  let candidate = dayStart + ((targetDay - currentDay + 7) % 7) * DAY_MS + at
  if (candidate <= after) candidate += 7 * DAY_MS
  return candidate
}
