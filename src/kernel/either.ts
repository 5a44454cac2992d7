import * as E from 'fp-ts/lib/Either.js'
import type * as TE from 'fp-ts/lib/TaskEither.js'
import { DrError, toDrError } from './errors.js'

/**
 * The result of a pure drkit decision: a {@link DrError} on the left, the value on the right.
 *
 * @public
 */
export type DrEither<A> = E.Either<DrError, A>

/**
 * Unwraps a {@link DrEither} for the Promise facade: resolves with the right, rejects with the left.
 *
 * @public
 */
export function fromEither<A>(result: DrEither<A>): Promise<A> {
  return E.isRight(result) ? Promise.resolve(result.right) : Promise.reject(result.left)
}

/**
 * Unwraps a {@link DrEither} synchronously: returns the right, throws the left {@link DrError}.
 *
 * @public
 */
export function getOrThrow<A>(result: DrEither<A>): A {
  if (E.isLeft(result)) throw result.left
  return result.right
}

/**
 * Runs an fp-ts `TaskEither` and turns it into a Promise that rejects with a {@link DrError}.
 *
 * @public
 */
export async function fromTaskEither<A>(task: TE.TaskEither<DrError, A>): Promise<A> {
  return fromEither(await task())
}

/**
 * Turns a Promise-returning function into an fp-ts `TaskEither` whose left is always a {@link DrError}.
 *
 * @public
 */
export function toTaskEither<A>(run: () => Promise<A>): TE.TaskEither<DrError, A> {
  return () =>
    run().then(
      (value) => E.right(value),
      (thrown: unknown) => E.left(toDrError(thrown)),
    )
}
