import { describe, expect, it } from 'vitest'
import { settleAll } from '../../src/kernel/settle.js'

describe('settleAll', () => {
  it('resolves with every value in order', async () => {
    expect(await settleAll([Promise.resolve(1), new Promise<number>((resolve) => setTimeout(() => resolve(2), 5))])).toEqual([1, 2])
  })

  it('rejects with the first failure in array order, and only once every promise settled', async () => {
    let lateDone = false
    const late = new Promise<number>((resolve) => setTimeout(() => ((lateDone = true), resolve(3)), 20))
    const failure = settleAll([Promise.resolve(1), Promise.reject(new Error('first')), Promise.reject(new Error('second')), late])
    await expect(failure).rejects.toThrow('first')
    expect(lateDone, 'the slow promise had settled before the rejection').toBe(true)
  })
})
